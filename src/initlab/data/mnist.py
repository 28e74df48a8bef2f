"""MNIST and Fashion-MNIST through torchvision, from ``{root}/<Class>/raw/`` (gzip or extracted IDX)."""

import os
from pathlib import Path
from typing import Any, ClassVar

from initlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx_bytes, read_idx_pair
from initlab.data.splits import TensorSplit
from initlab.data.torchvision_base import TorchvisionDataModule

# The files torchvision downloads, without their ``.gz``; the magic each must carry.
IDX_FILES = {
    "train-images-idx3-ubyte": IMAGES_MAGIC,
    "train-labels-idx1-ubyte": LABELS_MAGIC,
    "t10k-images-idx3-ubyte": IMAGES_MAGIC,
    "t10k-labels-idx1-ubyte": LABELS_MAGIC,
}


def extract_idx(gz_path: Path, magic: int) -> None:
    """Write the checked content of ``gz_path`` next to it without ``.gz``, as torchvision's
    download does (torchvision reads only the extracted files); atomically, so never half-written."""
    data = read_idx_bytes(gz_path)
    parse_idx(data, magic, gz_path)
    target = gz_path.with_suffix("")
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)


class MNISTLikeDataModule(TorchvisionDataModule):
    """28x28 grayscale IDX datasets in torchvision's ``{root}/<torchvision_name>/raw/`` layout.

    With ``verify_md5`` the ``.gz`` files must be there (their md5s are the published ones) and
    are extracted on every build, so torchvision reads only verified bytes; without it, extracted
    files alone also do and ``.gz``-only ones are extracted on first use. Every IDX file is checked
    (magic number, sizes, image/label counts) before torchvision reads it, so a corrupt file raises
    :class:`~initlab.data.errors.CorruptDatasetError` naming it.
    """

    torchvision_name: ClassVar[str]

    @property
    def folder(self) -> Path:
        return self.root / self.torchvision_name / "raw"

    def dataset_class(self) -> type:
        from torchvision import datasets

        return getattr(datasets, self.torchvision_name)

    def expected_md5(self) -> dict[str, str]:
        return dict(self.dataset_class().resources)

    def ensure_files(self) -> None:
        """After the presence (and md5) check: extract what torchvision will read, check every IDX pair."""
        super().ensure_files()
        for stem, magic in IDX_FILES.items():
            if self.verify_md5 or not (self.folder / stem).is_file():
                extract_idx(self.folder / f"{stem}.gz", magic)
        for prefix in ("train", "t10k"):
            read_idx_pair(self.folder / f"{prefix}-images-idx3-ubyte", self.folder / f"{prefix}-labels-idx1-ubyte")

    def to_split(self, dataset: Any) -> TensorSplit:
        return TensorSplit(dataset.data.unsqueeze(1).float() / 255.0, dataset.targets.long())


class MNISTDataModule(MNISTLikeDataModule):
    """MNIST: 60,000 train (minus ``val_size`` for val, default 5,000) and 10,000 test, [1, 28, 28]."""

    name = "mnist"
    torchvision_name = "MNIST"


class FashionMNISTDataModule(MNISTLikeDataModule):
    """Fashion-MNIST: 60,000 train (minus ``val_size``, default 5,000) and 10,000 test, [1, 28, 28]."""

    name = "fashion_mnist"
    torchvision_name = "FashionMNIST"
