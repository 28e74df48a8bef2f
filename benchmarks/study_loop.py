"""The study's seed-batched loop vs its per-seed loop: 5 seeds of the pipeline MLP trained one arm at a time.

    python benchmarks/study_loop.py                 # tanh, SGD and Adam, ~1 min
    python benchmarks/study_loop.py --steps 40 --rounds 5 --depth 16

Both arms train the same seeds from the same inits with the same per-seed batch orders for
``--steps`` minibatch steps (batch 128) on the MNIST-shaped prepared split: "per-seed" is
``study.Run`` once per seed (the torch.optim optimizer of ``conf/optim``), "batched" is one
``study.SeedRuns`` for all seeds (stacked parameters, vmap(functional_call), one optimizer step per
tensor). Ratio: per-seed seconds / batched seconds (CPU time, one torch thread), median of
per-round ratios; > 1 means the batched loop is faster.
"""

import argparse
import copy

import torch

from common import interleaved, machine_line, paired_ratio, ratio_line, timed
from initlab.models import mlp
from initlab.pipeline import study
from initlab.pipeline.common import make_optimizer

SEEDS = [1, 2, 3, 4, 5]
N_TRAIN, BATCH = 7000, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=54, help="minibatch steps per arm (54: one epoch of mnist_t10k)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=2, help="hidden layers of width 256 (the pipeline MLP: 2)")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(N_TRAIN, 1, 28, 28, generator=generator), torch.randint(0, 10, (N_TRAIN,), generator=generator)
    models = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(mlp((1, 28, 28), 10, widths=[256] * args.depth, activation=args.activation))
    settings = {"batch_size": BATCH, "diverge_factor": 10}
    print(machine_line())
    ratios = []
    for optim, lr in (("sgd", 0.1), ("adam", 1e-3)):
        def per_seed() -> float:
            def body() -> None:
                for seed, model in zip(SEEDS, copy.deepcopy(models), strict=True):
                    run = study.Run(model, make_optimizer(optim, model.parameters(), lr=lr), study.batches(N_TRAIN, BATCH, seed), 10)
                    run.advance(x, y, args.steps)
            return timed(body).cpu

        def batched() -> float:
            return timed(lambda: study.SeedRuns(copy.deepcopy(models), optim, [lr] * len(SEEDS), SEEDS, N_TRAIN, settings)
                         .advance(x, y, args.steps)).cpu

        times = interleaved({"per-seed": per_seed, "batched": batched}, args.rounds)
        ratio = paired_ratio(times["per-seed"], times["batched"])
        ratios.append(ratio)
        print(f"{optim}: per-seed {min(times['per-seed']):.2f} s, batched {min(times['batched']):.2f} s "
              f"({len(SEEDS)} seeds x {args.steps} steps, depth {args.depth}): ratio {ratio:.2f}")
    print(ratio_line("study_loop_batched_speedup", min(ratios), goal=1.0))


if __name__ == "__main__":
    main()
