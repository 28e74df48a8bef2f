"""Tiny models and exact dense oracles shared by the analysis tests (float64).

Imported as ``tests.analysis.curvature_oracles`` (the test folders are packages).
"""

import torch
from torch import Tensor, nn

from initlab.analysis import CurvatureOperator
from initlab.models import mlp


def tiny_mlp(activation: str, seed: int = 0, widths: tuple[int, ...] = (16, 16), scale: float = 1.0) -> nn.Sequential:
    """8-16-16-4 MLP in float64; ``scale`` multiplies the default weights (large for the tanh H != GN test)."""
    torch.manual_seed(seed)
    model = mlp([8], 4, list(widths), activation).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def conv_net(activation: str, seed: int = 0, channels: int = 3) -> nn.Sequential:
    """9 inputs as a 1x3x3 image -> Conv2d(2x2, ``channels``) -> activation -> Linear to 4 classes, float64."""
    torch.manual_seed(seed)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    return nn.Sequential(nn.Unflatten(1, (1, 3, 3)), nn.Conv2d(1, channels, 2), act(), nn.Flatten(),
                         nn.Linear(4 * channels, 4)).double()


def classification_batch(n: int = 32, d: int = 8, classes: int = 4, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def flat_params(model: nn.Module, names: list[str]) -> Tensor:
    params = dict(model.named_parameters())
    return torch.cat([params[n].detach().reshape(-1) for n in names])


def dense_hessian(model: nn.Module, loss_fn, inputs: Tensor, targets: Tensor, names: list[str] | None = None) -> Tensor:
    """Oracle: torch.func.hessian of the loss as a function of the flattened parameters ``names``."""
    params = dict(model.named_parameters())
    names = names or list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss_of(flat: Tensor) -> Tensor:
        chunks = torch.split(flat, sizes)
        override = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return loss_fn(torch.func.functional_call(model, {**params, **override}, (inputs,)), targets)

    return torch.func.hessian(loss_of)(flat_params(model, names)).detach()


def dense(operator) -> Tensor:
    """All columns of a curvature operator (tiny dims only): M = M I."""
    return operator.matmat(torch.eye(operator.dim, dtype=operator.dtype, device=operator.device))


def dense_gauss_newton(model: nn.Module, loss_fn, inputs: Tensor, targets: Tensor, names: list[str] | None = None
                       ) -> Tensor:
    """Oracle: J^T H_z J from dense Jacobians (torch.func.jacrev of the outputs, torch.func.hessian of the loss)."""
    params = dict(model.named_parameters())
    names = names or list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def outputs_of(flat: Tensor) -> Tensor:
        override = {n: c.reshape(s) for n, c, s in zip(names, torch.split(flat, sizes), shapes, strict=True)}
        return torch.func.functional_call(model, {**params, **override}, (inputs,)).reshape(-1)

    out = model(inputs).detach()
    jac = torch.func.jacrev(outputs_of)(flat_params(model, names)).detach()
    h_z = torch.func.hessian(lambda z: loss_fn(z.reshape(out.shape), targets))(out.reshape(-1)).detach()
    return jac.T @ h_z @ jac


class DenseOperator(CurvatureOperator):
    """A known symmetric matrix as an operator (exact oracle for the solvers)."""

    def __init__(self, matrix: Tensor) -> None:
        self.matrix, self.dim, self.dtype = matrix, matrix.shape[0], matrix.dtype
        self.device, self.settings = matrix.device, {}

    def _product(self, v: Tensor) -> Tensor:
        return self.matrix @ v
