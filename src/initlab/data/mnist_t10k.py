"""The real MNIST test split from a local folder: real MNIST data for machines without network access."""

from pathlib import Path
from typing import Any

from initlab.data.base import TensorDataModule
from initlab.data.errors import DatasetNotFoundError
from initlab.data.idx import read_idx_pair
from initlab.data.splits import TensorSplit, holdout_split, take

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
VAL_SIZE = 2_000


class MNISTT10kDataModule(TensorDataModule):
    """MNIST's 10,000 test images (``path``: a folder with the two gzip IDX files torchvision
    downloads), split by ``seed`` into 8,000 train / 2,000 val.

    ``test_data`` holds the same tensors as ``val_data``: there is no other held-out data, so test
    metrics equal validation metrics; report figures as "MNIST t10k, 8k/2k split".
    """

    name = "mnist_t10k"

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)

    def load_raw(self) -> dict[str, TensorSplit]:
        self._check_files()
        images, labels = read_idx_pair(self.path / IMAGES_FILE, self.path / LABELS_FILE)
        x, y = images.unsqueeze(1).float() / 255.0, labels.long()
        train, val = take(x, y, holdout_split(len(y), (VAL_SIZE,), self.seed))
        return {"train": train, "val": val, "test": val}

    def _check_files(self) -> None:
        missing = [name for name in (IMAGES_FILE, LABELS_FILE) if not (self.path / name).is_file()]
        if not missing:
            return
        problem = "the folder does not exist" if not self.path.is_dir() else f"missing {', '.join(missing)}"
        raise DatasetNotFoundError(
            f"mnist_t10k: expected the MNIST test split in {self.path} "
            f"(files {IMAGES_FILE}, {LABELS_FILE}), but {problem}"
        )
