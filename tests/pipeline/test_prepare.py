"""The prepare stage: a byte-stable gzip of the prepared tensors, and the full-MNIST data path the README's
``dvc exp run -S data=mnist`` line takes (torchvision's IDX files, here small ones the test writes)."""

import torch

from initlab.pipeline import study
from initlab.pipeline.common import load_data
from initlab.pipeline.prepare import prepare
from tests.data.conftest import N_TEST, N_TRAIN, VAL_SIZE, write_mnist_raw

MNIST = ["data.verify_md5=false", "data.download=false", f"data.val_size={VAL_SIZE}"]


def test_prepared_file_is_byte_stable_and_loads_on_the_device(tmp_path):
    first = prepare("digits", 1, tmp_path / "a").read_bytes()
    assert prepare("digits", 1, tmp_path / "b").read_bytes() == first
    data = load_data(tmp_path / "a" / "data" / "digits.pt.gz", torch.device("cpu"))
    assert (len(data.train), len(data.val), len(data.test)) == (1257, 270, 270)


def test_full_mnist_idx_files_go_through_prepare_and_the_lr_study(tmp_path):
    arrays = write_mnist_raw(tmp_path / "data" / "MNIST" / "raw")
    path = prepare("mnist", 1, tmp_path / "results", [f"paths.data_dir={tmp_path / 'data'}", *MNIST])
    data = load_data(path)
    assert (len(data.train), len(data.val), len(data.test)) == (N_TRAIN - VAL_SIZE, VAL_SIZE, N_TEST)
    assert sorted(torch.cat([data.train.y, data.val.y]).tolist()) == sorted(arrays["train-labels-idx1-ubyte"].tolist())
    settings = {"budgets": [1], "batch_size": 5, "eval_samples": 10, "curvature_samples": 10, "init_samples": 5, "tol": 1e-2,
                "curvature_c": 1.0, "lr_grid": {"sgd": [0.1, 0.3]}, "eta": 3, "min_keep": 1, "diverge_factor": 10,
                "activations": ["tanh"], "edge_extensions": 0, "refine": {"optims": [], "points_per_octave": 2}}
    params = {"data": "mnist", "seeds": [1], "inits": ["spectral"], "optimizers": ["sgd"]}
    runs = study.lr_study(settings, params, study.StageContext(path, "cpu", workers=1))["lr/runs"]
    assert {r["steps"] for r in runs} == {(N_TRAIN - VAL_SIZE) // 5} and all(r["val_loss"] > 0 for r in runs)
