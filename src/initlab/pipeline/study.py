"""DVC stages ``study@lr`` and ``study@depth``: many runs of one config, evaluated at several budgets.

    python -m initlab.pipeline.study lr      # params.yaml study -> results/study/{lr/*,lr_grid,lr_fairness}.csv
    python -m initlab.pipeline.study depth   # params.yaml depth -> results/study/{depth/*,depth}.csv

The loop (the API the bench builds on): an :class:`Arm` is one lr setting with an lr per seed;
``successive_halving(arms, start, data, settings)`` trains them budget by budget, where
``start = starter(model_of, optim, settings)`` turns ``arm.lrs`` (seed -> lr) into one
:class:`SeedRuns` -- all seeds of the arm as one stacked model (``vmap(functional_call)``: one
batched matmul over seeds per layer; per-seed batch orders, lrs and divergence; one
``torch.optim`` step per lr for all live seeds) that equals the per-seed :class:`Run` loop to float
tolerance. ``initialized`` builds a seed's model, ``budget_steps`` the step counts, and
:class:`GridSearch` extends a search whose selection sits on a grid edge and refines it around
the selection. Evaluation happens only at budgets.

Every run is a plain torch loop (no Lightning, no process per run) over the model of
``conf/experiment/pipeline.yaml``, the init registry (``conf/init``) and the optimizer configs
(``conf/optim``) on ``params.yaml`` ``device`` (auto: CUDA when present): minibatch steps on the
prepared train split, shuffled by the seed, evaluated (loss / accuracy on a fixed train subset, on
val and on test) at every budget of ``budgets`` (epochs of the train split; the depth study, where nothing
reads test before the longest budget, evaluates test there only). The split is fixed (the
prepared file of the first seed); a seed sets the init and the batch order, drawn on the CPU so a
run is the same batch sequence on every device.

Compute goes where it decides verdicts: the lr grid (per activation of ``activations``) is searched
by successive halving (every lr to the first budget, the best 1/``eta`` by mean val loss over all
seeds to the next, ...), a run
whose minibatch loss is non-finite or above ``diverge_factor`` x its first loss stops there
(``diverged``), and the reference lrs (the optimizer's default, c / lambda_max(H_0)) always run to
the longest budget. A selection on a grid edge adds values beyond it (``edge_extensions``); the SGD
grid is refined around its selection (``refine``). Selection reads val only; test is recorded,
never compared. On the CPU the independent parts (inits, seeds, configs) run in ``workers`` processes.
"""

import copy
import functools
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from initlab.pipeline import tables
from initlab.pipeline.common import (
    build_model, conf_node, data_path, lambda_max, load_data, load_params, make_initializer, parallel_map,
    sample_train_batch, stage_device, stage_parser, write_csv,
)

Row = dict[str, Any]
Batch = tuple[Tensor, Tensor]


def batches(n: int, batch_size: int, seed: int) -> Iterator[Tensor]:
    """Index batches of reshuffled epochs over ``n`` samples, without end (a seeded CPU generator: reproducible on
    every device); the last incomplete batch of an epoch is dropped."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        for idx in torch.randperm(n, generator=generator, device="cpu").split(batch_size):
            if len(idx) == batch_size:
                yield idx


def steps_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size


def budget_steps(settings: dict, n_train: int) -> list[int]:
    """``settings['budgets']`` (epochs) as step counts, increasing."""
    per_epoch = steps_per_epoch(n_train, settings["batch_size"])
    return sorted({round(epochs * per_epoch) for epochs in settings["budgets"]})


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


@dataclass
class Run:
    """One seed's training run, advanced budget by budget; it stops for good once it diverges (the spectra stage's loop,
    and the per-seed reference of :class:`SeedRuns`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    indices: Iterator[Tensor]
    diverge_factor: float
    steps: int = 0
    first_loss: float | None = None
    max_loss: float = -math.inf
    diverged: bool = False

    def advance(self, x: Tensor, y: Tensor, steps: int) -> None:
        """Train up to ``steps`` minibatch steps in all; record the first and the largest minibatch loss."""
        self.model.train()
        while self.steps < steps and not self.diverged:
            idx = next(self.indices).to(y.device)
            loss = F.cross_entropy(self.model(x[idx]), y[idx])
            value = loss.item()
            self.first_loss = value if self.first_loss is None else self.first_loss
            self.max_loss = max(self.max_loss, value)
            if not math.isfinite(value) or value > self.diverge_factor * self.first_loss:
                self.diverged = True
                break
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1

    def record(self, data: Any, eval_samples: int) -> Row:
        """Where the run stands: first / max minibatch loss, and train (first ``eval_samples``), val and test
        loss and accuracy (losses nan once diverged)."""
        row: Row = {"diverged": self.diverged, "first_loss": self.first_loss, "max_loss": self.max_loss}
        for split, (xs, ys) in eval_splits(data, eval_samples).items():
            loss_value, acc = evaluate(self.model, xs, ys)
            row[f"{split}_loss"] = loss_value if math.isfinite(loss_value) and not self.diverged else math.nan
            row[f"{split}_acc"] = acc
        return row


