"""One solve, one record: extreme eigenvalues, certificates, trace and density of a curvature problem.

The paper's step-size rule gamma* = 1/||H|| (and the edge of stability 2/lambda_max of gradient
descent on the quadratic model) needs lambda_max of the Hessian. One Lanczos run from a
Rademacher probe gives the top-k / bottom-k Ritz pairs with their residual certificates, and the
same run (continued to ``density_steps`` when a density is asked for) is the first SLQ probe and
the first Hutchinson sample; the other probes run batched. ``benchmarks/curvature.py`` compares
it with PyHessian's power iteration.
"""

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from initlab.analysis.lanczos import LanczosRun, RitzPairs, lanczos
from initlab.analysis.operators import CurvatureOperator, DatasetOperator
from initlab.analysis.problem import CurvatureProblem
from initlab.analysis.spectrum import rademacher_probes, spectral_density, trace_estimate

Which = Literal["top", "bottom", "both"]
WANTED: dict[str, tuple[bool, bool]] = {"top": (True, False), "bottom": (False, True), "both": (True, True)}


def finite(x: object) -> object:
    """JSON has no inf/nan: a non-finite float becomes None."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


@dataclass
class CurvatureRecord:
    """Everything one solve measured (init2winit style; ``as_dict()`` is JSON-ready).

    ``top`` descending, ``bottom`` ascending; ``residuals`` = {"top": [...], "bottom": [...]}:
    ||M y - theta y|| / max|theta| per Ritz pair (the spectral scale; for a dominant top
    eigenvalue = ||r|| / |lambda|), read off the tridiagonal and floored at the dtype's eps;
    ``ratio`` = lambda_min / lambda_max
    (negative: how indefinite the curvature is); ``trace`` +- ``trace_se`` (Hutchinson) and
    ``density`` (SLQ) when asked; ``layer_share``: per layer, the squared norm of the top
    eigenvector's entries (sums to 1); ``n_products``: curvature-vector products of this solve.
    ``top_vectors`` / ``bottom_vectors`` (columns, on the operator's device) warm-start later solves.
    """

    top: list[float]
    bottom: list[float]
    residuals: dict[str, list[float]]
    n_products: int
    converged: bool
    steps: int
    settings: dict[str, object]
    trace: float | None = None
    trace_se: float | None = None
    density: dict[str, object] | None = None
    layer_share: dict[str, float] = field(default_factory=dict)
    top_vectors: Tensor | None = field(default=None, repr=False)
    bottom_vectors: Tensor | None = field(default=None, repr=False)

    @property
    def lambda_max(self) -> float | None:
        return self.top[0] if self.top else None

    @property
    def lambda_min(self) -> float | None:
        return self.bottom[0] if self.bottom else None

    @property
    def ratio(self) -> float | None:
        if self.lambda_max is None or self.lambda_min is None or self.lambda_max == 0:
            return None
        return self.lambda_min / self.lambda_max

    def as_dict(self) -> dict[str, object]:
        """Plain types only (no vectors); non-finite floats become None."""
        return {
            "lambda_max": finite(self.lambda_max),
            "lambda_min": finite(self.lambda_min),
            "ratio": finite(self.ratio),
            "top": self.top,
            "bottom": self.bottom,
            "residuals": self.residuals,
            "trace": finite(self.trace),
            "trace_se": finite(self.trace_se),
            "density": self.density,
            "layer_share": self.layer_share,
            "n_products": self.n_products,
            "converged": self.converged,
            "steps": self.steps,
            "settings": self.settings,
        }


def as_operator(problem: CurvatureProblem | CurvatureOperator) -> CurvatureOperator:
    """The problem's operator (an operator is used as it is: its graph is shared by several solves)."""
    return DatasetOperator(problem) if isinstance(problem, CurvatureProblem) else problem


def curvature_record(
    problem: CurvatureProblem | CurvatureOperator,
    k: int = 1,
    which: Which = "top",
    tol: float = 1e-3,
    max_steps: int | None = None,
    trace_probes: int = 0,
    density_probes: int = 0,
    density_steps: int = 64,
    grid: int = 500,
    seed: int = 0,
    v0: Tensor | None = None,
) -> CurvatureRecord:
    """Top-k / bottom-k eigenvalues (``which``), trace and spectral density of ``problem`` from one Lanczos.

    The eigen run starts from Rademacher probe 0 (or from ``v0``, e.g. the previous top
    eigenvector when tracking lambda_max during training: a few products instead of dozens) and
    stops when every wanted Ritz pair has residual <= ``tol`` * spectral scale, after at most
    ``max_steps`` (default 300) products. ``density_probes`` > 0: that run continues to at least
    ``density_steps`` and serves as SLQ probe 0; the other probes run ``density_steps`` steps,
    batched. ``trace_probes`` >= 2: Hutchinson samples, the SLQ probes' included. Non-converged
    runs return the current Ritz pairs with ``converged=False``.
    """
    if which not in WANTED:
        raise ValueError(f"which must be one of {list(WANTED)}, got {which!r}")
    operator = as_operator(problem)
    if not 0 < k < operator.dim:
        raise ValueError(f"need 0 < k={k} < dimension {operator.dim}")
    before = operator.n_products
    n_top, n_bottom = (k * wanted for wanted in WANTED[which])
    probes = rademacher_probes(max(1, trace_probes, density_probes), operator.dim, seed, operator.dtype,
                               operator.device)
    warm = v0 is not None
    start = v0.reshape(1, -1).to(operator.device, operator.dtype) if warm else probes[:1]
    min_steps = density_steps if density_probes and not warm else 0
    run = lanczos(operator.rows, start, max_steps or 300, tol, n_top, n_bottom, min_steps, seed=seed)
    top, bottom = run.pairs(0, n_top, n_bottom)
    scale = max([abs(v) for v in top.values.tolist() + bottom.values.tolist()] + [1e-300])
    floor = torch.finfo(operator.dtype).eps  # the bound is exact up to rounding: never report less than eps
    record = CurvatureRecord(
        top=top.values.tolist(),
        bottom=bottom.values.tolist(),
        residuals={"top": (top.residuals / scale).clamp_min(floor).tolist(),
                   "bottom": (bottom.residuals / scale).clamp_min(floor).tolist()},
        n_products=0,
        converged=run.converged,
        steps=run.tridiagonal.steps,
        settings={**operator.settings, "k": k, "which": which, "tol": tol, "warm_start": warm, "seed": seed,
                  "trace_probes": trace_probes, "density_probes": density_probes, "density_steps": density_steps},
        top_vectors=_columns(top),
        bottom_vectors=_columns(bottom),
        layer_share=_layer_share(operator, top),
    )
    _probe_quantities(record, operator, run, probes, warm, trace_probes, density_probes, density_steps, grid, seed)
    record.n_products = operator.n_products - before
    return record


def _columns(pairs: RitzPairs) -> Tensor | None:
    return pairs.vectors if pairs.vectors.shape[1] else None


def _layer_share(operator: CurvatureOperator, top: RitzPairs) -> dict[str, float]:
    """Per layer (module name), the share of the top eigenvector's squared norm."""
    if not isinstance(operator, DatasetOperator) or not top.vectors.shape[1]:
        return {}
    shares: dict[str, float] = {}
    for name, part in operator.split(top.vectors[:, 0]).items():
        layer = name.rpartition(".")[0]
        shares[layer] = shares.get(layer, 0.0) + part.double().pow(2).sum().item()
    return shares


def _probe_quantities(record: CurvatureRecord, operator: CurvatureOperator, run: LanczosRun, probes: Tensor,
                      warm: bool, trace_probes: int, density_probes: int, density_steps: int, grid: int,
                      seed: int) -> None:
    """Fill ``record.density`` (SLQ) and ``record.trace`` (Hutchinson) from the eigen run and more probes."""
    first = 0 if warm else 1  # probe 0 already ran as the eigen run
    tridiagonals = [run.tridiagonal] if first else []
    if density_probes > first:
        extra = lanczos(operator.rows, probes[first:density_probes], density_steps, seed=seed)
        tridiagonals.append(extra.tridiagonal)
    if density_probes:
        record.density = spectral_density(tridiagonals, operator.dim, grid)
    if trace_probes:  # alpha_1 of a normalized +-1 probe is z^T M z / dim: free Hutchinson samples
        free = [operator.dim * t.alphas[:, 0] for t in tridiagonals]
        free = torch.cat(free)[:trace_probes] if free else probes.new_zeros(0, dtype=torch.float64)
        rest = probes[len(free):trace_probes]
        paid = (rest * operator.rows(rest)).sum(dim=1) if len(rest) else rest.new_zeros(0)
        record.trace, record.trace_se = trace_estimate(torch.cat([free, paid.double()]))

def top_eigenvalue(problem: CurvatureProblem, tol: float = 1e-3, seed: int = 0) -> float:
    """lambda_max of the problem's curvature (what ``optim.lr=auto`` and the curvature callback need)."""
    return curvature_record(problem, k=1, which="top", tol=tol, seed=seed).lambda_max
