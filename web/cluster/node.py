"""One node of a cluster (SPEC §7): which partitions it owns, and running their commands.

Every node accepts commands for every vehicle; `route` appends each one, once it is stored,
to its partition's Redis stream. The partition's owner reads the stream through a consumer
group, runs the commands in its actors, and acknowledges an entry only after the command's
terminal status is committed. Ownership is a lease in Redis, renewed every third of it; its
fencing token goes with every row the owner writes, and PostgreSQL refuses rows under a
token that is no longer the partition's (a paused owner cannot write after losing it).

Partitions are spread evenly over the live nodes (`sovd.partitions.assign`). A node giving
one up stops reading it, lets its vehicles finish what they were given, then releases the
lease; a node taking one over first settles what PostgreSQL holds of the partition (running
commands of a dead owner fail as interrupted, pending ones run), then reads the stream.

An owner also ends the commands that were stored but never appended to its streams (their
accepting node died in between), and stops a running command when another node passes on a
client's request to stop it (`HALT_CHANNEL`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from attrs import define, field

from actors.system import ActorSystem
from db.cluster import ClusterRedis, StreamEntry
from db.events import BusUnavailable, EventBus
from db.repositories import Store, StoreUnavailable
from sovd.errors import SovdError
from sovd.partitions import assign, partition_of
from sovd.records import Command, utc_now
from web.commands.pipeline import CommandPipeline, Tracked
from web.config import ClusterConfig
from web.metrics import Metrics

log = structlog.get_logger(__name__)

INTERRUPTED = "interrupted: the node running this command left the cluster"
STRANDED = (
    "not run: the node that accepted this command stopped before passing it on; "
    "commands sent to the vehicle after it may have run"
)
# Commands this node ran or settled lately, so a stream entry that comes again (or late)
# is only acknowledged.
SEEN_KEPT = 200_000
READ_BATCH = 256
READ_BLOCK_MS = 1000
# Requests to stop a running command, for the node that runs it.
HALT_CHANNEL = "cluster:halt"


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@define
class Ownership:
    partition: int
    token: int
    consumer: asyncio.Task[None] | None = None
    releasing: bool = False
    # Commands this node queued while taking the partition over: their stream entries,
    # when they come, are only acknowledged.
    recovered: set[str] = field(factory=set)
    # When a read of the stream last came back short of a full batch: every entry appended
    # before then had been delivered.
    caught_up_at: datetime | None = None

    @property
    def fence(self) -> tuple[int, int]:
        return (self.partition, self.token)


class ClusterNode:
    def __init__(
        self,
        config: ClusterConfig,
        redis: ClusterRedis,
        store: Store,
        actors: ActorSystem,
        pipeline: CommandPipeline,
        *,
        drain_timeout_s: float = 10.0,
        metrics: Metrics | None = None,
        sync_fleets: Callable[[], Awaitable[None]] | None = None,
        bus: EventBus | None = None,
    ) -> None:
        """`sync_fleets` takes up fleets other nodes spawned or removed; it runs at every
        tick, before the partitions' vehicles are counted."""
        self.node_id = config.node_id or default_node_id()
        self.partitions = config.partitions
        self.lease_ms = config.lease_ms
        self.redis = redis
        self._store = store
        self._actors = actors
        self._pipeline = pipeline
        self._drain_timeout_s = drain_timeout_s
        self._metrics = metrics
        self._sync_fleets = sync_fleets
        self._bus = bus
        self._halts_task: asyncio.Task[None] | None = None
        self.owned: dict[int, Ownership] = {}
        self.desired: set[int] = set()
        self.live_nodes: list[str] = []
        self._by_partition: dict[int, list[UUID]] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._changes: set[asyncio.Task[None]] = set()
        self._seen: dict[str, None] = {}
        self._acks: defaultdict[int, list[str]] = defaultdict(list)
        self._ack_task: asyncio.Task[None] | None = None
        self._stopping = False

    def partition_of(self, vehicle_id: UUID) -> int:
        return partition_of(vehicle_id, self.partitions)

    async def start(self) -> None:
        """Agrees on the partition count (PartitionCountMismatch otherwise), announces this
        node and starts taking its share."""
        await self.redis.agree_on_partitions(self.partitions)
        await self._tick()
        self._loop_task = asyncio.create_task(self._keep_share(), name="cluster-node")
        if self._bus is not None:
            self._halts_task = asyncio.create_task(self._follow_halts(), name="cluster-halts")
        log.info("cluster_node_started", node_id=self.node_id, partitions=self.partitions)

    async def stop(self) -> None:
        """Hands every partition back: no more reading, this node's vehicles finish what
        they were given and their results are committed, then the leases go."""
        self._stopping = True
        for task in (self._loop_task, self._halts_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in list(self._changes):
            task.cancel()
        await asyncio.gather(*(self._release(p) for p in list(self.owned)), return_exceptions=True)
        with contextlib.suppress(BusUnavailable):
            await self.redis.leave(self.node_id)
        log.info("cluster_node_stopped", node_id=self.node_id)

    async def route(self, command: Command) -> None:
        """Sends a stored command to its partition's owner (BusUnavailable when Redis is
        down: the caller ends the command, which then never runs)."""
        await self.redis.route(
            self.partition_of(command.vehicle_id),
            {
                "command_id": str(command.command_id),
                "vehicle_id": str(command.vehicle_id),
                "user_id": str(command.user_id),
                "command_name": command.command_name,
                "command_params": command.command_params,
                "submitted_at": command.submitted_at.isoformat(),
            },
        )

    def runs(self, vehicle_id: UUID) -> bool:
        """Whether this node runs the vehicle's commands now."""
        ownership = self.owned.get(self.partition_of(vehicle_id))
        return ownership is not None and not ownership.releasing

    async def request_halt(self, vehicle_id: UUID, command_id: UUID) -> None:
        """Asks the node running the vehicle's commands to stop one of them (BusUnavailable
        when Redis is down)."""
        assert self._bus is not None
        message = {"vehicle_id": str(vehicle_id), "command_id": str(command_id)}
        await self._bus.publish_many([(HALT_CHANNEL, message)])

    async def _follow_halts(self) -> None:
        assert self._bus is not None
        while True:
            try:
                async with self._bus.subscribe(HALT_CHANNEL) as requests:
                    async for _, message in requests:
                        self._halt(UUID(message["vehicle_id"]), UUID(message["command_id"]))
            except BusUnavailable as exc:
                log.warning("halt_requests_unavailable", error=str(exc))
                await asyncio.sleep(self.lease_ms / 3000)

    def _halt(self, vehicle_id: UUID, command_id: UUID) -> None:
        if self.partition_of(vehicle_id) not in self.owned:
            return
        with contextlib.suppress(SovdError):  # its fleet was removed meanwhile
            outcome = self._actors.halt(vehicle_id, command_id)
            log.info("halt_requested", command_id=str(command_id), outcome=outcome)

    @property
    def holds_its_share(self) -> bool:
        active = {p for p, own in self.owned.items() if not own.releasing}
        return bool(self.live_nodes) and active == self.desired

    # The share: heartbeat, renew, release, acquire -------------------------------------

    async def _keep_share(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._tick()
            except (BusUnavailable, StoreUnavailable) as exc:
                log.warning("cluster_tick_failed", error=str(exc))
            except Exception:
                log.exception("cluster_tick_crashed")

    async def _tick(self) -> None:
        if self._sync_fleets is not None:
            await self._sync_fleets()
        now_ms = int(time.time() * 1000)
        self.live_nodes = await self.redis.heartbeat(
            self.node_id, now_ms, forget_before_ms=now_ms - self.lease_ms
        )
        owners = assign(self.partitions, self.live_nodes)
        self.desired = {p for p, node in owners.items() if node == self.node_id}
        for partition, ownership in list(self.owned.items()):
            renewed = await self.redis.renew(
                partition, self.node_id, ownership.token, self.lease_ms
            )
            if not renewed:
                self._lost(partition)
            elif partition not in self.desired and not ownership.releasing:
                ownership.releasing = True
                self._change(self._release(partition))
        for partition in sorted(self.desired - self.owned.keys()):
            token = await self.redis.acquire(partition, self.node_id, self.lease_ms)
            if token is not None:
                ownership = self.owned[partition] = Ownership(partition, token, releasing=True)
                self._change(self._take_over(ownership))
        await self._settle_stranded()
        await self._report()

    async def _report(self) -> None:
        metrics = self._metrics
        if metrics is None:
            return
        metrics.cluster_nodes_live.set(len(self.live_nodes))
        metrics.cluster_partitions_owned.set(len(self.owned))
        lags = await self.redis.lag(self.partitions)
        for partition, lag in enumerate(lags):
            if partition in self.owned:
                metrics.cluster_stream_lag.labels(str(partition)).set(lag)
            else:
                with contextlib.suppress(KeyError):
                    metrics.cluster_stream_lag.remove(str(partition))

    def _change(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)

    def _lost(self, partition: int) -> None:
        """The lease ran out or went to another node: stop at once. Whatever this node still
        writes for the partition is refused by its fencing token."""
        ownership = self.owned.pop(partition, None)
        if ownership is not None and ownership.consumer is not None:
            ownership.consumer.cancel()
        log.warning("partition_lost", partition=partition, node_id=self.node_id)

    async def _release(self, partition: int) -> None:
        ownership = self.owned.get(partition)
        if ownership is None:
            return
        ownership.releasing = True
        if ownership.consumer is not None:
            ownership.consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ownership.consumer
        finished = await self._actors.settle_vehicles(
            self._vehicles_of(partition), self._drain_timeout_s
        )
        with contextlib.suppress(Exception):
            await self._pipeline.committed()
        self._flush_acks()
        if self.owned.get(partition) is ownership:
            del self.owned[partition]
            with contextlib.suppress(BusUnavailable):
                await self.redis.release(partition, self.node_id, ownership.token)
        log.info("partition_released", partition=partition, finished=finished)

    async def _take_over(self, ownership: Ownership) -> None:
        partition = ownership.partition
        try:
            if not await self._store.claim_partition(partition, ownership.token):
                # The store knows a newer owner than Redis does (Redis lost its counters).
                await self.redis.release(partition, self.node_id, ownership.token)
                await self.redis.raise_fence(
                    partition, await self._store.partition_fence(partition)
                )
                self.owned.pop(partition, None)
                return
            await self._actors.settle_vehicles(self._vehicles_of(partition), self._drain_timeout_s)
            await self.redis.ensure_group(partition)
            await self._recover(ownership)
        except (BusUnavailable, StoreUnavailable) as exc:
            log.warning("partition_takeover_failed", partition=partition, error=str(exc))
            if self.owned.get(partition) is ownership:
                del self.owned[partition]
                with contextlib.suppress(BusUnavailable):
                    await self.redis.release(partition, self.node_id, ownership.token)
            return
        if self.owned.get(partition) is not ownership:
            return
        ownership.releasing = False
        ownership.consumer = asyncio.create_task(
            self._consume(ownership), name=f"partition-{partition}"
        )
        log.info("partition_taken", partition=partition, token=ownership.token)

    async def _recover(self, ownership: Ownership) -> None:
        """What the previous owner left: running commands failed (their vehicle may have
        changed; they never run twice), pending ones queued in the order they came, and the
        stream entries it did not acknowledge claimed (and acknowledged once settled)."""
        partition = ownership.partition
        unfinished = await self._store.commands.list_unfinished(partition, self.partitions)
        resumed = failed = 0
        for command in unfinished:
            if command.status == "in_progress":
                self._pipeline.fail_unrun(command, INTERRUPTED, utc_now(), fence=ownership.fence)
                failed += 1
            else:
                ownership.recovered.add(str(command.command_id))
                self._run(command, ownership, entry_id=None)
                resumed += 1
        claimed = await self.redis.claim_pending(partition, self.node_id)
        self._acks[partition].extend(e.entry_id for e in claimed)
        self._flush_acks()
        if unfinished or claimed:
            log.info(
                "partition_recovered",
                partition=partition,
                resumed=resumed,
                failed=failed,
                claimed_entries=len(claimed),
            )

    async def _settle_stranded(self) -> None:
        """Ends the commands stored but never routed: their accepting node stopped between
        the commit and the stream append. Such a command is still pending long after its
        partition's stream was read to the end (a lease later, so an append delayed by a
        short pause still comes first); it fails rather than runs late, since commands sent
        to its vehicle after it may have run."""
        reading = {
            p: own.caught_up_at
            for p, own in self.owned.items()
            if not own.releasing and own.caught_up_at is not None
        }
        if not reading:
            return
        grace = timedelta(milliseconds=self.lease_ms)
        latest = max(reading.values()) - grace
        for command in await self._store.commands.list_pending_before(latest):
            partition = self.partition_of(command.vehicle_id)
            caught_up_at = reading.get(partition)
            text = str(command.command_id)
            if (
                caught_up_at is None
                or command.submitted_at > caught_up_at - grace
                or text in self._seen
            ):
                continue
            ownership = self.owned.get(partition)
            if ownership is None or ownership.releasing:
                continue
            self._remember(text)
            log.warning("command_stranded", command_id=text, partition=partition)
            self._pipeline.fail_unrun(command, STRANDED, utc_now(), fence=ownership.fence)

    def _remember(self, command_id: str) -> None:
        seen = self._seen
        seen[command_id] = None
        if len(seen) > SEEN_KEPT:
            del seen[next(iter(seen))]

    # Running the partition's commands ----------------------------------------------------

    async def _consume(self, ownership: Ownership) -> None:
        partition = ownership.partition
        while True:
            try:
                entries = await self.redis.read(
                    partition, self.node_id, count=READ_BATCH, block_ms=READ_BLOCK_MS
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("partition_read_failed", partition=partition, error=str(exc))
                await asyncio.sleep(self.lease_ms / 5000)
                continue
            if len(entries) < READ_BATCH:
                ownership.caught_up_at = utc_now()
            for entry in entries:
                self._deliver(entry, ownership)

    def _deliver(self, entry: StreamEntry, ownership: Ownership) -> None:
        fields = entry.command
        if fields["command_id"] in ownership.recovered:
            ownership.recovered.discard(fields["command_id"])
            self._ack_later(entry.partition, entry.entry_id)
            return
        if fields["command_id"] in self._seen:
            self._ack_later(entry.partition, entry.entry_id)
            return
        command = Command(
            command_id=UUID(fields["command_id"]),
            user_id=UUID(fields["user_id"]),
            vehicle_id=UUID(fields["vehicle_id"]),
            command_name=fields["command_name"],
            command_params=fields["command_params"],
            status="pending",
            submitted_at=datetime.fromisoformat(fields["submitted_at"]),
        )
        self._run(command, ownership, entry_id=entry.entry_id)

    def _run(self, command: Command, ownership: Ownership, entry_id: str | None) -> None:
        partition = ownership.partition
        self._remember(str(command.command_id))

        def stored() -> None:
            if entry_id is not None:
                self._ack_later(partition, entry_id)

        self._pipeline.track(
            command,
            Tracked.of(
                command.command_id,
                command.vehicle_id,
                command.command_name,
                command.user_id,
                fence=ownership.fence,
                on_stored=stored,
            ),
        )
        try:
            self._actors.submit(
                command.vehicle_id,
                command.command_id,
                command.command_name,
                command.command_params,
                bounded=False,
            )
        except SovdError as exc:
            self._pipeline.fail_unrun(
                command, f"not run by node {self.node_id}: {exc}", utc_now(), fence=ownership.fence
            )
            stored()

    def _ack_later(self, partition: int, entry_id: str) -> None:
        self._acks[partition].append(entry_id)
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.create_task(self._ack_soon())

    async def _ack_soon(self) -> None:
        await asyncio.sleep(0)
        self._flush_acks()

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, defaultdict(list)
        for partition, entry_ids in acks.items():
            if entry_ids:
                self._change(self._ack(partition, entry_ids))

    async def _ack(self, partition: int, entry_ids: list[str]) -> None:
        try:
            await self.redis.ack(partition, entry_ids)
        except BusUnavailable as exc:
            # Unacknowledged entries are claimed again at the next takeover and found done.
            log.warning("stream_ack_failed", partition=partition, error=str(exc))

    def _vehicles_of(self, partition: int) -> list[UUID]:
        if self._by_partition is None or sum(map(len, self._by_partition.values())) != len(
            self._actors
        ):
            grouped: defaultdict[int, list[UUID]] = defaultdict(list)
            for identity in self._actors:
                grouped[self.partition_of(identity.vehicle_id)].append(identity.vehicle_id)
            self._by_partition = dict(grouped)
        return self._by_partition.get(partition, [])

    def describe(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "partitions": self.partitions,
            "lease_ms": self.lease_ms,
            "owned": sorted(self.owned),
            "desired": sorted(self.desired),
            "holds_its_share": self.holds_its_share,
        }
