"""DVC stages ``study@lr`` and ``study@depth``: many short runs of one config in one process.

    python -m initlab.pipeline.study lr      # params.yaml study -> results/study/{lr/runs,lr/at_init,lr/theorem2,lr_grid,lr_fairness}.csv
    python -m initlab.pipeline.study depth   # params.yaml depth -> results/study/{depth/runs,depth/at_init,depth}.csv

Every run is a plain torch loop (no Lightning, no process per run) over the model of
``conf/experiment/pipeline.yaml``, the init registry (``conf/init``) and the optimizer configs
(``conf/optim``): ``steps`` minibatch steps on the prepared train split, shuffled by the seed, then
the mean loss / accuracy on a fixed train subset, on val and on test. The split is fixed (the
prepared file of the first seed); a seed sets the init and the batch order. Curvature at init
(lambda_max of the dataset-level mean-loss Hessian) is measured on ``curvature_samples``
training samples.
"""

import copy
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from initlab.pipeline import tables
from initlab.pipeline.common import (
    build_model, conf_node, data_path, lambda_max, load_params, make_initializer, make_optimizer, sample_train_batch, stage_parser, write_csv,
)

Row = dict[str, Any]
Batch = tuple[Tensor, Tensor]


def batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[Tensor]:
    """``steps`` index batches of reshuffled epochs over ``n`` samples (a seeded generator: reproducible)."""
    generator = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        for idx in torch.randperm(n, generator=generator).split(batch_size):
            if done == steps:
                return
            if len(idx) == batch_size:
                done += 1
                yield idx


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 2048) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on (x, y) in eval mode."""
    model.eval()
    loss, correct = 0.0, 0
    for xs, ys in zip(x.split(chunk), y.split(chunk), strict=True):
        out = model(xs)
        loss += F.cross_entropy(out, ys, reduction="sum").item()
        correct += int((out.argmax(dim=1) == ys).sum())
    return loss / len(y), correct / len(y)


def train_run(model: nn.Module, optimizer: torch.optim.Optimizer, data: Any, settings: dict, seed: int) -> Row:
    """Train ``steps`` steps, stop early on a non-finite loss (``diverged``); final train/val/test loss and accuracy."""
    x, y = data.train.x, data.train.y
    model.train()
    diverged = False
    for idx in batches(len(y), settings["batch_size"], settings["steps"], seed):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    n_eval = settings["eval_samples"]
    row: Row = {"diverged": diverged}
    for split, (xs, ys) in {"train": (x[:n_eval], y[:n_eval]), "val": (data.val.x, data.val.y),
                            "test": (data.test.x, data.test.y)}.items():
        loss_value, acc = evaluate(model, xs, ys)
        row[f"{split}_loss"] = loss_value if math.isfinite(loss_value) and not diverged else math.nan
        row[f"{split}_acc"] = acc
    return row


def initialized(init: str, seed: int, batch: Batch, model_overrides: Sequence[str], data: str) -> nn.Module:
    """The pipeline model with ``model_overrides``, initialized by ``conf/init/<init>`` under ``seed``
    (a data-aware init sees ``batch``)."""
    torch.manual_seed(seed)
    return make_initializer(init)(build_model(data, model_overrides), batch=batch)


def init_batch(batch: Batch, settings: dict) -> Batch:
    """The first ``init_samples`` samples of the curvature batch: what a data-aware init sees."""
    return batch[0][: settings["init_samples"]], batch[1][: settings["init_samples"]]


def lr_runs(model: nn.Module, optim: str, lrs: Sequence[float], data: Any, settings: dict, seed: int, **labels: Any) -> list[Row]:
    """One short run per lr from the same initial weights."""
    rows = []
    for lr in lrs:
        trained = copy.deepcopy(model)
        optimizer = make_optimizer(optim, trained.parameters(), lr=lr)
        rows.append(labels | {"optim": optim, "seed": seed, "lr": lr} | train_run(trained, optimizer, data, settings, seed))
    return rows


def lr_study(settings: dict, params: dict, data: Any, batch: Batch) -> dict[str, list[Row]]:
    """Per init and seed: lambda_max at init, then every optimizer at every grid lr, its default lr and
    lr = c / lambda_max (``setting``: grid, default, curvature; a grid lr equal to the default is run once)."""
    runs, at_init, bounds = [], [], []
    for init in params["inits"]:
        for seed in params["seeds"]:
            model = initialized(init, seed, init_batch(batch, settings), (), params["data"])
            lam = lambda_max(model, batch, settings["tol"])
            at_init.append({"init": init, "seed": seed, "lambda_max": lam, "samples": len(batch[1])})
            bounds += [{"init": init, "seed": seed} | row for row in theorem2_rows(model, batch, settings["tol"])]
            for optim in params["optimizers"]:
                grid = [float(lr) for lr in settings["lr_grid"][optim]]
                default = default_lr(optim)
                lrs = {**{lr: "grid" for lr in grid}, **({} if default in grid else {default: "default"}),
                       settings["curvature_c"] / lam: "curvature"}
                for row in lr_runs(model, optim, list(lrs), data, settings, seed, init=init, lambda_max=lam, default_lr=default):
                    runs.append(row | {"setting": lrs[row["lr"]]})
            print(f"study lr: {init} seed {seed}: lambda_max {lam:.4g}", flush=True)
    return {"lr/runs": runs, "lr/at_init": at_init, "lr/theorem2": bounds, "lr_grid": tables.lr_grid_table(runs), "lr_fairness": tables.lr_fairness_table(runs)}


def theorem2_rows(model: nn.Module, batch: Batch, tol: float) -> list[Row]:
    """Per weight layer: lambda_max of its Hessian block over ``batch`` and its ratio to paper Theorem 2's
    bound as written and corrected (``initlab.analysis.theorem2_bounds``)."""
    from initlab.analysis import CurvatureProblem, theorem2_bounds

    records = theorem2_bounds(CurvatureProblem(model, F.cross_entropy, batch, batch_size=1024), tol=tol, jacobian_tol=tol,
                              gauss_newton=False)
    return [{"layer": k} | {key: r[key] for key in ("lambda_max", "ratio_as_written", "ratio_corrected")} for k, r in enumerate(records)]


def default_lr(optim: str) -> float:
    """The lr of ``conf/optim/<optim>.yaml``: what a user gets without choosing one."""
    return float(conf_node("optim", optim)["lr"])


def depth_at_init(model: nn.Module, batch: Batch, settings: dict, curvature: bool) -> Row:
    """Mean and product of the layer Jacobian norms ||J^(k)||, forward variance ratio Var(u^(L))/Var(u^(1))
    over the L hidden layers, and (when ``curvature``: it dominates the cost) lambda_max on ``curvature_samples``."""
    from initlab.analysis import layer_jacobian_norms, variance_flow

    flow = variance_flow(model, F.cross_entropy, *batch)
    jacobians = layer_jacobian_norms(model, batch[0][: settings["jacobian_samples"]], tol=settings["tol"])
    return {"jacobian_norm_mean": float(jacobians.mean()), "jacobian_norm_product": float(jacobians.prod()),
            "variance_ratio": flow[-2]["preactivation_variance"] / flow[0]["preactivation_variance"],
            "lambda_max": lambda_max(model, batch, settings["tol"]) if curvature else None}


def depth_study(settings: dict, params: dict, data: Any, batch: Batch) -> dict[str, list[Row]]:
    """Per activation, depth and init: the at-init quantities for every seed; the best grid lr by mean
    val loss of the first ``select_seeds`` seeds, then every seed's train loss at that lr."""
    runs, at_init = [], []
    for activation in settings["activations"]:
        for depth in settings["depths"]:
            overrides = [f"model.widths=[{','.join([str(settings['width'])] * depth)}]", f"model.activation={activation}"]
            for init in settings["inits"]:
                labels = {"init": init, "activation": activation, "depth": depth}
                models = {seed: initialized(init, seed, init_batch(batch, settings), overrides, params["data"]) for seed in params["seeds"]}
                at_init += [labels | {"seed": seed, "samples": len(batch[1])} | depth_at_init(m, batch, settings, k < settings["curvature_seeds"])
                            for k, (seed, m) in enumerate(models.items())]
                best, selected = best_lr(models, settings, data, labels)
                runs += [row | {"best_lr": best} for seed, m in models.items()
                         for row in ([selected[seed]] if seed in selected else lr_runs(m, settings["optim"], [best], data, settings, seed, **labels))]
                print(f"study depth: {activation} depth {depth} {init}: best lr {best:g}", flush=True)
    return {"depth/runs": runs, "depth/at_init": at_init, "depth": tables.depth_table({"runs": runs, "at_init": at_init})}


