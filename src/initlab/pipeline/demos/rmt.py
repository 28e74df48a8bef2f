"""Random-matrix check of paper Corollary 2, eq. (7): E||W||_2 ~ (sqrt(m) + sqrt(n)) sigma.

W is drawn by the project's own initializers (``spectral``: N(0, sigma^2); ``spectral_uniform``:
uniform with the same sigma), so the ratio ||W||_2 / ((sqrt m + sqrt n) sigma) checks the
Silverstein / Bai-Yin edge and the init code at once. ||W||_2 comes from ARPACK (``svds``,
a certified top singular value), far cheaper than a full SVD at 2048 x 2048.

Writes ``norms.csv`` (one row per shape, distribution and trial).
"""

import math

import numpy as np
import torch
from scipy.sparse.linalg import svds

from initlab.init import WEIGHT_INITS, spectral_std
from initlab.pipeline.common import write_csv
from initlab.pipeline.demos import DemoContext


def spectral_norm(matrix: np.ndarray) -> float:
    """The largest singular value (ARPACK, relative tolerance 1e-6; dense SVD below 3 columns)."""
    if min(matrix.shape) < 3:
        return float(np.linalg.norm(matrix, ord=2))
    return float(svds(matrix, k=1, return_singular_vectors=False, tol=1e-6, random_state=0)[0])


def norm_ratios(shapes: list[list[int]], inits: list[str], trials: int, seed: int) -> list[dict]:
    """||W||_2 / ((sqrt m + sqrt n) sigma) for every [m, n] in ``shapes``, init scheme and trial."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for m, n in shapes:
        sigma = spectral_std(n, m)
        predicted = (math.sqrt(m) + math.sqrt(n)) * sigma
        for init in inits:
            for trial in range(trials):
                weight = torch.empty(m, n, dtype=torch.float64, device="cpu")  # ARPACK: a NumPy demo, on the CPU
                torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator, device="cpu")))
                WEIGHT_INITS[init](weight, n, m)
                norm = spectral_norm(weight.numpy())
                rows.append({"m": m, "n": n, "init": init, "trial": trial, "sigma": sigma, "empirical_std": weight.std().item(),
                             "norm": norm, "predicted": predicted, "ratio": norm / predicted})
    return rows


def run(settings: dict, context: DemoContext) -> None:
    rows = norm_ratios(settings["shapes"], settings["inits"], settings["trials"], settings["seed"])
    write_csv(context.out / "norms.csv", rows)
