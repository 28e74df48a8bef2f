"""The engine's contracts: every tensor of a solve on the operator's device, a symmetry check that
fails on asymmetric operators at any size, compiled models analysed through their eager view."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from initlab.analysis import (
    CurvatureCheckError,
    CurvatureOperator,
    CurvatureProblem,
    DatasetOperator,
    analyze_model,
    curvature_record,
    layer_jacobian_norms,
    top_eigenvalue,
)
from initlab.analysis.report import AnalysisSettings
from initlab.models import mlp
from tests.analysis.curvature_oracles import classification_batch, tiny_mlp

CE = nn.CrossEntropyLoss()


class DeviceRecorder(TorchDispatchMode):
    """Records the device of every tensor every torch op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.devices.add(tensor.device.type)
        return out


def test_every_tensor_of_a_solve_is_created_on_the_operators_device() -> None:
    # The default device is switched to `meta` during the solve: a tensor created without the
    # operator's device (a CPU-built tridiagonal, a generator, a probe, ...) lands on meta and is
    # recorded (or breaks the solve); the operator lives on the CPU, so only "cpu" may appear.
    model = tiny_mlp("tanh", seed=80)
    x, y = classification_batch(n=23, seed=81)
    problem = CurvatureProblem(model, CE, (x, y), batch_size=10)
    recorder = DeviceRecorder()
    with torch.device("meta"), recorder:
        record = curvature_record(problem, k=2, which="both", trace_probes=4, density_probes=2, density_steps=6,
                                  grid=20)
        block = curvature_record(problem.replace(block=1, kind="gauss_newton"), v0=None)
        norms = layer_jacobian_norms(model, x, reduction="none")
        analysis = analyze_model(CurvatureProblem(model, CE, (x, y), batch_size=10),
                                 AnalysisSettings(k_top=1, trace_probes=3, slq_probes=2, slq_steps=5, grid=10))
    assert recorder.devices == {"cpu"}
    assert record.lambda_max > 0 and block.lambda_max > 0 and norms.shape == (3, 23)
    assert analysis["analysis"]["global"]["lambda_max"] == pytest.approx(record.lambda_max, rel=1e-3)


def test_the_recorder_catches_a_tensor_created_off_device() -> None:
    recorder = DeviceRecorder()
    with torch.device("meta"), recorder:
        torch.zeros(3)  # what a CPU-only helper would do
    assert "meta" in recorder.devices


class Circulant(CurvatureOperator):
    """v -> d * v + c * (roll(v, 1) + s * roll(v, -1)): symmetric for s = 1, clearly asymmetric for s = -1."""

    def __init__(self, dim: int, sign: float, dtype: torch.dtype = torch.float32) -> None:
        self.dim, self.dtype, self.device, self.settings = dim, dtype, torch.device("cpu"), {}
        self.diagonal = torch.linspace(0.5, 2.0, dim, dtype=dtype)
        self.sign = sign

    def _product(self, v: torch.Tensor) -> torch.Tensor:
        return self.diagonal * v + 0.5 * (torch.roll(v, 1) + self.sign * torch.roll(v, -1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_symmetry_check_fails_on_an_asymmetric_operator_at_300k_parameters(dtype: torch.dtype) -> None:
    Circulant(300_000, sign=1.0, dtype=dtype).check()  # symmetric: passes
    with pytest.raises(CurvatureCheckError, match="not symmetric"):
        Circulant(300_000, sign=-1.0, dtype=dtype).check()
    with pytest.raises(CurvatureCheckError, match="not symmetric"):
        Circulant(30, sign=-1.0, dtype=dtype).check()


def test_symmetry_check_passes_the_float32_hessian_of_the_pipeline_mlp() -> None:
    torch.manual_seed(0)
    model = mlp([784], 10, (256, 256), "tanh")  # 269,322 parameters
    x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    operator = DatasetOperator(CurvatureProblem(model, CE, (x, y)))  # runs check()
    assert operator.dim == 269_322


def test_compiled_models_are_analysed_through_their_eager_view() -> None:
    model = tiny_mlp("tanh", seed=82)
    x, y = classification_batch(seed=83)
    reference = top_eigenvalue(CurvatureProblem(model, CE, (x, y)), tol=1e-10)
    wrapped = torch.compile(model)
    np.testing.assert_allclose(top_eigenvalue(CurvatureProblem(wrapped, CE, (x, y)), tol=1e-10), reference, rtol=1e-10)
    model.compile()
    np.testing.assert_allclose(top_eigenvalue(CurvatureProblem(model, CE, (x, y)), tol=1e-10), reference, rtol=1e-10)
    assert model._compiled_call_impl is not None  # the model itself stays compiled
