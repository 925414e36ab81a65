"""What the trainer's loader reads: one rank's (epoch, index) items, made as they are read."""
from __future__ import annotations

import itertools

import pytest

from avsep.training.data import RankItems


def listed(epoch: int, first: int, epochs: int, per_epoch: int, rank: int, world: int) -> list[tuple[int, int]]:
    """The items as a list: what the loader was given before RankItems."""
    return [(e, i) for e in range(epoch, epochs)
            for i in range((first if e == epoch else 0) + rank, per_epoch, world)]


@pytest.mark.parametrize("epoch, first, epochs, per_epoch, rank, world", [
    (0, 0, 3, 8, 0, 1), (1, 5, 4, 8, 0, 1), (0, 0, 3, 8, 1, 2), (2, 6, 5, 16, 1, 2), (0, 3, 2, 12, 2, 3),
    (3, 0, 3, 8, 0, 1),  # past the last epoch: nothing left
])
def test_rank_items_are_the_listed_items_in_order(epoch, first, epochs, per_epoch, rank, world):
    items = RankItems(epoch, first, epochs, per_epoch, rank, world)
    assert list(items) == listed(epoch, first, epochs, per_epoch, rank, world)
    assert len(items) == len(listed(epoch, first, epochs, per_epoch, rank, world))


def test_ranks_share_out_every_item_of_the_global_order_once():
    ranks = [list(RankItems(1, 4, 3, 12, rank, 2)) for rank in range(2)]
    assert sorted(ranks[0] + ranks[1]) == listed(1, 4, 3, 12, 0, 1)
    assert not set(ranks[0]) & set(ranks[1])


def test_a_run_of_100000_epochs_is_not_listed():
    # Time-bounded runs configure 100,000 epochs: 99 million items, which a list held in gigabytes.
    items = RankItems(0, 32, 100_000, 992)
    assert len(items) == 100_000 * 992 - 32
    assert list(itertools.islice(items, 3)) == [(0, 32), (0, 33), (0, 34)]
    assert list(itertools.islice(iter(items), 959, 961)) == [(0, 991), (1, 0)]
