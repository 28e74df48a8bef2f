"""scikit-learn's bundled 8x8 digits: real images, no download, seconds to train on a CPU."""

import torch

from initlab.data.base import TensorDataModule
from initlab.data.splits import TensorSplit, holdout_split, take

# Of the 1,797 images: a seeded 270 val and 270 test hold-out (15% each); the other 1,257 train.
HOLDOUT_SIZES = (270, 270)
# Pixels are integer ink counts in [0, 16].
MAX_PIXEL = 16.0


class DigitsDataModule(TensorDataModule):
    """``sklearn.datasets.load_digits``: 1,797 images [1, 8, 8], 10 classes; train/val/test
    1,257 / 270 / 270 by a permutation seeded with ``seed`` (classes are balanced, ~180 each)."""

    name = "digits"

    def load_raw(self) -> dict[str, TensorSplit]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / MAX_PIXEL
        y = torch.as_tensor(digits.target, dtype=torch.int64)
        train, val, test = take(x, y, holdout_split(len(y), HOLDOUT_SIZES, self.seed))
        return {"train": train, "val": val, "test": test}
