"""DVC stage ``bench@<init>`` (``bench/dvc.yaml``): one initializer's scorecard, per activation and seed.

    python -m initlab.pipeline.bench <init>   # params.yaml bench -> results/bench/inits/<init>.csv

One row per (activation, quantity, depth, optimizer, setting, budget, seed): the long format the
leaderboard (:mod:`initlab.pipeline.bench_report`) reads for every init alike. The runs are the
study's (:mod:`initlab.pipeline.study`): the same model builder, init registry, successive halving,
``Run`` loop and val-only selection (``tables.lowest``); the at-init quantities are the depth study's
(``depth_at_init``) plus the analysis engine's trace and dead-unit fraction; the step-factor scan is
the ``lr_stability`` demo's full-batch GD. Nothing here is a second copy of a loop or a statistic.

- at init, at every depth of ``depths``: lambda_max(H_0) and trace (one block Lanczos,
  ``curvature_record``), the product of layer Jacobian norms, the per-layer forward variance gain
  (Var(u^(L)) / Var(u^(1)))^(1/(L-1)) and (ReLU) the dead-unit fraction;
- stability at the first depth: the largest factor c of ``stability.factors`` at which every step of
  full-batch GD with lr = c / lambda_max(H_0) lowers the loss; the largest grid lr whose SGD run does
  not diverge within the first budget;
- training at the first depth, per optimizer: train loss, val and test accuracy after every budget at
  the lr chosen on val loss at that budget, and at the optimizer's default lr;
- depth: the train loss at the deepest depth after the longest budget at its lr chosen on val.
"""

import copy
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.nn import functional as F

from initlab.pipeline import tables
from initlab.pipeline.common import conf_node, data_path, load_params, stage_device, stage_parser, write_csv
from initlab.pipeline.study import (
    Arm, StageContext, default_lr, depth_at_init, init_batch, initialized, starter, successive_halving,
)

Row = dict[str, Any]
AT_INIT = "at_init"


def bench_file(results: str | Path, init: str) -> Path:
    """Where ``bench@<init>`` writes its scorecard rows."""
    return Path(results) / "bench" / "inits" / f"{init}.csv"


def overrides(settings: dict, activation: str, depth: int) -> list[str]:
    """The model of one bench cell: ``depth`` hidden layers of ``width`` units, ``activation``."""
    return [f"model.widths=[{','.join([str(settings['width'])] * depth)}]", f"model.activation={activation}"]


def quantity(name: str, value: Any, depth: int, optim: str = "", setting: str = AT_INIT, epochs: float = 0) -> Row:
    return {"quantity": name, "depth": depth, "optim": optim, "setting": setting, "epochs": epochs, "value": value}


def at_init_rows(model, batch, settings: dict, depth: int) -> list[Row]:
    """lambda_max(H_0) and trace (analysis engine), Jacobian-norm product, per-layer variance gain, dead-unit fraction."""
    from initlab.analysis import CurvatureProblem, curvature_record, dead_relu_fraction

    record = curvature_record(CurvatureProblem(model, F.cross_entropy, batch, batch_size=len(batch[1])), k=1, tol=settings["tol"],
                              trace_probes=settings["trace_probes"])
    flow = depth_at_init(model, batch, settings, curvature=False)
    dead = dead_relu_fraction(model, batch[0])
    rows = [quantity("lambda_max", record.lambda_max, depth), quantity("trace", record.trace, depth),
            quantity("jacobian_norm_product", flow["jacobian_norm_product"], depth),
            quantity("variance_gain", flow["variance_ratio"] ** (1 / (depth - 1)), depth)]
    return rows + ([quantity("dead_fraction", sum(dead.values()) / len(dead), depth)] if dead else [])


def every_step_lowers(losses: Sequence[float]) -> bool:
    """Whether every step of a GD run lowered the (finite) loss."""
    return all(map(math.isfinite, losses)) and all(b < a for a, b in zip(losses, losses[1:]))


def largest_safe_factor(model, batch, lam: float, stability: dict) -> float:
    """The largest c of ``factors`` at which every one of ``steps`` full-batch GD steps with lr = c / lambda_max(H_0)
    lowers the loss, and at every smaller factor too (0 when the smallest fails): the issue-26 reading of "guarantees a
    decrease"."""
    from initlab.pipeline.demos.lr_stability import gradient_descent_losses

    safe = 0.0
    for c in sorted(stability["factors"]):  # upwards until the first factor with a step that does not lower the loss
        if not every_step_lowers(gradient_descent_losses(model, *batch, c / lam, stability["steps"])):
            break
        safe = c
    return safe


def search(models: dict[int, Any], optim: str, settings: dict, data: Any) -> list[Row]:
    """Every seed (``models``: the initialized model per seed) on the optimizer's lr grid by successive halving (the
    default lr always to the longest budget)."""
    default = default_lr(optim)
    grid = [float(lr) for lr in settings["lr_grid"][optim]]
    arms = [Arm({"setting": "grid"}, dict.fromkeys(models, lr), ranked=lr != default) for lr in grid]
    arms += [] if default in grid else [Arm({"setting": "default"}, dict.fromkeys(models, default), ranked=False)]
    start = starter(lambda seed: copy.deepcopy(models[seed]), optim, settings | {"n_train": len(data.train.y)})
    return [r | {"default_lr": default} for r in successive_halving(arms, start, data, settings)]


