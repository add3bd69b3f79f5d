"""The Redis side of cluster mode on a real Redis: partition leases and their fencing tokens,
the partition count every node must share, and the command streams read by the owners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as redis

from db.cluster import ClusterRedis, PartitionCountMismatch, StreamEntry
from db.events import BusUnavailable
from tests.support.server import free_port

pytestmark = pytest.mark.integration

LEASE_MS = 10_000


@pytest.fixture
async def cluster(redis_url: str) -> AsyncIterator[ClusterRedis]:
    """Cluster keys of this test alone (other tests share the Redis database): a prefix of
    its own, and exactly those keys deleted afterwards."""
    prefix = f"sovd-test-{uuid4().hex}"
    cluster = ClusterRedis.from_url(redis_url, prefix=prefix)
    yield cluster
    await cluster.close()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def lease_gone(cluster: ClusterRedis, partition: int) -> None:
    """Returns once Redis has expired the partition's lease (waits out its TTL)."""
    for _ in range(50):
        lease = (await cluster.leases(partition + 1))[partition]
        if lease is None:
            return
        await asyncio.sleep(max(lease.expires_in_ms, 1) / 1000)
    raise AssertionError(f"the lease of partition {partition} never expired")


# Leases and fencing tokens ----------------------------------------------------------------


async def test_every_new_lease_of_a_partition_has_a_higher_token(cluster: ClusterRedis) -> None:
    tokens = []
    for node in ("a", "b", "a", "c"):
        token = await cluster.acquire(0, node, LEASE_MS)
        assert token is not None
        tokens.append(token)
        assert await cluster.release(0, node, token)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


async def test_partitions_count_their_tokens_apart(cluster: ClusterRedis) -> None:
    assert await cluster.acquire(0, "a", LEASE_MS) == 1
    assert await cluster.acquire(1, "a", LEASE_MS) == 1


async def test_a_held_lease_cannot_be_taken_by_another_node(cluster: ClusterRedis) -> None:
    token = await cluster.acquire(3, "a", LEASE_MS)
    assert token is not None
    assert await cluster.acquire(3, "b", LEASE_MS) is None
    lease = (await cluster.leases(4))[3]
    assert lease is not None
    assert (lease.partition, lease.node, lease.token) == (3, "a", token)
    assert 0 < lease.expires_in_ms <= LEASE_MS


@pytest.mark.parametrize("node", ["a", "10.0.0.5:8080"])
async def test_the_holder_acquiring_again_keeps_its_token(cluster: ClusterRedis, node: str) -> None:
    token = await cluster.acquire(0, node, LEASE_MS)
    assert token is not None
    assert await cluster.acquire(0, node, LEASE_MS) == token
    assert await cluster.acquire(0, f"{node}:{token}", LEASE_MS) is None
    assert await cluster.renew(0, node, token, LEASE_MS)
    lease = (await cluster.leases(1))[0]
    assert lease is not None
    assert (lease.node, lease.token) == (node, token)


async def test_only_the_holder_with_its_token_renews(cluster: ClusterRedis) -> None:
    token = await cluster.acquire(0, "a", 1000)
    assert token is not None
    assert not await cluster.renew(0, "b", token, LEASE_MS)
    assert not await cluster.renew(0, "a", token + 1, LEASE_MS)
    lease = (await cluster.leases(1))[0]
    assert lease is not None
    assert lease.expires_in_ms <= 1000
    assert await cluster.renew(0, "a", token, LEASE_MS)
    lease = (await cluster.leases(1))[0]
    assert lease is not None
    assert lease.expires_in_ms > 1000


async def test_only_the_holder_with_its_token_releases(cluster: ClusterRedis) -> None:
    token = await cluster.acquire(0, "a", LEASE_MS)
    assert token is not None
    assert not await cluster.release(0, "b", token)
    assert not await cluster.release(0, "a", token - 1)
    assert await cluster.acquire(0, "b", LEASE_MS) is None
    assert await cluster.release(0, "a", token)
    assert await cluster.acquire(0, "b", LEASE_MS) == token + 1


