"""DVC stage ``prepare``: the dataset's normalized tensors, one file per seed (the seed sets the split).

    python -m initlab.pipeline.prepare            # params.yaml: data, seeds -> results/data/processed/

Each file is exactly the datamodule's cache (``TensorDataModule.materialize``), named like it,
so the Hydra apps read it with ``data.root=results/data`` and never touch the raw data again.
"""

from pathlib import Path

from initlab.pipeline.common import compose_config, data_path, load_params, stage_parser


def prepare(data: str, seeds: list[int], results: str | Path) -> list[Path]:
    """Materialize conf/data/<data>.yaml's datamodule for every seed; returns the files written."""
    from hydra.utils import instantiate

    written = []
    for seed in seeds:
        datamodule = instantiate(compose_config([f"data={data}", f"seed={seed}"]).data)
        path = data_path(results, data, seed)
        if path.name != f"{datamodule.cache_name}.pt":
            raise RuntimeError(f"{type(datamodule).__name__} caches as {datamodule.cache_name}.pt, not {path.name}")
        written.append(datamodule.materialize(path))
        print(f"prepare: {data} seed {seed} -> {path}", flush=True)
    return written


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__).parse_args(argv)
    params = load_params(args.params)
    prepare(params["data"], sorted(set(params["seeds"])), args.results)


if __name__ == "__main__":
    main()