class SeedRuns:
    """All seeds of one arm trained as one model: the seeds' parameters stacked on a leading axis
    (``torch.func.stack_module_state``), one forward / backward per step for all seeds
    (``vmap(functional_call)``: a batched matmul over seeds), one optimizer step per parameter tensor for all seeds.

    Each seed keeps its own lr, its own batch order (:func:`batches` under its seed) and its own divergence: a seed
    whose minibatch loss is non-finite or above ``diverge_factor`` x its first stops there (its parameters frozen),
    the others go on. Seed s's trajectory is that of :class:`Run` on ``models[s]`` (tests/pipeline/test_study_loop.py);
    the loss of a step is the sum over seeds of each seed's mean loss, so no seed's gradient sees another's.
    """

    def __init__(self, models: Sequence[nn.Module], optim: str, lrs: Sequence[float], seeds: Sequence[int], n_train: int,
                 settings: dict):
        self.seeds = list(seeds)
        self.base = models[0]  # the architecture functional_call runs; its own tensors are never read
        self.params, self.buffers = torch.func.stack_module_state(list(models))
        self.params = {k: gradient_layout(p.detach()) for k, p in self.params.items()}
        device = next(iter(self.params.values())).device
        self.step_fn = STACKED_OPTIMIZERS[optim](self.params, [float(lr) for lr in lrs], **optimizer_settings(optim))
        self.indices = [batches(n_train, settings["batch_size"], seed) for seed in self.seeds]
        self.diverge_factor = settings["diverge_factor"]
        size = len(self.seeds)
        self.first_loss = torch.full((size,), math.nan, device=device)
        self.max_loss = torch.full((size,), -math.inf, device=device)
        self.diverged = torch.zeros(size, dtype=torch.bool, device=device)
        self.steps = 0

    def forward(self, params: dict[str, Tensor], x: Tensor, shared: bool = False) -> Tensor:
        """The seeds' outputs [seeds, batch, classes] on per-seed inputs ``x`` [seeds, batch, ...] (or one input for
        every seed when ``shared``)."""
        def one(p: dict[str, Tensor], b: dict[str, Tensor], xs: Tensor) -> Tensor:
            return torch.func.functional_call(self.base, (p, b), (xs,))

        return torch.func.vmap(one, in_dims=(0, 0, None if shared else 0))(params, self.buffers, x)

    def advance(self, x: Tensor, y: Tensor, steps: int) -> None:
        """Train up to ``steps`` minibatch steps in all (the diverged seeds frozen); record first and largest losses."""
        params = list(self.params.values())
        while self.steps < steps and not bool(self.diverged.all()):
            idx = torch.stack([next(it) for it in self.indices]).to(y.device)
            leaves = {k: p.requires_grad_(True) for k, p in self.params.items()}
            flat = idx.flatten()  # index_select: 5x faster than x[idx] with a 2-D index on the CPU (0.1 vs 0.56 ms)
            out = self.forward(leaves, x.index_select(0, flat).view(*idx.shape, *x.shape[1:]))
            losses = F.cross_entropy(out.flatten(0, 1), y.index_select(0, flat), reduction="none").view(idx.shape).mean(dim=1)
            value = losses.detach()
            self.first_loss = torch.where(self.first_loss.isnan(), value, self.first_loss)
            alive = ~self.diverged
            self.max_loss = torch.where(alive, torch.maximum(self.max_loss, value), self.max_loss)
            self.diverged |= alive & ~(value.isfinite() & (value <= self.diverge_factor * self.first_loss))
            grads = [same_layout(g, p) for g, p in zip(torch.autograd.grad(losses.sum(), params), params, strict=True)]
            for p in params:
                p.requires_grad_(False)
            self.step_fn(grads, ~self.diverged)
            self.steps += 1

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor, chunk: int = 2048) -> tuple[Tensor, Tensor]:
        """Per seed: mean cross-entropy and accuracy on (x, y)."""
        loss = torch.zeros(len(self.seeds), device=y.device, dtype=torch.float64)
        correct = torch.zeros(len(self.seeds), device=y.device, dtype=torch.int64)
        for xs, ys in zip(x.split(chunk), y.split(chunk), strict=True):
            out = self.forward(self.params, xs, shared=True)
            loss += F.cross_entropy(out.flatten(0, 1), ys.repeat(len(self.seeds)), reduction="none").view(len(self.seeds), -1).sum(1)
            correct += (out.argmax(dim=2) == ys).sum(dim=1)
        return loss / len(y), correct / len(y)

    def record(self, data: Any, eval_samples: int, test: bool = True) -> list[Row]:
        """Per seed, where the run stands (as :meth:`Run.record`): first / max minibatch loss, train (first
        ``eval_samples``), val and (when ``test``; else None) test loss and accuracy (losses nan once diverged)."""
        diverged = self.diverged.tolist()
        rows = [{"diverged": d, "first_loss": f, "max_loss": m}
                for d, f, m in zip(diverged, self.first_loss.tolist(), self.max_loss.tolist(), strict=True)]
        for split, (xs, ys) in eval_splits(data, eval_samples, test).items():
            losses, accs = (v.tolist() for v in self.evaluate(xs, ys))
            for row, loss_value, acc, d in zip(rows, losses, accs, diverged, strict=True):
                row[f"{split}_loss"] = loss_value if math.isfinite(loss_value) and not d else math.nan
                row[f"{split}_acc"] = acc
        if not test:
            for row in rows:
                row.update(test_loss=None, test_acc=None)
        for row in rows:
            row["first_loss"] = None if math.isnan(row["first_loss"]) else row["first_loss"]
        return rows


