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


def read_idx_bytes(path: Path) -> bytes:
    """The file's IDX bytes, gunzipped when the name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
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
