"""The torch-free dataset check the apps run first: file lists and hosts agree with torchvision, presence rules,
the network probe, and a missing dataset refused before torch is imported."""

import socket
import time
from pathlib import Path

import pytest

from initlab.data import sources
from initlab.schema import GPU_DEVICE_NODES
from tests.conftest import run_cli

TRAIN = str(Path(__file__).resolve().parents[2] / "train.py")


def test_sources_agree_with_torchvision():
    from torchvision import datasets

    for name, dataset in (("mnist", datasets.MNIST), ("fashion_mnist", datasets.FashionMNIST)):
        assert sources.SOURCES[name].urls == tuple(dataset.mirrors)
        assert sources.SOURCES[name].files == tuple(file for file, _ in dataset.resources)
        assert sources.SOURCES[name].folder == f"{dataset.__name__}/raw"
    cifar = sources.SOURCES["cifar10"]
    assert cifar.urls == (datasets.CIFAR10.url,) and cifar.folder == datasets.CIFAR10.base_folder
    assert set(cifar.files) == {f for f, _ in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list} | {"batches.meta"}


def test_missing_files_accepts_extracted_files_only_without_the_md5_check(tmp_path):
    source = sources.SOURCES["mnist"]
    folder = tmp_path / source.folder
    folder.mkdir(parents=True)
    for name in source.files[:3]:
        (folder / name).write_bytes(b"x")
    (folder / source.files[3].removesuffix(".gz")).write_bytes(b"x")
    assert sources.missing_files(source, tmp_path, verify_md5=True) == [source.files[3]]
    assert sources.missing_files(source, tmp_path, verify_md5=False) == []


def test_probe_reaches_a_listening_host_and_names_a_refusing_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        open_port = server.getsockname()[1]
        assert sources.unreachable([f"http://127.0.0.1:{open_port}/a", "http://127.0.0.1:1/b"]) is None
    reason = sources.unreachable([f"http://127.0.0.1:{open_port}/a"])  # closed now
    assert reason.startswith(f"no network access to 127.0.0.1:{open_port} (")


def test_probe_gives_up_on_a_hanging_lookup_after_its_timeout(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(1.5)
        raise TimeoutError("too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    reason = sources.unreachable(["https://example.invalid/x"], timeout=0.2)
    assert reason == "no network access to example.invalid:443 (no answer within 0.2 s)"
    assert time.monotonic() - start < 1  # the thread is abandoned, not joined


def test_availability_names_the_cause(monkeypatch, tmp_path):
    node = {"root": str(tmp_path), "download": True, "verify_md5": True}
    monkeypatch.setattr(sources, "unreachable", lambda urls: f"no network access to {urls[0]}")
    problem = sources.availability_problem("mnist", node)
    assert problem.startswith(f"mnist: dataset files not found in {tmp_path / 'MNIST' / 'raw'} (no network access to https://ossci")
    assert sources.availability_problem("mnist", node | {"download": False}).count("(download=false)") == 1
    assert sources.availability_problem("digits", node) is None  # bundled: nothing to fetch


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_a_missing_dataset_is_refused_before_torch_is_imported(tmp_path):
    result = run_cli(["-X", "importtime", TRAIN, "data=mnist", "data.download=false", f"paths.data_dir={tmp_path}",
                      f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "torch" not in _imported(result.stderr)
    assert result.stderr.splitlines()[-1].startswith(f"initlab: data: mnist: dataset files not found in {tmp_path}")
    assert "CONFIG" not in result.stdout


@pytest.mark.skipif(any(Path(node).exists() for node in GPU_DEVICE_NODES), reason="this machine has a GPU driver")
def test_trainer_gpu_without_a_gpu_is_refused_before_torch_is_imported(tmp_path):
    result = run_cli(["-X", "importtime", TRAIN, "trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "torch" not in _imported(result.stderr)
    assert result.stderr.splitlines()[-1] == "initlab: trainer.accelerator: got 'gpu', needs a CUDA device and this machine has none (use trainer=cpu)"
