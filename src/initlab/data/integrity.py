"""md5 checks of dataset files before anything reads them, so a corrupt or planted file fails by name."""

import hashlib
from pathlib import Path

from initlab.data.errors import CorruptDatasetError

def file_md5(path: Path) -> str:
    """The hex md5 of the file's bytes (streamed: CIFAR batches are 30 MB each)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def verify_md5(path: Path, expected: str, advice: str = "replace it with the original file") -> None:
    """Raise :class:`CorruptDatasetError` naming the file, the expected and the actual md5, and what to do."""
    actual = file_md5(path)
    if actual != expected:
        raise CorruptDatasetError(
            f"{path}: md5 is {actual}, expected {expected} (corrupt, truncated or a different file); {advice}"
        )
