"""Where the downloadable datasets' files live and come from, importable without torch.

The apps check a ``data=`` choice against this before anything heavy is imported, so a missing
dataset on a machine without network fails in seconds, naming the cause; the torchvision
datamodules read their file lists, download hosts and cache names from here too.
"""

import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# For the whole reachability probe (name lookup + connect) of the download hosts, before anything is fetched: a
# machine without network is told so in seconds (a lookup that hangs would otherwise cost torchvision's retries).
REACH_TIMEOUT_S = 3.0
MNIST_FILES = tuple(f"{stem}.gz" for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                              "t10k-labels-idx1-ubyte"))
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


@dataclass(frozen=True)
class Source:
    """A dataset in torchvision's layout: its folder under ``data.root``, the files that must be there, and the
    locations torchvision downloads them from (tests/data checks these against torchvision's own)."""

    folder: str
    files: tuple[str, ...]
    urls: tuple[str, ...]


SOURCES: dict[str, Source] = {
    "mnist": Source("MNIST/raw", MNIST_FILES, ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")),
    "fashion_mnist": Source("FashionMNIST/raw", MNIST_FILES, ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
    "cifar10": Source("cifar-10-batches-py", CIFAR10_FILES, ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),
}


def missing_files(source: Source, root: str | Path, verify_md5: bool) -> list[str]:
    """The files of ``source`` absent under ``root``; without the md5 check an extracted ``x`` stands in for ``x.gz``."""
    folder = Path(root) / source.folder
    present = [(folder / name).is_file() or (not verify_md5 and name.endswith(".gz") and (folder / name[:-3]).is_file())
               for name in source.files]
    return [name for name, there in zip(source.files, present, strict=True) if not there]


def unreachable(urls: Sequence[str], timeout: float = REACH_TIMEOUT_S) -> str | None:
    """Why no host of ``urls`` accepts a TCP connection within ``timeout`` seconds in all; None when one does.

    The hosts are tried at once, each in a daemon thread: ``getaddrinfo`` ignores socket timeouts,
    so a hanging name lookup is abandoned, not waited for.
    """
    hosts = list(dict.fromkeys((u.hostname, u.port or (443 if u.scheme == "https" else 80)) for u in map(urlsplit, urls)))
    errors: dict[tuple[str, int], str] = {}
    reached = threading.Event()
    finished = threading.Semaphore(0)

    def connect(address: tuple[str, int]) -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            reached.set()
        except OSError as err:
            errors[address] = str(err) or type(err).__name__
        finally:
            finished.release()

    deadline = time.monotonic() + timeout
    for address in hosts:
        threading.Thread(target=connect, args=(address,), daemon=True).start()
    for _ in hosts:  # until one host answers, all have failed, or the time is up
        if reached.is_set() or not finished.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            break
    if reached.is_set():
        return None
    host, port = hosts[0]
    return f"no network access to {host}:{port} ({errors.get(hosts[0], f'no answer within {timeout:g} s')})"


def not_found_message(name: str, folder: Path, missing: Sequence[str], reason: str) -> str:
    return (f"{name}: dataset files not found in {folder} ({reason}). Put these files there: {', '.join(missing)}; "
            f"or run with network access once (download=true).")


def availability_problem(name: str, node: Mapping[str, Any]) -> str | None:
    """Why the dataset ``name`` configured by the data ``node`` cannot be had (files missing, and no download allowed
    or possible; a cache does not stand in for them: it is checked against them); None when it can, or when ``name``
    is not a downloadable set."""
    source = SOURCES.get(name)
    if source is None or not all(key in node for key in ("root", "download", "verify_md5")):
        return None
    root = Path(node["root"])
    if not (missing := missing_files(source, root, node["verify_md5"])):
        return None
    reason = "download=false" if not node["download"] else unreachable(source.urls)
    return None if reason is None else not_found_message(name, root / source.folder, missing, reason)