def eval_splits(data: Any, eval_samples: int, test: bool = True) -> dict[str, Batch]:
    """What a run is evaluated on at a budget: the first ``eval_samples`` train samples, val and (when ``test``) test."""
    splits = {"train": (data.train.x[:eval_samples], data.train.y[:eval_samples]), "val": (data.val.x, data.val.y)}
    return splits | ({"test": (data.test.x, data.test.y)} if test else {})


def gradient_layout(stacked: Tensor) -> Tensor:
    """A stacked Linear weight [seeds, out, in] stored as [seeds, in, out] (its values unchanged): the layout in which
    vmap's backward produces its gradient, so the step reads parameter and gradient in the same memory order without a
    copy per step (a transposing copy of every gradient was ~20% of a depth-16 step on the CPU)."""
    return stacked.mT.contiguous().mT if stacked.dim() == 3 else stacked


def same_layout(grad: Tensor, param: Tensor) -> Tensor:
    """``grad`` in ``param``'s memory layout (as it comes, for the layouts :func:`gradient_layout` sets; else copied)."""
    return grad if grad.stride() == param.stride() else torch.empty_like(param).copy_(grad)


def _lr_groups(lrs: Sequence[float], mask: Tensor) -> dict[float, list[int]]:
    """The live seeds (``mask``) by lr: one fused optimizer call per distinct lr (one call on a grid arm)."""
    groups: dict[float, list[int]] = {}
    for s, (lr, live) in enumerate(zip(lrs, mask.tolist(), strict=True)):
        if live:
            groups.setdefault(lr, []).append(s)
    return groups


def _slices(tensors: Sequence[Tensor], seeds: Sequence[int]) -> list[Tensor]:
    """Seed ``s``'s view of every stacked tensor, for each of ``seeds``: what torch.optim's fused kernels step."""
    return [t[s] for s in seeds for t in tensors]


def _fused(device: torch.device) -> bool:
    """torch.optim's fused kernels run on the CPU and CUDA; elsewhere its foreach path."""
    return device.type in ("cpu", "cuda")


