"""``python -m initlab.pipeline.demos <name> [<name> ...]``: run demos with their ``params.yaml`` settings
(``demos.<name>`` or, for demos on the prepared data, ``data_demos.<name>``), one after another.

A demo whose settings say ``per_seed: true`` runs once per pipeline seed (its ``seed`` set to
it) into ``<out>/seed-<seed>/``, so the report can put an interval over seeds on it; the others
run once with their own ``seed`` into ``<out>/``. The runs are independent (each seeds itself), so on the CPU they fan
out to ``params.yaml`` ``workers`` processes; the outputs do not depend on how many.
"""

import dataclasses
import importlib
from pathlib import Path

from initlab.pipeline.common import data_path, load_params, parallel_map, stage_device, stage_parser
from initlab.pipeline.demos import DEMOS, DemoContext


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("names", nargs="+", choices=DEMOS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    device = stage_device(params.get("device", "cpu"))
    workers = params.get("workers", 1) if device.type == "cpu" else 1  # one process drives an accelerator
    runs = [run for name in args.names for run in demo_runs(name, params, Path(args.results), device)]
    parallel_map(run_one, runs, workers)


def demo_runs(name: str, params: dict, results: Path, device=None) -> list[tuple[str, dict, DemoContext]]:
    """One demo's runs: (name, settings, context) once, or once per pipeline seed when its settings say ``per_seed``."""
    context = DemoContext(out=results / "demos" / name, data=params["data"], data_file=data_path(results, params["data"]),
                          **({"device": device} if device is not None else {}))
    settings = (params.get("demos", {}) | params.get("data_demos", {}))[name]
    if not settings.get("per_seed"):
        return [(name, settings, context)]
    return [(name, settings | {"seed": seed}, dataclasses.replace(context, out=context.out / f"seed-{seed}"))
            for seed in params["seeds"]]


def run_one(run: tuple[str, dict, DemoContext]) -> None:
    """One run of a demo into its own folder."""
    name, settings, context = run
    context.out.mkdir(parents=True, exist_ok=True)
    importlib.import_module(f"initlab.pipeline.demos.{name}").run(settings, context)
    print(f"demo {name} (seed {settings['seed']}) -> {context.out}", flush=True)


def run_demo(name: str, params: dict, results: Path, device=None) -> None:
    """One demo in this process: once, or once per pipeline seed when its settings say ``per_seed``."""
    for run in demo_runs(name, params, results, device):
        run_one(run)


if __name__ == "__main__":
    main()
