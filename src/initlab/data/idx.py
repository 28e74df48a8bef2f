"""IDX files (MNIST's format), parsed with magic-number and size checks so bad files fail by name.

Layout: a big-endian uint32 magic ``0x000008NN`` (0x08 = uint8 payload, NN = number of dims),
NN big-endian uint32 sizes, then the uint8 payload, optionally gzip-compressed as a whole.
"""

import gzip
import struct
import zlib
from math import prod
from pathlib import Path

import torch
from torch import Tensor

from initlab.data.errors import CorruptDatasetError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
# The most bytes an IDX file may promise: 5x MNIST's largest (60,000 x 28 x 28 = 47 MB). A header is read first and
# its promise checked against this before anything is allocated, so a planted gzip cannot inflate without bound.
MAX_IDX_BYTES = 256 * 2**20


def read_idx_bytes(path: Path, limit: int = MAX_IDX_BYTES) -> bytes:
    """The file's IDX bytes, gunzipped when the name ends in ``.gz``, never more than its header promises.

    The header (magic and sizes) is read first; a file promising more than ``limit`` bytes fails
    before its payload is read, and a payload longer than promised fails after one byte more.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            head = handle.read(4)
            ndim = head[3] if len(head) == 4 else 0
            sizes = handle.read(4 * ndim)
            header = head + sizes
            promised = prod(struct.unpack(f">{ndim}I", sizes)) if len(sizes) == 4 * ndim else 0
            if promised > limit:
                raise CorruptDatasetError(f"{path}: IDX header promises {promised:,} bytes, more than the {limit:,} an IDX file may hold")
            return header + handle.read(promised + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptDatasetError(f"{path}: not a complete gzip file ({err})") from err


def parse_idx(data: bytes, magic: int, source: Path) -> Tensor:
    """The uint8 tensor stored in ``data``; ``source`` names the file in errors."""
    ndim = magic & 0xFF
    header_len = 4 * (1 + ndim)
    found = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else magic
    if found != magic:
        raise CorruptDatasetError(f"{source}: IDX magic number is {found:#010x}, expected {magic:#010x}")
    if len(data) < header_len:
        raise CorruptDatasetError(f"{source}: truncated IDX header ({len(data)} bytes, need {header_len})")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    payload = len(data) - header_len
    if payload != prod(shape):
        raise CorruptDatasetError(
            f"{source}: IDX header promises shape {list(shape)} = {prod(shape)} bytes, file holds {payload}"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header_len).view(shape)


def read_idx(path: Path, magic: int) -> Tensor:
    """Read and check one IDX file (plain or ``.gz``)."""
    return parse_idx(read_idx_bytes(path), magic, path)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    """Images [N, H, W] and labels [N] from two IDX files that must agree on N."""
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise CorruptDatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    return images, labels