def stacked_sgd(params: dict[str, Tensor], lrs: Sequence[float]) -> Callable[[Sequence[Tensor], Tensor], None]:
    """Plain SGD (book alg. 8.1) on stacked parameters: ``torch.optim.sgd.sgd`` on the live seeds' slices, lr per seed;
    a frozen seed's parameters stay as they are. Its foreach path: on the transposed slices of :func:`gradient_layout`
    4x faster than the fused kernel on the CPU (3.3 vs 13 ms per depth-16 step of 5 seeds)."""
    from torch.optim.sgd import sgd

    tensors = list(params.values())

    def step(grads: Sequence[Tensor], mask: Tensor) -> None:
        for lr, seeds in _lr_groups(lrs, mask).items():
            sgd(_slices(tensors, seeds), _slices(grads, seeds), [None] * (len(seeds) * len(tensors)), fused=False, foreach=True,
                lr=lr, weight_decay=0.0, momentum=0.0, dampening=0.0, nesterov=False, maximize=False)

    return step


def stacked_adam(params: dict[str, Tensor], lrs: Sequence[float], rho1: float, rho2: float, delta: float
                 ) -> Callable[[Sequence[Tensor], Tensor], None]:
    """Adam (book alg. 8.7, ``torch.optim.adam.adam``, fused) on stacked parameters, lr per seed, with per-seed moments
    and step counts; a frozen seed's parameters stay as they are."""
    from torch.optim.adam import adam

    tensors = list(params.values())
    fused = _fused(tensors[0].device)
    first = [torch.zeros_like(p) for p in tensors]
    second = [torch.zeros_like(p) for p in tensors]
    counts = [[torch.zeros((), device=p.device) for p in tensors] for _ in lrs]

    def step(grads: Sequence[Tensor], mask: Tensor) -> None:
        for lr, seeds in _lr_groups(lrs, mask).items():
            adam(_slices(tensors, seeds), _slices(grads, seeds), _slices(first, seeds), _slices(second, seeds), [],
                 [c for s in seeds for c in counts[s]], fused=fused, foreach=not fused, amsgrad=False, beta1=rho1, beta2=rho2,
                 lr=lr, weight_decay=0.0, eps=delta, maximize=False)

    return step


STACKED_OPTIMIZERS: dict[str, Callable[..., Callable[[Sequence[Tensor], Tensor], None]]] = {"sgd": stacked_sgd, "adam": stacked_adam}


def optimizer_settings(optim: str) -> dict[str, Any]:
    """The hyperparameters of ``conf/optim/<optim>.yaml`` other than lr (what the stacked step takes)."""
    if optim not in STACKED_OPTIMIZERS:
        raise ValueError(f"optimizer {optim!r} has no seed-batched step; batched: {sorted(STACKED_OPTIMIZERS)}")
    return {k: v for k, v in conf_node("optim", optim).items() if k not in ("_target_", "_partial_", "lr")}


@dataclass
class Arm:
    """One lr setting of a search: its labels, its lr per seed, and whether halving may drop it; ``runs``: its seeds
    trained together (:class:`SeedRuns`, started on first use)."""

    labels: Row
    lrs: dict[int, float]
    ranked: bool = True
    runs: Any = None


def successive_halving(arms: list[Arm], start: Callable[[dict[int, float]], Any], data: Any, settings: dict,
                       test_every_budget: bool = True) -> list[Row]:
    """Every arm (all its seeds at once: ``start(arm.lrs)``, a :class:`SeedRuns`) to the first budget; then only the
    best ceil(n / eta) ranked arms (at least ``min_keep``; mean val loss over seeds, a diverged run counts as inf) and
    every unranked arm go on to the next budget. One row per arm, seed and budget reached; test is evaluated at the
    longest budget only unless ``test_every_budget`` (the lr study's budget figure and budget checks read it)."""
    budgets = budget_steps(settings, len(data.train.y))
    per_epoch = steps_per_epoch(len(data.train.y), settings["batch_size"])
    rows, alive = [], list(arms)
    for k, steps in enumerate(budgets):
        scores = {}
        for arm in alive:
            if arm.runs is None:
                arm.runs = start(arm.lrs)
            arm.runs.advance(data.train.x, data.train.y, steps)
            records = arm.runs.record(data, settings["eval_samples"], test_every_budget or k + 1 == len(budgets))
            rows += [arm.labels | {"seed": seed, "lr": lr, "epochs": steps / per_epoch, "steps": steps} | record
                     for (seed, lr), record in zip(arm.lrs.items(), records, strict=True)]
            scores[id(arm)] = statistics.fmean(tables.loss_or_inf(r["val_loss"]) for r in records)
        if k + 1 < len(budgets):
            ranked = sorted((a for a in alive if a.ranked), key=lambda a: scores[id(a)])
            keep = max(math.ceil(len(ranked) / settings["eta"]), settings["min_keep"])
            kept = {id(a) for a in ranked[:keep]}
            for arm in alive:
                if arm.ranked and id(arm) not in kept:
                    arm.runs = None  # free the dropped runs' models
            alive = [a for a in alive if not a.ranked or id(a) in kept]
    return rows


