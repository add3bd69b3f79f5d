"""Which partition a vehicle belongs to (the same in Python and in SQL) and which node owns
each partition: all owned, evenly, the same answer on every node, few moves on a change."""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from uuid import UUID

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sovd.partitions import PARTITION_SQL, assign, partition_of

uuids = st.uuids()
partition_counts = st.integers(min_value=1, max_value=4096)
node_names = st.text(min_size=1, max_size=20)
node_lists = st.lists(node_names, min_size=1, max_size=12, unique=True)


@given(uuids, partition_counts)
def test_a_vehicle_has_one_partition_in_range(vehicle_id: UUID, partitions: int) -> None:
    partition = partition_of(vehicle_id, partitions)
    assert 0 <= partition < partitions
    assert partition_of(UUID(str(vehicle_id)), partitions) == partition


def test_the_partition_of_a_vehicle_never_changes_between_releases() -> None:
    # Nodes of different versions share a cluster during a rolling upgrade: a changed hash
    # would give one vehicle two owners.
    assert partition_of(UUID("6f1c2a4e-8d3b-4c7a-9e21-0b5d7c3f9a18"), 64) == 0x7C3F9A18 % 64
    assert partition_of(UUID("6f1c2a4e-8d3b-4c7a-9e21-0b5d7c3f9a18"), 64) == 24
    assert partition_of(UUID("00000000-0000-4000-8000-0000ffffffff"), 1000) == 295
    assert partition_of(UUID("ffffffff-ffff-4fff-bfff-ffff00000000"), 7) == 0


def test_random_vehicle_ids_spread_over_every_partition() -> None:
    rng = random.Random(11)
    counts = Counter(partition_of(UUID(int=rng.getrandbits(128)), 64) for _ in range(64_000))
    assert sorted(counts) == list(range(64))
    assert max(counts.values()) < 1.2 * 1000
    assert min(counts.values()) > 0.8 * 1000


@pytest.mark.integration
@pytest.mark.parametrize("partitions", [1, 7, 64, 1000, 2**31 - 1])
async def test_postgresql_puts_every_vehicle_in_the_same_partition(
    pg_pool: asyncpg.Pool, partitions: int
) -> None:
    rng = random.Random(partitions)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5000)]
    # The low 32 bits at their edges: zero, the sign bit of a 32-bit int, all ones.
    ids += [
        UUID(f"12345678-9abc-4def-8123-4567{low:08x}")
        for low in (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
    ]
    rows = await pg_pool.fetch(
        f"SELECT vehicle_id, {PARTITION_SQL.format(count='$2')} AS partition"
        " FROM unnest($1::uuid[]) AS vehicle_id",
        ids,
        partitions,
    )
    in_sql = {row["vehicle_id"]: row["partition"] for row in rows}
    assert len(in_sql) == len(ids)
    assert {v: partition_of(v, partitions) for v in ids} == in_sql


# assign() --------------------------------------------------------------------------------


def moved(before: dict[int, str], after: dict[int, str]) -> int:
    return sum(before[p] != after[p] for p in before)


@given(st.integers(min_value=1, max_value=512), node_lists)
def test_every_partition_has_one_live_owner_and_shares_differ_by_one_at_most(
    partitions: int, nodes: list[str]
) -> None:
    owners = assign(partitions, nodes)
    assert sorted(owners) == list(range(partitions))
    assert set(owners.values()) <= set(nodes)
    shares = Counter(owners.values())
    counts = [shares.get(node, 0) for node in nodes]
    assert max(counts) - min(counts) <= 1


@given(st.integers(min_value=1, max_value=256), node_lists, st.randoms())
def test_every_node_computes_the_same_owners_whatever_order_it_saw_the_nodes_in(
    partitions: int, nodes: list[str], rng: random.Random
) -> None:
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    assert assign(partitions, shuffled) == assign(partitions, nodes)
    assert assign(partitions, [*nodes, nodes[0]]) == assign(partitions, nodes)


def test_no_nodes_own_nothing() -> None:
    assert assign(64, []) == {}


NODES = [f"node-{i}" for i in range(9)]


@pytest.mark.parametrize("count", range(1, 9))
def test_a_node_joining_or_leaving_moves_few_partitions(count: int) -> None:
    """With 64 partitions, the fewest that can move are the newcomer's share (or the
    leaver's); here at most about twice that move (the worst: 17 when one of 8 nodes
    leaves), where assigning by position (partition % nodes) moves most of them."""
    before, after = NODES[:count], NODES[: count + 1]
    least, share = 64 // (count + 1), math.ceil(64 / (count + 1))
    joined = moved(assign(64, before), assign(64, after))
    assert least <= joined <= 2 * share + 1
    for leaver in after:
        remaining = [node for node in after if node != leaver]
        left = moved(assign(64, after), assign(64, remaining))
        assert least <= left <= 2 * share + 1


def test_three_to_four_nodes_moves_18_of_64_partitions() -> None:
    """The usual example: 16 is the least any scheme can move (the
    fourth node's share); partition % nodes would move 46."""
    three, four = assign(64, NODES[:3]), assign(64, NODES[:4])
    assert moved(three, four) == 18
    assert Counter(four.values())["node-3"] == 16
    assert sum(p % 3 != p % 4 for p in range(64)) == 46
