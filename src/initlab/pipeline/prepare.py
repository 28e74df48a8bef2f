"""DVC stage ``prepare``: the dataset's normalized train/val/test tensors, one file.

    python -m initlab.pipeline.prepare            # params.yaml: data, seeds[0] -> results/data/<data>.pt.gz

Every in-process stage reads this file, so the raw data is parsed once. Datasets whose split
depends on the run seed are split with the first seed; the seeds then vary init and batch order.
The file is ``save_prepared``'s, gzipped with a fixed header (byte-stable, so ``dvc repro`` leaves
it unchanged) and small enough to live in the in-repo DVC remote.
"""

import gzip
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from initlab.pipeline.common import compose_config, data_path, load_params, stage_parser


def prepare(data: str, seed: int, results: str | Path, overrides: Sequence[str] = ()) -> Path:
    """Materialize conf/data/<data>.yaml's datamodule (split by ``seed``; Hydra ``overrides`` such as
    ``paths.data_dir=...``) at :func:`data_path`."""
    from hydra.utils import instantiate

    datamodule = instantiate(compose_config([f"data={data}", f"seed={seed}", *overrides]).data)
    path = data_path(results, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        raw = datamodule.materialize(Path(scratch) / "prepared.pt")
        packed = Path(scratch) / "prepared.pt.gz"
        with raw.open("rb") as source, packed.open("wb") as target, \
                gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0) as zipped:
            zipped.write(source.read())
        os.replace(packed, path)
    print(f"prepare: {data} (seed {seed}) -> {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__).parse_args(argv)
    params = load_params(args.params)
    prepare(params["data"], params["seeds"][0], args.results)


if __name__ == "__main__":
    main()