def initialized(init: str, seed: int, batch: Batch, model_overrides: Sequence[str], data: str) -> nn.Module:
    """The pipeline model with ``model_overrides`` built on ``batch``'s device, initialized by ``conf/init/<init>``
    under ``seed`` (a data-aware init sees ``batch``)."""
    torch.manual_seed(seed)
    with torch.device(batch[0].device):
        return make_initializer(init)(build_model(data, model_overrides), batch=batch)


def init_batch(batch: Batch, settings: dict) -> Batch:
    """The first ``init_samples`` samples of the curvature batch: what a data-aware init sees."""
    return batch[0][: settings["init_samples"]], batch[1][: settings["init_samples"]]


def starter(model_of: Callable[[int], nn.Module], optim: str, settings: dict) -> Callable[[dict[int, float]], SeedRuns]:
    """``start(lrs)``: every seed of ``lrs`` (seed -> lr) trained together from its own ``model_of(seed)`` under
    ``optim`` (a :class:`SeedRuns`)."""
    def start(lrs: dict[int, float]) -> SeedRuns:
        return SeedRuns([model_of(seed) for seed in lrs], optim, list(lrs.values()), list(lrs), settings["n_train"], settings)

    return start


def default_lr(optim: str) -> float:
    """The lr of ``conf/optim/<optim>.yaml``: what a user gets without choosing one."""
    return float(conf_node("optim", optim)["lr"])


# ---------------------------------------------------------------- the lr study


def theorem2_rows(model: nn.Module, batch: Batch, tol: float) -> list[Row]:
    """Per weight layer: lambda_max of its Hessian block over ``batch`` and its ratio to paper Theorem 2's
    bound as written and corrected (``initlab.analysis.theorem2_bounds``)."""
    from initlab.analysis import CurvatureProblem, theorem2_bounds

    records = theorem2_bounds(CurvatureProblem(model, F.cross_entropy, batch, batch_size=1024), tol=tol, jacobian_tol=tol,
                              gauss_newton=False)
    return [{"layer": k} | {key: r[key] for key in ("lambda_max", "ratio_as_written", "ratio_corrected")} for k, r in enumerate(records)]


def lr_overrides(activation: str) -> list[str]:
    """The pipeline model with ``activation`` (the lr study covers tanh, the paper's setting, and ReLU, He's)."""
    return [f"model.activation={activation}"]


def lr_at_init(task: tuple) -> tuple[Row, list[Row]]:
    """One activation, init and seed: lambda_max(H_0) on the curvature batch and the Theorem 2 rows."""
    settings, params, context, activation, init, seed = task
    data, batch = context.load(settings["curvature_samples"])
    model = initialized(init, seed, init_batch(batch, settings), lr_overrides(activation), params["data"])
    lam = lambda_max(model, batch, settings["tol"])
    labels = {"activation": activation, "init": init, "seed": seed}
    bounds = [labels | row for row in theorem2_rows(model, batch, settings["tol"])]
    print(f"study lr: {activation} {init} seed {seed}: lambda_max {lam:.4g}", flush=True)
    return labels | {"lambda_max": lam, "samples": len(batch[1])}, bounds


# ---------------------------------------------------------------- grids that decide: edges extended, selection refined


def grid_best(rows: Sequence[Row], key: str) -> float:
    """The ``key`` value (lr or c) with the lowest mean val loss over seeds at the longest budget."""
    top = max(r["epochs"] for r in rows)
    return tables.lowest([r | {"lr": r[key]} for r in rows if r["epochs"] == top], ())[()]


def all_diverged(rows: Sequence[Row]) -> bool:
    """Every seed of an arm diverged (read at its longest budget)."""
    top = max(r["epochs"] for r in rows)
    return all(r["diverged"] for r in rows if r["epochs"] == top)


