"""InMemoryLoader: every index once per epoch, order a function of (seed, epoch), DDP shards."""

import pytest
import torch

from initlab.data import EpochSampler, InMemoryLoader

N = 103


def make_loader(**kwargs) -> InMemoryLoader:
    """A loader whose x rows encode their index, so batches reveal the order."""
    x = torch.arange(N, dtype=torch.float32).view(N, 1, 1, 1)
    y = torch.arange(N)
    return InMemoryLoader(x, y, **{"batch_size": 10, "shuffle": True, "seed": 0, **kwargs})


def epoch_order(loader: InMemoryLoader, epoch: int) -> list[int]:
    loader.sampler.set_epoch(epoch)
    order = []
    for xb, yb in loader:
        assert torch.equal(xb.view(-1).long(), yb)  # x and y gathered with the same indices
        order += yb.tolist()
    return order


def test_every_index_exactly_once_per_epoch():
    loader = make_loader()
    for epoch in range(3):
        assert sorted(epoch_order(loader, epoch)) == list(range(N))


def test_order_changes_across_epochs_and_seeds():
    assert epoch_order(make_loader(), 0) != epoch_order(make_loader(), 1)
    assert epoch_order(make_loader(seed=0), 1) != epoch_order(make_loader(seed=1), 0)


def test_resumed_loader_replays_the_same_epoch():
    """A fresh loader told set_epoch(3) (what Lightning does after a resume) matches the original."""
    original = make_loader(seed=5)
    seen = {epoch: epoch_order(original, epoch) for epoch in range(4)}
    assert epoch_order(make_loader(seed=5), 3) == seen[3]


def test_no_shuffle_is_in_order():
    assert epoch_order(make_loader(shuffle=False), 2) == list(range(N))


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "expected"), [(10, False, 11), (10, True, 10), (103, True, 1), (200, True, 0)]
)
def test_len_counts_the_batches_yielded(batch_size, drop_last, expected):
    loader = make_loader(batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    assert all(len(yb) == batch_size for _, yb in batches[: -1 if not drop_last else None])


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ddp_shards_are_disjoint_equal_and_cover(world_size):
    shards = [epoch_order(make_loader(rank=rank, world_size=world_size), epoch=2) for rank in range(world_size)]
    assert len({len(shard) for shard in shards}) == 1 and len(shards[0]) == N // world_size
    flat = [i for shard in shards for i in shard]
    assert len(set(flat)) == len(flat) == N - N % world_size  # disjoint; all but the remainder


def test_ddp_shards_cover_everything_when_divisible():
    shards = [set(epoch_order(make_loader(rank=rank, world_size=N), epoch=0)) for rank in range(N)]
    assert set().union(*shards) == set(range(N))


def test_ddp_left_out_remainder_changes_each_epoch():
    def left_out(epoch: int) -> frozenset[int]:
        seen = [i for rank in (0, 1) for i in epoch_order(make_loader(rank=rank, world_size=2), epoch)]
        return frozenset(range(N)) - frozenset(seen)

    assert len({left_out(epoch) for epoch in range(5)}) > 1


def test_sampler_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(10, shuffle=True, rank=2, world_size=2)


def test_pin_memory_without_cuda_leaves_batches_unchanged():
    pinned = make_loader(pin_memory=True)
    assert epoch_order(pinned, 1) == epoch_order(make_loader(), 1)
    assert pinned.pin_memory == torch.cuda.is_available()