def trained_rows(rows: list[Row], depth: int, optim: str, metrics: Sequence[str]) -> list[Row]:
    """Per budget: ``metrics`` of every seed at the lr chosen on mean val loss (``best_lr``) and at the default lr."""
    out = []
    for (epochs,), group in tables.group_by(rows, "epochs").items():
        best = tables.lowest(group, ())[()]
        for setting, lr in (("best_lr", best), ("default", group[0]["default_lr"])):
            out += [quantity(m, r[m], depth, optim, setting, epochs) | {"seed": r["seed"], "lr": lr}
                    for r in group if r["lr"] == lr for m in metrics]
    return out


def largest_stable_lr(rows: list[Row], depth: int) -> list[Row]:
    """Per seed: the largest grid lr whose SGD run did not diverge within the first budget (0 when every one did)."""
    first = min(r["epochs"] for r in rows)
    return [quantity("max_stable_sgd_lr", max((r["lr"] for r in group if not r["diverged"] and r["setting"] == "grid"), default=0.0),
                     depth, "sgd", "grid", first) | {"seed": seed}
            for (seed,), group in tables.group_by([r for r in rows if r["epochs"] == first], "seed").items()]


def activation_rows(task: tuple) -> list[Row]:
    """One init and activation: every quantity of the scorecard, every seed."""
    init, activation, settings, params, context = task
    data, batch = context.load(settings["curvature_samples"])
    depths = settings["depths"]
    models = {(depth, seed): initialized(init, seed, init_batch(batch, settings), overrides(settings, activation, depth), params["data"])
              for depth in depths for seed in params["seeds"]}  # built once: a data-aware init costs seconds
    rows = []
    for (depth, seed), model in models.items():
        cells = at_init_rows(model, batch, settings, depth)
        if depth == depths[0]:
            lam = next(r["value"] for r in cells if r["quantity"] == "lambda_max")
            cells.append(quantity("safe_step_factor", largest_safe_factor(model, batch, lam, settings["stability"]), depth))
        rows += [r | {"seed": seed} for r in cells]
    at = {depth: {seed: models[(depth, seed)] for seed in params["seeds"]} for depth in (depths[0], depths[-1])}
    for optim in settings["optimizers"]:
        runs = search(at[depths[0]], optim, settings, data)
        rows += trained_rows(runs, depths[0], optim, ("train_loss", "val_acc", "test_acc"))
        rows += largest_stable_lr(runs, depths[0]) if optim == "sgd" else []
    deep = search(at[depths[-1]], settings["depth_optim"], settings, data)
    longest = max(r["epochs"] for r in deep)
    rows += [r for r in trained_rows([r for r in deep if r["epochs"] == longest], depths[-1], settings["depth_optim"], ("train_loss",))
             if r["setting"] == "best_lr"]
    print(f"bench: {init} {activation}: {len(rows)} values", flush=True)
    return [{"init": init, "activation": activation} | r for r in rows]


def bench_init(init: str, settings: dict, params: dict, context: StageContext) -> list[Row]:
    """The scorecard rows of ``init`` for every activation (one task per activation)."""
    return [row for rows in context.map(activation_rows, [(init, a, settings, params, context) for a in settings["activations"]])
            for row in rows]


def check_init(init: str, settings: dict) -> None:
    """``init`` must be a key of ``bench.inits`` and a config of ``conf/init`` whose every ``_target_`` passes the
    allowlist (``initlab.schema``, modules the user trusts included: ``INITLAB_TRUSTED_MODULES``): one line and exit 2
    otherwise, before any work."""
    from initlab.pipeline.params_schema import options
    from initlab.schema import TRUSTED_ENV, problem, target_problems

    if init not in settings["inits"] or init not in options("init"):
        found = [problem("init", init, f"must be one of bench.inits (params.yaml) with a conf/init/<name>.yaml: {list(settings['inits'])}")]
    elif min(settings["depths"]) < 2:
        found = [problem("bench.depths (params.yaml)", settings["depths"], "must be >= 2 (a variance gain needs two hidden layers)")]
    else:
        found = target_problems(conf_node("init", init), "init")
    if found:
        print(f"initlab: {found[0]} (or admit your own module: {TRUSTED_ENV}=<module>, docs/bench.md)", file=sys.stderr, flush=True)
        raise SystemExit(2)


def stage_item(stage: str) -> str | None:
    """The ``<init>`` of a DVC stage address ``bench/dvc.yaml:bench@<init>`` (None for any other address)."""
    name = stage.rsplit(":", 1)[-1]
    return name.split("@", 1)[1] if name.startswith("bench@") else None


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("init", nargs="?", default=stage_item(os.environ.get("DVC_STAGE", "")),
                        help="a name of params.yaml bench.inits (conf/init/<name>.yaml); default: the item of DVC's "
                             "DVC_STAGE (bench@<init>), so that bench/dvc.yaml pastes no params value into a shell")
    args = parser.parse_args(argv)
    if not args.init:
        parser.error("name the init (or run as a bench/dvc.yaml stage)")
    params = load_params(args.params)
    settings = params["bench"]
    check_init(args.init, settings)
    device = stage_device(params["device"])
    workers = params["workers"] if device.type == "cpu" else 1  # one process drives an accelerator
    context = StageContext(data_path(args.results, params["data"]), str(device), workers)
    write_csv(bench_file(args.results, args.init), bench_init(args.init, settings, params, context))


if __name__ == "__main__":
    main()
