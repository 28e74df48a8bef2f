"""The real MNIST test split shipped inside the package: real MNIST data without network access."""

import hashlib
from pathlib import Path
from typing import Any

from initlab.data.base import TensorDataModule
from initlab.data.errors import DatasetNotFoundError
from initlab.data.idx import read_idx_pair
from initlab.data.integrity import verify_md5
from initlab.data.splits import TensorSplit, holdout_split, take

# The shipped copy: package data, so a non-editable install has it too.
SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "mnist_t10k"
IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
# The md5 of each file as the MNIST mirrors (and torchvision) serve it; checked before every read.
MD5 = {IMAGES_FILE: "9fb629c4189551a2d022fa330f9573f3", LABELS_FILE: "ec29112dd5afa0611ce80d1b7f02629c"}
# Of the 10,000 images: a fixed 1,000 val (model selection) and 2,000 test (reported only); 7,000 train.
VAL_SIZE, TEST_SIZE = 1_000, 2_000


class MNISTT10kDataModule(TensorDataModule):
    """MNIST's 10,000 test images split disjointly into 7,000 train / 1,000 val / 2,000 test.

    The split is drawn with ``split_seed`` (default 0), independent of the run ``seed`` (which only
    shuffles batches), so every run of a study sees the same val and test images. ``path`` is a
    folder with the two gzip IDX files (default: the copy shipped inside the package); their md5s
    must match MNIST's.
    """

    name = "mnist_t10k"

    def __init__(self, path: str | None = None, split_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = SHIPPED_DIR if path is None else Path(path)
        self.split_seed = split_seed

    @property
    def cache_name(self) -> str:
        """The split depends on ``split_seed`` and the sizes only: one cache serves every run seed.
        Another ``path`` gets its own cache, so its files are read (and checked) at least once."""
        name = f"{self.name}-split{self.split_seed}-val{VAL_SIZE}-test{TEST_SIZE}"
        if self.path == SHIPPED_DIR:
            return name
        return f"{name}-{hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:10]}"

    def source_files(self) -> list[Path]:
        return [self.path / name for name in MD5]

    def load_raw(self) -> dict[str, TensorSplit]:
        self._check_files()
        images, labels = read_idx_pair(self.path / IMAGES_FILE, self.path / LABELS_FILE)
        x, y = images.unsqueeze(1).float() / 255.0, labels.long()
        parts = holdout_split(len(y), (VAL_SIZE, TEST_SIZE), self.split_seed)
        train, val, test = take(x, y, parts)
        return {"train": train, "val": val, "test": test}

    def _check_files(self) -> None:
        """Both files present and byte-identical to MNIST's, else one error naming the file."""
        missing = [name for name in MD5 if not (self.path / name).is_file()]
        if missing:
            problem = "the folder does not exist" if not self.path.is_dir() else f"missing {', '.join(missing)}"
            raise DatasetNotFoundError(
                f"mnist_t10k: expected the MNIST test split in {self.path} "
                f"(files {IMAGES_FILE}, {LABELS_FILE}), but {problem}"
            )
        for name, md5 in MD5.items():
            verify_md5(self.path / name, md5)
