"""How long ``initlab bench`` takes: one init's stage, the full leaderboard extrapolated, and the batched-seeds loop
against the per-seed loop.

    python benchmarks/bench_speed.py                      # spectral, params.yaml's protocol: ~3-6 min on 2 shared cores
    python benchmarks/bench_speed.py --init lsuv --rounds 3

1. ``python -m initlab.pipeline.bench <init>`` as a subprocess (the stage ``dvc repro bench/dvc.yaml`` runs, ``workers``
   processes), wall and CPU seconds; the full leaderboard extrapolated as that x the number of ``bench.inits``
   (data-aware inits cost more at init: the estimate is a floor for them).
2. One optimizer's lr search of that init (the study's successive halving over ``bench.lr_grid``, every seed, every
   budget) with all seeds of an arm as one stacked model (``study.SeedRuns``) and with one ``study.Run`` per seed,
   interleaved in one process, one torch thread: RATIO = batched / per-seed CPU seconds (goal <= 0.5).
"""

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

from common import REPO_ROOT, interleaved, machine_line, paired_ratio, ratio_line, run_timed, timed


class PerSeedRuns:
    """The per-seed baseline with :class:`initlab.pipeline.study.SeedRuns`' interface: one ``Run`` per seed, in turn."""

    def __init__(self, runs):
        self.runs = runs

    def advance(self, x, y, steps: int) -> None:
        for run in self.runs:
            run.advance(x, y, steps)

    def record(self, data, eval_samples: int) -> list[dict]:
        return [run.record(data, eval_samples) for run in self.runs]


def per_seed_starter(model_of, optim: str, settings: dict):
    from initlab.pipeline.common import make_optimizer
    from initlab.pipeline.study import Run, batches

    def start(lrs: dict[int, float]) -> PerSeedRuns:
        models = {seed: model_of(seed) for seed in lrs}
        return PerSeedRuns([Run(models[s], make_optimizer(optim, models[s].parameters(), lr=lr),
                                batches(settings["n_train"], settings["batch_size"], s), settings["diverge_factor"])
                            for s, lr in lrs.items()])

    return start


def one_init(init: str, params_file: Path, results: Path) -> None:
    """Part 1: the stage as DVC runs it, on a scratch results folder holding a link to the prepared data."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "data").symlink_to((REPO_ROOT / results / "data").resolve())
        timing, _ = run_timed([sys.executable, "-m", "initlab.pipeline.bench", "--params", str(params_file), "--results", scratch,
                               init], env=env)
    import yaml

    count = len(yaml.safe_load(params_file.read_text())["bench"]["inits"])
    print(f"one init ({init}, both activations, every seed and budget): {timing.wall:.0f} s wall, {timing.cpu:.0f} s CPU")
    print(f"full leaderboard ({count} inits) extrapolated: {count * timing.wall / 60:.1f} min wall, {count * timing.cpu / 60:.1f} min CPU")


def loops(init: str, optim: str, rounds: int, params_file: Path, results: Path) -> float:
    """Part 2: batched / per-seed CPU seconds of one lr search."""
    import torch

    from initlab.pipeline import bench
    from initlab.pipeline.common import data_path, load_params
    from initlab.pipeline.study import Arm, StageContext, init_batch, initialized, starter, successive_halving

    torch.set_num_threads(1)
    params = load_params(params_file)
    settings = params["bench"]
    context = StageContext(REPO_ROOT / data_path(results, params["data"]), "cpu", 1)
    data, batch = context.load(settings["curvature_samples"])
    models = {seed: initialized(init, seed, init_batch(batch, settings), bench.overrides(settings, "relu", settings["depths"][0]),
                                params["data"]) for seed in params["seeds"]}
    run_settings = settings | {"n_train": len(data.train.y)}

    def search(make_start):
        arms = [Arm({"setting": "grid"}, dict.fromkeys(models, float(lr))) for lr in settings["lr_grid"][optim]]
        return lambda: timed(lambda: successive_halving(arms, make_start(lambda s: copy.deepcopy(models[s]), optim, run_settings),
                                                        data, settings))

    times = interleaved({"batched": search(starter), "per_seed": search(per_seed_starter)}, rounds)
    batched, per_seed = ([t.cpu for t in times[k]] for k in ("batched", "per_seed"))
    print(f"{optim} lr search, {len(models)} seeds x {len(settings['lr_grid'][optim])} lrs, budgets {settings['budgets']}: "
          f"batched {min(batched):.1f} s CPU, per-seed {min(per_seed):.1f} s CPU (best of {rounds})")
    return paired_ratio(batched, per_seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init", default="spectral", help="a name of params.yaml bench.inits (default: spectral)")
    parser.add_argument("--optim", default="sgd", help="the optimizer of part 2 (default: sgd)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of part 2 (default: 2)")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--results", type=Path, default=Path("results"), help="holds data/ (dvc pull or the prepare stage)")
    parser.add_argument("--skip-stage", action="store_true", help="part 2 only")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "src"))
    print(machine_line())
    if not args.skip_stage:
        one_init(args.init, args.params, args.results)
    ratio = loops(args.init, args.optim, args.rounds, args.params, args.results)
    print(machine_line())
    print(ratio_line("bench_batched_over_per_seed", ratio, 0.5, higher_is_better=False))


if __name__ == "__main__":
    main()
