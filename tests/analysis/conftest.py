"""Analysis tests run single-threaded: the oracles are tiny, and on an oversubscribed CPU
OpenMP's intra-op threads made a tiny Hessian-vector product ~100x slower (0.47 s vs 2.5 ms)."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
