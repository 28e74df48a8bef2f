"""Checkpoints that are never lost or corrupted silently: verified and hashed after each save, checked before a resume."""

import hashlib
import zipfile
from pathlib import Path

from initlab.config import ConfigError


def digest_path(path: str | Path) -> Path:
    """``<name>.ckpt.sha256`` beside the checkpoint (``sha256sum -c`` reads it)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sha256(path: str | Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def part_path(path: str | Path) -> Path:
    """Where a checkpoint is written before it is verified and moved to ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".part")


def _hashes(digest_file: Path) -> list[str]:
    return [line.split()[0] for line in digest_file.read_text().splitlines() if line.strip()] if digest_file.is_file() else []


def _write_digest(path: Path, hashes: list[str]) -> None:
    target = digest_path(path)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(f"{h}  {path.name}\n" for h in hashes))
    tmp.replace(target)


def commit_checkpoint(path: str | Path) -> Path:
    """Prove the checkpoint just saved at ``part_path(path)`` is whole, then move it to ``path`` with its sha256.

    Whole: a complete zip archive whose CRCs match; else ``RuntimeError`` and the run ends
    ``failed`` with the reason instead of ``done`` without its checkpoint. The digest file lists
    the old and the new hash while the file is moved, so a kill at any moment leaves a
    checkpoint that verifies.
    """
    path, part = Path(path), part_path(path)
    if not part.is_file() or part.stat().st_size == 0:
        raise RuntimeError(f"checkpoint {path} was not written (is {path.parent} a writable folder?)")
    try:
        with zipfile.ZipFile(part) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as err:
        raise RuntimeError(f"checkpoint {path} is incomplete: {err}") from err
    if broken is not None:
        raise RuntimeError(f"checkpoint {path} is corrupted (member {broken})")
    new = sha256(part)
    _write_digest(path, [new, *_hashes(digest_path(path))[:1]])
    part.replace(path)
    _write_digest(path, [new])
    return path


def verified_checkpoint(path: str | Path) -> Path:
    """``path`` if its sha256 is the one written beside it when it was saved; a ConfigError otherwise."""
    path = Path(path)
    digest_file = digest_path(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path: no checkpoint at {path} (to resume a run: ckpt_path=last hydra.run.dir=<its run dir>)")
    if not digest_file.is_file():
        raise ConfigError(f"ckpt_path: {path} has no {digest_file.name}, so it cannot be verified; refusing to load it")
    if sha256(path) not in _hashes(digest_file):
        raise ConfigError(f"ckpt_path: {path} does not match its sha256 in {digest_file.name} (corrupted or changed); refusing to load it")
    return path