async def test_an_expired_lease_goes_to_another_node_with_a_higher_token(
    cluster: ClusterRedis,
) -> None:
    old = await cluster.acquire(0, "a", 30)
    assert old is not None
    await lease_gone(cluster, 0)
    new = await cluster.acquire(0, "b", LEASE_MS)
    assert new is not None
    assert new > old
    # The old holder, back from a pause, can neither renew nor release the new lease.
    assert not await cluster.renew(0, "a", old, LEASE_MS)
    assert not await cluster.release(0, "a", old)
    lease = (await cluster.leases(1))[0]
    assert lease is not None
    assert (lease.node, lease.token) == ("b", new)


async def test_a_raised_fence_makes_the_next_token_exceed_it(cluster: ClusterRedis) -> None:
    # Redis lost its counters (a restart without persistence) while the store recorded 41.
    await cluster.raise_fence(0, 41)
    token = await cluster.acquire(0, "a", LEASE_MS)
    assert token is not None
    assert token > 41
    assert await cluster.release(0, "a", token)
    # A lower value never takes the counter back.
    await cluster.raise_fence(0, 5)
    later = await cluster.acquire(0, "a", LEASE_MS)
    assert later is not None
    assert later > token


# The partition count ----------------------------------------------------------------------


async def test_nodes_with_the_same_partition_count_agree(cluster: ClusterRedis) -> None:
    await cluster.agree_on_partitions(64)
    await cluster.agree_on_partitions(64)


async def test_a_node_with_another_partition_count_is_refused(cluster: ClusterRedis) -> None:
    await cluster.agree_on_partitions(64)
    with pytest.raises(PartitionCountMismatch) as refused:
        await cluster.agree_on_partitions(32)
    assert (refused.value.recorded, refused.value.configured) == (64, 32)
    assert "started with 64 partitions" in str(refused.value)
    assert "configured with 32" in str(refused.value)
    assert "cluster.partitions" in str(refused.value)
    # The first count stays the cluster's.
    await cluster.agree_on_partitions(64)


# Nodes ------------------------------------------------------------------------------------


async def test_a_heartbeat_lists_the_nodes_seen_lately(cluster: ClusterRedis) -> None:
    assert await cluster.heartbeat("b", 1000, forget_before_ms=0) == ["b"]
    assert await cluster.heartbeat("a", 2000, forget_before_ms=0) == ["a", "b"]
    # b was last seen at 1000: forgotten.
    assert await cluster.heartbeat("a", 3000, forget_before_ms=1500) == ["a"]
    assert await cluster.node_heartbeats() == {"a": 3000}
    await cluster.leave("a")
    assert await cluster.node_heartbeats() == {}


# Command streams --------------------------------------------------------------------------


def command(n: int) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "n": n, "command_params": {"did": "F190"}}


async def routed(cluster: ClusterRedis, partition: int, count: int) -> list[dict[str, Any]]:
    await cluster.ensure_group(partition)
    commands = [command(n) for n in range(count)]
    for c in commands:
        await cluster.route(partition, c)
    return commands


def payloads(entries: list[StreamEntry]) -> list[dict[str, Any]]:
    return [e.command for e in entries]


async def test_an_owner_reads_its_partition_in_the_order_commands_were_routed(
    cluster: ClusterRedis,
) -> None:
    commands = await routed(cluster, 2, 5)
    await cluster.route(3, command(99))  # another partition's
    first = await cluster.read(2, "a", count=3, block_ms=10)
    rest = await cluster.read(2, "a", count=10, block_ms=10)
    assert payloads(first) == commands[:3]
    assert payloads(rest) == commands[3:]
    assert {e.partition for e in first + rest} == {2}
    ids = [e.entry_id for e in first + rest]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert await cluster.read(2, "a", count=10, block_ms=10) == []


