"""``python -m initlab.pipeline.demos <name>``: run one demo with its ``params.yaml`` settings
(``demos.<name>`` or, for demos on the prepared data, ``data_demos.<name>``)."""

import importlib
import time
from pathlib import Path

from initlab.pipeline.common import data_path, load_params, stage_parser
from initlab.pipeline.demos import DEMOS, DemoContext


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("name", choices=DEMOS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    context = DemoContext(
        out=Path(args.results) / "demos" / args.name,
        data=params["data"],
        data_file=data_path(args.results, params["data"], params["seeds"][0]),
    )
    context.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    settings = (params.get("demos", {}) | params.get("data_demos", {}))[args.name]
    importlib.import_module(f"initlab.pipeline.demos.{args.name}").run(settings, context)
    print(f"demo {args.name}: {time.perf_counter() - start:.1f}s -> {context.out}", flush=True)


if __name__ == "__main__":
    main()
