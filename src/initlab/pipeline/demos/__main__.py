"""``python -m initlab.pipeline.demos <name> [<name> ...]``: run demos with their ``params.yaml`` settings
(``demos.<name>`` or, for demos on the prepared data, ``data_demos.<name>``), one after another.

A demo whose settings say ``per_seed: true`` runs once per pipeline seed (its ``seed`` set to
it) into ``<out>/seed-<seed>/``, so the report can put an interval over seeds on it; the others
run once with their own ``seed`` into ``<out>/``. The runs are independent (each seeds itself), so on the CPU they fan
out to ``params.yaml`` ``workers`` processes; the outputs do not depend on how many.
"""

from pathlib import Path

from initlab.pipeline.common import load_params, parallel_map, stage_device, stage_parser
from initlab.pipeline.demos import DEMOS, RUN_SECONDS, demo_runs, run_one


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("names", nargs="+", choices=DEMOS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    device = stage_device(params.get("device", "cpu"))
    workers = params.get("workers", 1) if device.type == "cpu" else 1  # one process drives an accelerator
    runs = [run for name in args.names for run in demo_runs(name, params, Path(args.results), device)]
    parallel_map(run_one, runs, workers, cost=lambda run: RUN_SECONDS.get(run[0], 1.0))


if __name__ == "__main__":
    main()