@dataclass
class GridSearch:
    """One searched axis (``key``: lr, or c of lr = c / lambda_0): ``train(value)`` runs a new arm of that value
    through every budget (its rows labelled ``grid_pass``); ``ratio``: the grid's factor between neighbours."""

    key: str
    train: Callable[[float, str], list[Row]]
    ratio: float

    def extend(self, rows: list[Row], values: list[float], bound: int) -> Row:
        """While the selection sits on an edge of ``values``: one more value beyond that edge (``ratio`` further), at
        most ``bound`` times; stop early when the new value diverges for every seed. The edge columns of the search:
        ``grid_edge`` (none | low | high: where the final selection sits) and ``edge_reason`` (interior | next_diverges:
        the value beyond the edge diverged for every seed | bound: ``bound`` extensions spent, "at every value tried")."""
        for extension in range(bound + 1):
            best = grid_best(rows, self.key)
            side = "low" if best == min(values) else "high" if best == max(values) else None
            if side is None:
                return {"grid_edge": "none", "edge_reason": "interior"}
            if extension == bound:
                return {"grid_edge": side, "edge_reason": "bound"}
            value = best / self.ratio if side == "low" else best * self.ratio
            new = self.train(value, "edge")
            rows += new
            values.append(value)
            if all_diverged(new):
                return {"grid_edge": side, "edge_reason": "next_diverges"}
        raise AssertionError("unreachable")

    def refine(self, rows: list[Row], values: list[float], points_per_octave: int) -> float:
        """Values at 2^(k / points_per_octave) x the selection, strictly between its grid neighbours (one ``ratio``
        either side), each trained through every budget; the resolution reached (log10 of the finest step around the
        selection, decades)."""
        best = grid_best(rows, self.key)
        step = 2 ** (1 / points_per_octave)
        span = math.floor(math.log(self.ratio, step) - 1e-9)
        for k in [*range(-span, 0), *range(1, span + 1)]:
            value = best * step ** k
            if not any(math.isclose(value, v, rel_tol=1e-6) for v in values):
                rows += self.train(value, "refine")
                values.append(value)
        return math.log10(step) if span else math.log10(self.ratio)


def grid_ratio(values: Sequence[float]) -> float:
    """The geometric step of a grid: its geometric-mean factor between neighbours (a grid has two values at least)."""
    ordered = sorted(values)
    if len(ordered) < 2:
        raise ValueError(f"a searched grid needs two values at least to have edges and a step, got {ordered}")
    return (ordered[-1] / ordered[0]) ** (1 / (len(ordered) - 1))


def lr_search(task: tuple) -> list[Row]:
    """One activation, init and optimizer, all seeds: the grid by successive halving, the default lr and
    c / lambda_max(H_0); then the grid extended at an edge selection (``edge_extensions``) and refined around the
    selection (optimizers of ``refine.optims``, ``refine.points_per_octave``)."""
    settings, params, context, activation, init, optim, lams = task
    data, batch = context.load(settings["curvature_samples"])
    default = default_lr(optim)
    grid = [float(lr) for lr in settings["lr_grid"][optim]]
    seeds = params["seeds"]
    arms = [Arm({"setting": "grid", "grid_pass": "grid"}, dict.fromkeys(seeds, lr), ranked=lr != default) for lr in grid]
    arms += [] if default in grid else [Arm({"setting": "default"}, dict.fromkeys(seeds, default), ranked=False)]
    arms.append(Arm({"setting": "curvature"}, {seed: settings["curvature_c"] / lams[seed] for seed in seeds}, ranked=False))
    overrides = lr_overrides(activation)
    models = {seed: initialized(init, seed, init_batch(batch, settings), overrides, params["data"]) for seed in seeds}
    start = starter(lambda seed: copy.deepcopy(models[seed]), optim, settings | {"n_train": len(data.train.y)})
    rows = successive_halving(arms, start, data, settings)

    def train(lr: float, grid_pass: str) -> list[Row]:
        return successive_halving([Arm({"setting": "grid", "grid_pass": grid_pass}, dict.fromkeys(seeds, lr))], start, data, settings)

    search, values = GridSearch("lr", train, grid_ratio(grid)), list(grid)
    grid_rows = [r for r in rows if r["setting"] == "grid"]
    edge = search.extend(grid_rows, values, settings["edge_extensions"])
    refined = optim in settings["refine"]["optims"]
    resolution = search.refine(grid_rows, values, settings["refine"]["points_per_octave"]) if refined else math.log10(search.ratio)
    rows = [r for r in rows if r["setting"] != "grid"] + grid_rows
    print(f"study lr: {activation} {init} {optim}: {len(rows)} evaluations, best lr {grid_best(grid_rows, 'lr'):.3g} "
          f"({edge['edge_reason']})", flush=True)
    labels = {"activation": activation, "init": init, "default_lr": default, "optim": optim} | edge | {"lr_resolution": resolution}
    return [labels | {"lambda_max": lams[r["seed"]]} | r for r in rows]


