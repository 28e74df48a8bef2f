"""``python -m initlab.pipeline.demos <name> [<name> ...]``: run demos with their ``params.yaml`` settings
(``demos.<name>`` or, for demos on the prepared data, ``data_demos.<name>``), one after another.

A demo whose settings say ``per_seed: true`` runs once per pipeline seed (its ``seed`` set to
it) into ``<out>/seed-<seed>/``, so the report can put an interval over seeds on it; the others
run once with their own ``seed`` into ``<out>/``.
"""

import dataclasses
import importlib
from pathlib import Path

from initlab.pipeline.common import data_path, load_params, stage_device, stage_parser
from initlab.pipeline.demos import DEMOS, DemoContext


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("names", nargs="+", choices=DEMOS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    device = stage_device(params.get("device", "cpu"))
    for name in args.names:
        run_demo(name, params, Path(args.results), device)


def run_demo(name: str, params: dict, results: Path, device=None) -> None:
    """One demo: once, or once per pipeline seed when its settings say ``per_seed``."""
    context = DemoContext(out=results / "demos" / name, data=params["data"], data_file=data_path(results, params["data"]),
                          **({"device": device} if device is not None else {}))
    settings = (params.get("demos", {}) | params.get("data_demos", {}))[name]
    runs = ([(settings | {"seed": seed}, dataclasses.replace(context, out=context.out / f"seed-{seed}"))
             for seed in params["seeds"]] if settings.get("per_seed") else [(settings, context)])
    module = importlib.import_module(f"initlab.pipeline.demos.{name}")
    for demo_settings, demo_context in runs:
        demo_context.out.mkdir(parents=True, exist_ok=True)
        module.run(demo_settings, demo_context)
        print(f"demo {name} (seed {demo_settings['seed']}) -> {demo_context.out}", flush=True)


if __name__ == "__main__":
    main()
