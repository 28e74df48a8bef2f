"""DVC stage ``prepare``: the dataset's normalized train/val/test tensors, one file.

    python -m initlab.pipeline.prepare            # params.yaml: data, seeds[0] -> results/data/<data>.pt

Every in-process stage reads this file, so the raw data is parsed once. Datasets whose split
depends on the run seed are split with the first seed; the seeds then vary init and batch order.
"""

from pathlib import Path

from initlab.pipeline.common import compose_config, data_path, load_params, stage_parser


def prepare(data: str, seed: int, results: str | Path) -> Path:
    """Materialize conf/data/<data>.yaml's datamodule (split by ``seed``) at :func:`data_path`."""
    from hydra.utils import instantiate

    datamodule = instantiate(compose_config([f"data={data}", f"seed={seed}"]).data)
    path = datamodule.materialize(data_path(results, data))
    print(f"prepare: {data} (seed {seed}) -> {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__).parse_args(argv)
    params = load_params(args.params)
    prepare(params["data"], params["seeds"][0], args.results)


if __name__ == "__main__":
    main()