def lr_search_cost(task: tuple) -> float:
    """A search's relative cost: a refined one trains its refinement arms to the longest budget too (1.5x, measured)."""
    settings, optim = task[0], task[5]
    return 1.5 if optim in settings["refine"]["optims"] else 1.0


def depth_cost(task: tuple) -> float:
    """A depth task's relative cost: its depth plus the first layer (784 x width: about 3 hidden layers of width 256)."""
    return task[4] + 3


def lr_study(settings: dict, params: dict, context: "StageContext") -> dict[str, list[Row]]:
    """Per activation, init and seed: lambda_max at init (and Theorem 2's rows); per activation, init and optimizer:
    every seed at the grid lrs (successive halving, extended at an edge, refined around the selection), the default lr
    and lr = c / lambda_max (``setting``: grid, default, curvature)."""
    triples = [(a, init, seed) for a in settings["activations"] for init in params["inits"] for seed in params["seeds"]]
    measured = context.map(lr_at_init, [(settings, params, context, *t) for t in triples])
    at_init = [row for row, _ in measured]
    bounds = [row for _, rows in measured for row in rows]
    lams = {(r["activation"], r["init"], r["seed"]): r["lambda_max"] for r in at_init}
    tasks = [(settings, params, context, a, init, optim, {seed: lams[(a, init, seed)] for seed in params["seeds"]})
             for a in settings["activations"] for init in params["inits"] for optim in params["optimizers"]]
    budgets = [row for rows in context.map(lr_search, tasks, cost=lr_search_cost) for row in rows]
    final = longest(budgets)
    return {"lr/runs": final, "lr/budgets": budgets, "lr/at_init": at_init, "lr/theorem2": bounds,
            "lr_grid": tables.lr_grid_table(budgets), "lr_fairness": tables.lr_fairness_table(budgets)}


def longest(rows: list[Row]) -> list[Row]:
    """The rows at the longest budget."""
    top = max(r["epochs"] for r in rows)
    return [r for r in rows if r["epochs"] == top]


# ---------------------------------------------------------------- the depth study


def depth_overrides(settings: dict, activation: str, depth: int) -> list[str]:
    return [f"model.widths=[{','.join([str(settings['width'])] * depth)}]", f"model.activation={activation}"]


def depth_at_init(model: nn.Module, batch: Batch, settings: dict, curvature: bool) -> Row:
    """Mean and product of the layer Jacobian norms ||J^(k)||, forward variance ratio Var(u^(L))/Var(u^(1))
    over the L hidden layers, and (when ``curvature``: it dominates the cost) lambda_max on ``curvature_samples``."""
    from initlab.analysis import layer_jacobian_norms, variance_flow

    flow = variance_flow(model, F.cross_entropy, *batch)
    jacobians = layer_jacobian_norms(model, batch[0][: settings["jacobian_samples"]], tol=settings["tol"])
    return {"jacobian_norm_mean": float(jacobians.mean()), "jacobian_norm_product": float(jacobians.prod()),
            "variance_ratio": flow[-2]["preactivation_variance"] / flow[0]["preactivation_variance"],
            "lambda_max": lambda_max(model, batch, settings["tol"]) if curvature else None}


def depth_config_at_init(task: tuple) -> list[Row]:
    """One activation, depth and init: the at-init quantities of every seed (lambda_max for the first
    ``curvature_seeds``)."""
    settings, params, context, activation, depth, init = task
    data, batch = context.load(settings["curvature_samples"])
    labels = {"init": init, "activation": activation, "depth": depth}
    rows = []
    for k, seed in enumerate(params["seeds"]):
        model = initialized(init, seed, init_batch(batch, settings), depth_overrides(settings, activation, depth), params["data"])
        rows.append(labels | {"seed": seed, "samples": len(batch[1])} | depth_at_init(model, batch, settings, k < settings["curvature_seeds"]))
    return rows


