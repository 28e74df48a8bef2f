"""Every init test starts from the same global RNG state, on one intra-op thread.

The tensors here are small: a second thread buys nothing and, on a loaded 2-core machine,
MKL/OpenMP oversubscription made the folder ~20x slower (314 s instead of 15 s).
"""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