def best_lr(models: dict[int, nn.Module], settings: dict, data: Any, labels: Row) -> tuple[float, dict[int, Row]]:
    """The grid lr with the lowest mean val loss over the first ``select_seeds`` seeds (diverged runs count as inf),
    and those seeds' runs at it (the depth study reuses them instead of training them again)."""
    seeds = list(models)[: settings["select_seeds"]]
    trials = {float(lr): {seed: lr_runs(models[seed], settings["optim"], [float(lr)], data, settings, seed, **labels)[0] for seed in seeds}
              for lr in settings["lr_grid"]}
    scores = {lr: sum(tables.loss_or_inf(r["val_loss"]) for r in rows.values()) / len(rows) for lr, rows in trials.items()}
    best = min(scores, key=scores.get)
    return best, trials[best]


STUDIES = {"lr": ("study", lr_study), "depth": ("depth", depth_study)}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("name", choices=sorted(STUDIES))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    section, study = STUDIES[args.name]
    settings = params[section]
    from initlab.data.cache import load_prepared

    path = data_path(args.results, params["data"])
    data = load_prepared(path)
    batch = sample_train_batch(data.train, settings["curvature_samples"], seed=0)
    for name, rows in study(settings, params, data, batch).items():
        write_csv(Path(args.results) / "study" / f"{name}.csv", rows)


if __name__ == "__main__":
    main()
