"""DVC stage ``spectra``: the Hessian's eigenvalue density per init, at init and after training, and
lambda_max along training against 2/lr (progressive sharpening).

    python -m initlab.pipeline.spectra       # params.yaml spectra -> results/spectra/{spectra,density,sharpness}.csv

For every init of ``params.inits`` (seed ``spectra.seed``): the pipeline model as the lr study
builds it, trained with ``spectra.optim`` at its best lr of the lr study (``results/study/lr/runs.csv``:
lowest mean val loss over seeds at the longest budget) for the lr study's longest budget. At init
and at the end: one ``initlab.analysis.curvature_record`` of the dataset-level Hessian of the mean
loss over ``samples`` training samples -- certified lambda_max and lambda_min, Hutchinson trace +- SE,
SLQ density (the same engine and settings ``python -m initlab.analyze`` uses, so the numbers agree
with it). Along training, every ``every`` steps, lambda_max (warm-started from the previous top
eigenvector) and the minibatch loss.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from initlab.pipeline import tables
from initlab.pipeline.common import (
    data_path, load_params, make_optimizer, parallel_map, pipeline_activation, read_csv, stage_device, stage_parser, write_csv,
)
from initlab.pipeline.study import Batch, Row, Run, StageContext, batches, budget_steps, init_batch, initialized


def spectrum(model: nn.Module, batch: Batch, settings: dict):
    """The curvature record of ``model``'s mean-loss Hessian over ``batch`` (in chunks of ``chunk`` samples):
    lambda_max / lambda_min with certificates, trace +- SE and the SLQ density."""
    from initlab.analysis import CurvatureProblem, curvature_record

    problem = CurvatureProblem(model, F.cross_entropy, batch, batch_size=settings["chunk"])
    return curvature_record(problem, k=1, which="both", tol=settings["tol"], trace_probes=settings["trace_probes"],
                            density_probes=settings["density_probes"], density_steps=settings["density_steps"],
                            grid=settings["grid"], seed=settings["probe_seed"])


def summary(record: Any) -> Row:
    """The numbers of a record the figure and the report read."""
    density = record.density or {}
    return {"lambda_max": record.lambda_max, "lambda_min": record.lambda_min, "residual_top": record.residuals["top"][0],
            "residual_bottom": record.residuals["bottom"][0], "converged": record.converged, "trace": record.trace,
            "trace_se": record.trace_se, "negative_share": density.get("negative_share"), "n_products": record.n_products}


def sharpness(model: nn.Module, batch: Batch, settings: dict, v0: torch.Tensor | None):
    """The top two eigenpairs, warm-started from ``v0`` (the previous ones: a few products, where one warm vector
    would cost a cold start's certificate): lambda_max tracked along training."""
    from initlab.analysis import CurvatureProblem, curvature_record

    problem = CurvatureProblem(model, F.cross_entropy, batch, batch_size=settings["chunk"])
    return curvature_record(problem, k=2, which="top", tol=settings["tol"], seed=settings["probe_seed"], v0=v0)


def init_spectra(task: tuple) -> dict[str, list[Row]]:
    """One init, one part: ``init``, the spectrum at init; ``trained``, training with the best lr while tracking
    lambda_max, then the spectrum at the end (two independent tasks: each builds the model from its seed)."""
    settings, params, context, init, lr, part = task
    data, batch = context.load(settings["samples"])
    seed = settings["seed"]
    _, study_batch = context.load(params["study"]["curvature_samples"])  # the lr study's model: same init batch
    model = initialized(init, seed, init_batch(study_batch, params["study"]), (), params["data"])
    labels = {"init": init, "seed": seed, "optim": settings["optim"], "lr": lr, "samples": len(batch[1])}
    rows, densities, trace = [], [], []
    if part == "init":
        record = spectrum(model, batch, settings)
        rows.append(labels | {"state": "init", "steps": 0} | summary(record))
        densities += _density_rows(labels | {"state": "init"}, record.density)
        return {"spectra": rows, "density": densities, "sharpness": trace}
    run = Run(model, make_optimizer(settings["optim"], model.parameters(), lr=lr),
              batches(len(data.train.y), params["study"]["batch_size"], seed), params["study"]["diverge_factor"])
    total = budget_steps(params["study"], len(data.train.y))[-1]
    vector = None
    for step in range(0, total + 1, settings["every"]):
        run.advance(data.train.x, data.train.y, step)
        if run.diverged:
            break
        tracked = sharpness(model, batch, settings, vector)
        vector = tracked.top_vectors
        trace.append(labels | {"step": step, "lambda_max": tracked.lambda_max, "residual_top": tracked.residuals["top"][0],
                               "two_over_lr": 2 / lr, "max_loss": run.max_loss if step else None})
    run.advance(data.train.x, data.train.y, total)
    if not run.diverged:
        record = spectrum(model, batch, settings)
        rows.append(labels | {"state": "trained", "steps": run.steps} | summary(record))
        densities += _density_rows(labels | {"state": "trained"}, record.density)
        print(f"spectra: {init} lr {lr:.3g}: trained lambda_max {record.lambda_max:.4g}", flush=True)
    return {"spectra": rows, "density": densities, "sharpness": trace}


PARTS = {"init": 1.0, "trained": 3.0}  # part -> relative cost (training tracks lambda_max 21 times: the costlier part)


def _density_rows(labels: Row, density: dict | None) -> list[Row]:
    if not density:
        return []
    return [labels | {"eigenvalue": t, "density": d} for t, d in zip(density["grid"], density["density"], strict=True)]


def best_lrs(results: Path, optim: str, activation: str | None = None) -> dict[str, float]:
    """Per init: the lr study's best ``optim`` lr (val loss, longest budget) on the net of ``activation`` (the lr study
    covers tanh and ReLU; rows without an activation column: the pipeline model's)."""
    runs = [r for r in read_csv(Path(results) / "study" / "lr" / "runs.csv") if r.get("activation", activation) == activation]
    return {init: lr for (init, o, _, _), lr in tables.best_lrs(runs).items() if o == optim}


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__).parse_args(argv)
    params = load_params(args.params)
    device = stage_device(params["device"])
    settings = params["spectra"]
    lrs = best_lrs(args.results, settings["optim"], pipeline_activation(params["data"]))
    context = StageContext(data_path(args.results, params["data"]), str(device), params["workers"] if device.type == "cpu" else 1)
    tasks = [(settings, params, context, init, lrs[init], part) for init in params["inits"] for part in PARTS]
    parts = parallel_map(init_spectra, tasks, context.workers, cost=lambda task: PARTS[task[-1]])
    for name in ("spectra", "density", "sharpness"):
        write_csv(Path(args.results) / "spectra" / f"{name}.csv", [row for part in parts for row in part[name]])


if __name__ == "__main__":
    main()