async def test_a_read_waits_for_the_next_routed_command(cluster: ClusterRedis) -> None:
    await cluster.ensure_group(0)
    reading = asyncio.create_task(cluster.read(0, "a", count=10, block_ms=5000))
    await asyncio.sleep(0.05)
    assert not reading.done()
    sent = command(1)
    await cluster.route(0, sent)
    entries = await asyncio.wait_for(reading, 2)
    assert payloads(entries) == [sent]


async def test_creating_the_group_again_keeps_its_place(cluster: ClusterRedis) -> None:
    commands = await routed(cluster, 0, 2)
    assert payloads(await cluster.read(0, "a", count=1, block_ms=10)) == commands[:1]
    await cluster.ensure_group(0)
    assert payloads(await cluster.read(0, "a", count=10, block_ms=10)) == commands[1:]


async def test_a_new_owner_claims_what_a_dead_one_did_not_acknowledge_in_stream_order(
    cluster: ClusterRedis,
) -> None:
    commands = await routed(cluster, 1, 6)
    delivered = await cluster.read(1, "dead", count=4, block_ms=10)
    # The dead owner had finished the second and third commands, not the first and fourth.
    await cluster.ack(1, [delivered[1].entry_id, delivered[2].entry_id])

    claimed = await cluster.claim_pending(1, "new")

    assert payloads(claimed) == [commands[0], commands[3]]
    assert [e.entry_id for e in claimed] == [delivered[0].entry_id, delivered[3].entry_id]
    # What was never delivered comes by reading, once.
    rest = await cluster.read(1, "new", count=10, block_ms=10)
    assert payloads(rest) == commands[4:]
    # Once the new owner acknowledged everything, nothing is left to claim.
    await cluster.ack(1, [e.entry_id for e in claimed + rest])
    assert await cluster.claim_pending(1, "newer") == []


async def test_claiming_pages_through_many_pending_entries(cluster: ClusterRedis) -> None:
    commands = await routed(cluster, 0, 1200)
    await cluster.read(0, "dead", count=1200, block_ms=10)
    claimed = await cluster.claim_pending(0, "new")
    assert payloads(claimed) == commands


async def test_lag_counts_entries_not_delivered_and_not_acknowledged(
    cluster: ClusterRedis,
) -> None:
    assert await cluster.lag(3) == [0, 0, 0]
    await routed(cluster, 1, 5)
    assert await cluster.lag(3) == [0, 5, 0]
    delivered = await cluster.read(1, "a", count=3, block_ms=10)
    assert await cluster.lag(3) == [0, 5, 0]
    await cluster.ack(1, [e.entry_id for e in delivered[:2]])
    assert await cluster.lag(3) == [0, 3, 0]
    await cluster.ack(1, [])
    rest = await cluster.read(1, "a", count=10, block_ms=10)
    await cluster.ack(1, [e.entry_id for e in [delivered[2], *rest]])
    assert await cluster.lag(3) == [0, 0, 0]


# Redis down -------------------------------------------------------------------------------

CALLS: dict[str, Callable[[ClusterRedis], Awaitable[object]]] = {
    "agree_on_partitions": lambda c: c.agree_on_partitions(64),
    "heartbeat": lambda c: c.heartbeat("a", 1, 0),
    "acquire": lambda c: c.acquire(0, "a", LEASE_MS),
    "renew": lambda c: c.renew(0, "a", 1, LEASE_MS),
    "release": lambda c: c.release(0, "a", 1),
    "raise_fence": lambda c: c.raise_fence(0, 5),
    "leases": lambda c: c.leases(4),
    "ensure_group": lambda c: c.ensure_group(0),
    "route": lambda c: c.route(0, command(1)),
    "read": lambda c: c.read(0, "a", count=1, block_ms=10),
    "claim_pending": lambda c: c.claim_pending(0, "a"),
    "ack": lambda c: c.ack(0, ["1-0"]),
    "lag": lambda c: c.lag(4),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_every_call_reports_redis_down_as_bus_unavailable(
    call: Callable[[ClusterRedis], Awaitable[object]],
) -> None:
    cluster = ClusterRedis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(BusUnavailable):
            await call(cluster)
    finally:
        await cluster.close()
