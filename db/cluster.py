"""The Redis side of cluster mode: node heartbeats, partition leases with fencing tokens, and
one command stream per partition read through a consumer group.

Every key of a partition carries the hash tag `{pN}`, so on Redis Cluster a partition's
lease, fencing counter and stream live in one slot (a script may touch them together)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import orjson
import redis.asyncio as redis
from attrs import frozen
from redis.exceptions import ResponseError

from db.events import BusUnavailable
from db.redis_bus import REDIS_DOWN

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C")

# Every key starts with the prefix, so clusters (and tests) can share one Redis database.
DEFAULT_PREFIX = "sovd"
GROUP = "owners"
# A stream keeps at most about this many entries (acknowledged ones are trimmed first).
STREAM_MAX_LEN = 100_000

# Takes the lease if it is free (a new fencing token) or renews it for its holder.
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
    local node, token = string.match(held, '^(.*):(%d+)$')
    if node == ARGV[1] then
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return tonumber(token)
    end
    return -1
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RAISE_FENCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def nodes_key(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:cluster:nodes"


def partition_count_key(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:cluster:partitions"


def lease_key(partition: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{{p{partition}}}:lease"


def fence_key(partition: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{{p{partition}}}:fence"


def stream_key(partition: int, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{{p{partition}}}:commands"


@frozen
class Lease:
    partition: int
    node: str
    token: int
    expires_in_ms: int


@frozen
class StreamEntry:
    partition: int
    entry_id: str
    command: dict[str, Any]


class PartitionCountMismatch(Exception):
    def __init__(self, recorded: int, configured: int) -> None:
        super().__init__(
            f"the cluster was started with {recorded} partitions; this node is configured "
            f"with {configured} (cluster.partitions must be equal on every node)"
        )
        self.recorded, self.configured = recorded, configured


def _translated(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise BusUnavailable(str(exc)) from exc

    return call


def _translate_errors(cls: C) -> C:
    """Every coroutine method of the class answers BusUnavailable when Redis is down."""
    for name, member in list(vars(cls).items()):
        if inspect.iscoroutinefunction(member) and not name.startswith("__"):
            setattr(cls, name, _translated(member))
    return cls


@_translate_errors
class ClusterRedis:
    """Every Redis call of cluster mode; connection failures come out as BusUnavailable."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self.prefix = prefix
        self._nodes = nodes_key(prefix)
        self._partition_count = partition_count_key(prefix)
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._raise_fence = client.register_script(RAISE_FENCE)

    def _lease_key(self, partition: int) -> str:
        return lease_key(partition, self.prefix)

    def _fence_key(self, partition: int) -> str:
        return fence_key(partition, self.prefix)

    def _stream_key(self, partition: int) -> str:
        return stream_key(partition, self.prefix)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> ClusterRedis:
        return cls(
            redis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=10, max_connections=512
            ),
            prefix=prefix,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def agree_on_partitions(self, partitions: int) -> None:
        """Records the partition count at the first start; PartitionCountMismatch when this
        node's differs from the recorded one."""
        await self._client.set(self._partition_count, partitions, nx=True)
        recorded = int(await self._client.get(self._partition_count) or partitions)
        if recorded != partitions:
            raise PartitionCountMismatch(recorded, partitions)

    async def heartbeat(self, node: str, now_ms: int, forget_before_ms: int) -> list[str]:
        """Records this node as alive and returns the nodes seen since `forget_before_ms`."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._nodes, {node: now_ms})
            pipe.zremrangebyscore(self._nodes, "-inf", forget_before_ms)
            pipe.zrange(self._nodes, 0, -1)
            *_, members = await pipe.execute()
        return sorted(m.decode() for m in members)

    async def node_heartbeats(self) -> dict[str, int]:
        rows: Any = await self._client.zrange(self._nodes, 0, -1, withscores=True)
        return {member.decode(): int(score) for member, score in rows}

    async def leave(self, node: str) -> None:
        await self._client.zrem(self._nodes, node)

    async def acquire(self, partition: int, node: str, lease_ms: int) -> int | None:
        """A fencing token when this node holds the lease now, None when another does."""
        token = int(
            await self._acquire(
                keys=[self._lease_key(partition), self._fence_key(partition)], args=[node, lease_ms]
            )
        )
        return None if token < 0 else token

    async def renew(self, partition: int, node: str, token: int, lease_ms: int) -> bool:
        renewed = await self._renew(
            keys=[self._lease_key(partition)], args=[f"{node}:{token}", lease_ms]
        )
        return bool(renewed)

    async def release(self, partition: int, node: str, token: int) -> bool:
        released = await self._release(keys=[self._lease_key(partition)], args=[f"{node}:{token}"])
        return bool(released)

    async def raise_fence(self, partition: int, at_least: int) -> None:
        """Moves the partition's token counter past `at_least` (Redis lost it, the store did
        not), so the next lease gets a token the store accepts."""
        await self._raise_fence(keys=[self._fence_key(partition)], args=[at_least])

    async def leases(self, partitions: int) -> list[Lease | None]:
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in range(partitions):
                pipe.get(self._lease_key(partition))
                pipe.pttl(self._lease_key(partition))
            answers = await pipe.execute()
        leases: list[Lease | None] = []
        for partition in range(partitions):
            held, ttl = answers[2 * partition], answers[2 * partition + 1]
            if held is None:
                leases.append(None)
                continue
            node, _, token = held.decode().rpartition(":")
            leases.append(Lease(partition, node, int(token), int(ttl)))
        return leases

    async def ensure_group(self, partition: int) -> None:
        try:
            await self._client.xgroup_create(
                self._stream_key(partition), GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def route(self, partition: int, command: Mapping[str, Any]) -> str:
        """Appends a command to its partition's stream; BusUnavailable when Redis is down."""
        entry_id = await self._client.xadd(
            self._stream_key(partition),
            {"c": orjson.dumps(command)},
            maxlen=STREAM_MAX_LEN,
            approximate=True,
        )
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    async def read(
        self, partition: int, consumer: str, *, count: int, block_ms: int
    ) -> list[StreamEntry]:
        """New entries for this consumer, waiting up to `block_ms` for some."""
        answer: Any = await self._client.xreadgroup(
            GROUP, consumer, {self._stream_key(partition): ">"}, count=count, block=block_ms
        )
        return _entries(partition, answer[0][1] if answer else [])

    async def claim_pending(self, partition: int, consumer: str) -> list[StreamEntry]:
        """Every entry delivered to some consumer and not acknowledged, now this one's, in
        stream order (XAUTOCLAIM from the start)."""
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        while True:
            answer = await self._client.xautoclaim(
                self._stream_key(partition),
                GROUP,
                consumer,
                min_idle_time=0,
                start_id=cursor,
                count=500,
            )
            cursor = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
            claimed.extend(_entries(partition, answer[1]))
            if cursor == "0-0":
                return claimed

    async def ack(self, partition: int, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._client.xack(self._stream_key(partition), GROUP, *entry_ids)

    async def lag(self, partitions: int) -> list[int]:
        """Entries per partition not yet delivered or not yet acknowledged."""
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in range(partitions):
                pipe.xinfo_groups(self._stream_key(partition))
            answers = await pipe.execute(raise_on_error=False)
        lags = []
        for answer in answers:
            groups = answer if isinstance(answer, list) else []
            group = next((g for g in groups if g.get("name") in (GROUP, GROUP.encode())), None)
            backlog = 0 if group is None else int(group.get("lag") or 0)
            lags.append(backlog + (0 if group is None else int(group.get("pending") or 0)))
        return lags


def _entries(partition: int, raw: Sequence[Any]) -> list[StreamEntry]:
    entries = []
    for entry_id, fields in raw:
        if fields is None:  # trimmed away while pending
            continue
        text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        entries.append(StreamEntry(partition, text, orjson.loads(fields[b"c"])))
    return entries
