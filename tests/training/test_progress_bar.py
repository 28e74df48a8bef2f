"""The progress bar counts epochs as the user set them: the last of ten epochs is "Epoch 10/10"."""

from types import SimpleNamespace

import pytest

from initlab.training.callbacks import LossProgressBar


@pytest.mark.parametrize(("max_epochs", "current_epoch", "shown"), [
    (10, 9, "Epoch 10/10"),
    (10, 0, "Epoch 1/10"),
    (1, 0, "Epoch 1/1"),
    (-1, 4, "Epoch 5"),  # no epoch limit
])
def test_epochs_are_counted_from_one(max_epochs, current_epoch, shown):
    bar = LossProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=max_epochs, state=SimpleNamespace(fn=None), sanity_checking=False)
    assert bar._get_train_description(current_epoch).rstrip() == shown
