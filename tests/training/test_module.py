"""The training module: ``compile`` keeps the eager model for checkpoints and curvature; the bar's running loss."""

import torch

from initlab.models import mlp
from initlab.optim import adam
from initlab.training.module import ClassifierModule


def test_compiled_module_keeps_the_eager_model_and_plain_checkpoint_keys():
    model = mlp((4,), 3, widths=[5])
    module = ClassifierModule(model, lambda params: adam(params, lr=1e-3), compile=True)
    assert module.model is model and module.network is not model
    assert sorted(module.state_dict()) == sorted(f"model.{k}" for k in model.state_dict())


def test_running_loss_is_the_sample_weighted_mean_so_far():
    module = ClassifierModule(mlp((4,), 3, widths=[5]), lambda params: adam(params, lr=1e-3))
    assert module.running_loss() is None
    module.train_loss.update(torch.tensor(2.0) * 4, 4)
    module.train_loss.update(torch.tensor(5.0) * 2, 2)
    assert module.running_loss() == (2.0 * 4 + 5.0 * 2) / 6
