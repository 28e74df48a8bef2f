"""The one way initlab writes a file: atomically and never through a symbolic link.

Every result file (metrics.json, history.csv, init.json, config_tree.log, checkpoint digests,
aggregate.md/csv, analysis.json) goes through :func:`atomic_write`: the bytes land in a fresh
temporary file beside the target (``O_EXCL | O_NOFOLLOW``, so a planted link cannot be that file)
which is then renamed over the target, so a reader or a kill never sees half a file. The folder is
opened with ``O_NOFOLLOW`` and the rename is made relative to that descriptor, so a folder that is
(or is swapped for) a link cannot redirect the write; a target that is a link is refused.
Standard library only: the start-up checks use it before torch is imported.
"""

import errno
import os
import secrets
import stat
from pathlib import Path

TMP_SUFFIX = ".tmp"


class LinkRefused(OSError):
    """A write aimed at a symbolic link (or through one) inside a run dir."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(errno.ELOOP, "is a symbolic link; initlab never writes through one", str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _open_folder(folder: Path) -> int:
    """A descriptor of ``folder`` itself, refusing a folder that is a symbolic link."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR) and folder.is_symlink():
            raise LinkRefused(folder) from None
        raise


def atomic_write(path: str | Path, data: bytes | str, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename in the same folder), never through a link.

    The folder is created if missing; a ``path`` or folder that is a symbolic link raises
    :class:`LinkRefused` (an ``OSError``) and writes nothing. No temporary file survives a failure.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = _open_folder(path.parent)
    tmp = f"{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    try:
        if is_link(path.name, folder):
            raise LinkRefused(path)
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(payload)
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:  # a full or read-only disk, a signal: no temporary file left behind
            _unlink(tmp, folder)
            raise
    finally:
        os.close(folder)
    return path


def is_link(name: str | Path, dir_fd: int | None = None) -> bool:
    """Whether ``name`` exists and is a symbolic link (not followed)."""
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False


def links_below(folder: str | Path, subfolders: tuple[str, ...]) -> list[Path]:
    """The symbolic links among ``subfolders`` of ``folder`` and their entries (none followed)."""
    found = []
    for name in subfolders:
        path = Path(folder) / name
        if is_link(path):
            found.append(path)
        elif path.is_dir():
            found += sorted(entry for entry in path.iterdir() if entry.is_symlink())
    return found


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``, not reached through a link.

    A FIFO, a device (``/dev/zero``), a folder or a link raise ``ValueError`` before a byte is read
    (the open does not block and nothing is read past the cap), so a planted file can neither hang
    nor exhaust the reader.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError("is a symbolic link") from None
        raise
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"is larger than {max_bytes} bytes")
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"is larger than {max_bytes} bytes")
    return data


def _unlink(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
