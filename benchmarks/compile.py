"""``model.compile=true`` on CPU: training steps/s of ``torch.compile(model)`` vs eager, and the compile time.

    python benchmarks/compile.py                 # three MLP sizes, ~3 min (most of it compiling)
    python benchmarks/compile.py --sizes 784-1024-1024-10 --threads 2

For each MLP (relu, batch 128): the model compiled as the run body does it
(``torch.compile(model)``; the optimizer stays eager) and an eager copy with the same weights
train with Adam on the same random batches. Compile time is the wall time of the warm-up a real
run goes through: a training step on a full batch, one on a smaller last batch (a second shape:
dynamo recompiles with a dynamic batch dimension) and an evaluation forward under ``no_grad``
(another graph), minus the same warm-up in eager mode. Like ``python train.py model.compile=true``
it is paid in a fresh process, so it is measured in one: "cold" with an empty inductor cache (a
first run), "warm" with the cache the cold one filled (later runs of the same model). Steps/s:
``--steps`` full-batch steps, eager and compiled arms round-robin in this process, one torch
thread by default (a shared machine) timed on CPU time, wall time with ``--threads`` > 1.

Ratio: compiled steps/s over eager steps/s per size; the final line is the largest model's.
Break-even is the number of steps after which the faster steps repay the cold compile time
(a default digits run is 100 steps, a default mnist_t10k run 630). ``torch.compile`` needs a C++
compiler on CPU (inductor).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
from torch.nn import functional as F

from common import interleaved, machine_line, paired_ratio, ratio_line, run_timed, timed
from initlab.models import mlp
from initlab.optim import adam

GOAL = 1.0
BATCH = 128
LAST_BATCH = 105  # digits: 1,257 train samples = 9 x 128 + 105
EVAL_BATCH = 270
SHAPES = {64: (1, 8, 8), 784: (1, 28, 28)}


def parse_size(text: str) -> tuple[tuple[int, ...], list[int]]:
    sizes = [int(s) for s in text.split("-")]
    if sizes[0] not in SHAPES or sizes[-1] != 10:
        raise SystemExit(f"--sizes: {text}: input must be one of {sorted(SHAPES)} and output 10")
    return SHAPES[sizes[0]], sizes[1:-1]


def train_step(model, optimizer, inputs, targets) -> None:
    loss = F.cross_entropy(model(inputs), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def warm_up(model, optimizer, shape) -> float:
    """Wall seconds of what a run does first: full-batch step, last-batch step, eval forward."""
    generator = torch.Generator().manual_seed(1)

    def run() -> None:
        for n in (BATCH, LAST_BATCH):
            train_step(model, optimizer, torch.randn(n, *shape, generator=generator), torch.randint(0, 10, (n,), generator=generator))
        with torch.no_grad():
            model.eval()
            model(torch.randn(EVAL_BATCH, *shape, generator=generator))
            model.train()

    return timed(run).wall


def compile_seconds(text: str, threads: int) -> float:
    """Compile time of the warm-up (compiled minus eager), in this process: the ``--child`` mode."""
    torch.set_num_threads(threads)
    shape, widths = parse_size(text)
    torch.manual_seed(0)
    eager, twin = mlp(shape, 10, widths=widths), mlp(shape, 10, widths=widths)
    eager_warm = warm_up(eager, adam(eager.parameters()), shape)
    compiled = torch.compile(twin)
    return warm_up(compiled, adam(compiled.parameters()), shape) - eager_warm


def compile_seconds_in_fresh_process(text: str, threads: int, cache_dir: str) -> float:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir)
    cmd = [sys.executable, __file__, "--child", text, "--threads", str(threads)]
    _, output = run_timed(cmd, env=env)
    return json.loads(next(line for line in output.splitlines() if line.startswith('{"compile_s"')))["compile_s"]


def bench_size(text: str, steps: int, rounds: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="initlab-inductor-") as cache_dir:
        cold = compile_seconds_in_fresh_process(text, threads, cache_dir)
        warm = compile_seconds_in_fresh_process(text, threads, cache_dir)

    shape, widths = parse_size(text)
    torch.manual_seed(0)
    eager = mlp(shape, 10, widths=widths)
    twin = mlp(shape, 10, widths=widths)
    twin.load_state_dict(eager.state_dict())
    compiled = torch.compile(twin)
    eager_opt, compiled_opt = adam(eager.parameters()), adam(compiled.parameters())
    warm_up(compiled, compiled_opt, shape)

    generator = torch.Generator().manual_seed(2)
    batches = [(torch.randn(BATCH, *shape, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator)) for _ in range(8)]

    # CPU time is steadier on a shared machine, but it counts every thread: wall time with several.
    clock = "cpu" if threads == 1 else "wall"

    def arm(model, optimizer):
        def run() -> None:
            for i in range(steps):
                train_step(model, optimizer, *batches[i % len(batches)])

        return lambda: getattr(timed(run), clock)

    times = interleaved({"eager": arm(eager, eager_opt), "compiled": arm(compiled, compiled_opt)}, rounds)
    ratio = paired_ratio(times["eager"], times["compiled"])
    eager_step = statistics.median(times["eager"]) / steps
    saved = eager_step - eager_step / ratio
    return {
        "eager_sps": 1 / eager_step,
        "compiled_sps": ratio / eager_step,
        "ratio": ratio,
        "cold": cold,
        "warm": warm,
        "break_even": cold / saved if saved > 0 else float("inf"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["64-256-256-10", "784-256-256-10", "784-1024-1024-10"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"compile_s": compile_seconds(args.child, args.threads)}))
        return
    torch.set_num_threads(args.threads)
    print(machine_line())
    start = time.perf_counter()
    results = {size: bench_size(size, args.steps, args.rounds, args.threads) for size in args.sizes}
    print(f"batch {BATCH}, Adam, {args.steps} steps x {args.rounds} rounds per arm ({time.perf_counter() - start:.0f} s in all)")
    print(f"  {'MLP':18s} {'eager steps/s':>13s} {'compiled':>9s} {'ratio':>6s} {'compile cold s':>14s} {'warm s':>7s} {'break-even steps':>16s}")
    for size, r in results.items():
        print(
            f"  {size:18s} {r['eager_sps']:13.0f} {r['compiled_sps']:9.0f} {r['ratio']:6.2f} {r['cold']:14.1f} {r['warm']:7.1f} {r['break_even']:16.0f}"
        )
    for size, r in results.items():
        print(ratio_line(f"compile[{size}]", r["ratio"], GOAL))
    last = args.sizes[-1]
    print(ratio_line("compile", results[last]["ratio"], GOAL) + f"  [{last}; compiled/eager steps/s, compile time not included]")


if __name__ == "__main__":
    main()