def depth_search(task: tuple) -> list[Row]:
    """One activation, depth and init, all seeds: lr = c / lambda_0 for every c of ``lr_factors`` by successive halving,
    extended at an edge selection (``edge_extensions``)."""
    settings, params, context, activation, depth, init, lambda_0 = task
    data, batch = context.load(settings["curvature_samples"])
    overrides = depth_overrides(settings, activation, depth)
    labels = {"init": init, "activation": activation, "depth": depth, "lambda_0": lambda_0}
    seeds = params["seeds"]
    arms = [Arm(labels | {"c": c, "grid_pass": "grid"}, dict.fromkeys(seeds, c / lambda_0)) for c in settings["lr_factors"]]
    models = {seed: initialized(init, seed, init_batch(batch, settings), overrides, params["data"]) for seed in seeds}
    start = starter(lambda seed: copy.deepcopy(models[seed]), settings["optim"], settings | {"n_train": len(data.train.y)})
    rows = successive_halving(arms, start, data, settings, test_every_budget=False)

    def train(c: float, grid_pass: str) -> list[Row]:
        return successive_halving([Arm(labels | {"c": c, "grid_pass": grid_pass}, dict.fromkeys(seeds, c / lambda_0))], start, data,
                                  settings, test_every_budget=False)

    search = GridSearch("c", train, grid_ratio(settings["lr_factors"]))
    edge = search.extend(rows, list(settings["lr_factors"]), settings["edge_extensions"])
    best = tables.best_depth_lr(rows)
    print(f"study depth: {activation} depth {depth} {init}: lambda_0 {lambda_0:.4g}, best lr {best:g} ({edge['edge_reason']})",
          flush=True)
    return [r | edge | {"best_lr": best} for r in rows]


def depth_study(settings: dict, params: dict, context: "StageContext") -> dict[str, list[Row]]:
    """Per activation, depth and init: the at-init quantities for every seed; at the ``train_depths`` the lr search
    over c / lambda_0 (lambda_0: geometric mean of lambda_max at init over the curvature seeds)."""
    configs = [(a, d, i) for a in settings["activations"] for d in settings["depths"] for i in settings["inits"]]
    at_init = [row for rows in context.map(depth_config_at_init, [(settings, params, context, *c) for c in configs], cost=depth_cost)
               for row in rows]
    lambda_0 = {key: tables.geometric_mean(r["lambda_max"] for r in group)
                for key, group in tables.group_by(at_init, "activation", "depth", "init").items()}
    tasks = [(settings, params, context, a, d, i, lambda_0[(a, d, i)]) for a, d, i in configs
             if d in settings["train_depths"] and i in settings["train_inits"]]
    budgets = [row for rows in context.map(depth_search, tasks, cost=depth_cost) for row in rows]
    runs = [r for r in longest(budgets) if r["lr"] == r["best_lr"]]
    return {"depth/runs": runs, "depth/budgets": budgets, "depth/at_init": at_init,
            "depth": tables.depth_table({"runs": runs, "at_init": at_init})}


# ---------------------------------------------------------------- the stage


@dataclass(frozen=True)
class StageContext:
    """What every task of a stage needs: where the prepared data lives, the device, how many worker processes."""

    data_file: Path
    device: str
    workers: int

    def load(self, samples: int) -> tuple[Any, Batch]:
        """The prepared data on the device and the curvature batch (``samples`` train samples chosen by seed 0);
        read once per process."""
        return _loaded(self.data_file, self.device, samples)

    def map(self, function: Callable[[tuple], Any], tasks: list[tuple], cost: Callable[[tuple], float] | None = None
            ) -> list[Any]:
        return parallel_map(function, tasks, self.workers, cost)


@functools.cache
def _data(path: Path, device: str) -> Any:
    return load_data(path, torch.device(device))


@functools.cache
def _loaded(path: Path, device: str, samples: int) -> tuple[Any, Batch]:
    data = _data(path, device)
    return data, sample_train_batch(data.train, samples, seed=0)


STUDIES = {"lr": ("study", lr_study), "depth": ("depth", depth_study)}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("name", choices=sorted(STUDIES))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    device = stage_device(params["device"])
    section, study = STUDIES[args.name]
    workers = params["workers"] if device.type == "cpu" else 1  # one process drives an accelerator
    context = StageContext(data_path(args.results, params["data"]), str(device), workers)
    for name, rows in study(params[section], params, context).items():
        write_csv(Path(args.results) / "study" / f"{name}.csv", rows)


if __name__ == "__main__":
    main()
