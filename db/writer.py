"""Group commit: rows from many commands go to the store in one transaction, then their
events are published in one pipelined round trip.

Batching needs no timer: while one batch is being written, new rows pile up and form the next
one, so a quiet system writes at once and a busy one writes in large batches. A batch's events
are published while the next batch is written; one publication is in flight at a time, so
events go out in commit order and a slow bus sets the pace instead of piling up.

A submission may require an earlier one (a command's results require its accepted row): if
the earlier one is dropped, so is it, and both are written in one transaction when they are
taken together."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Literal

import structlog
from attrs import define

from db.events import BusUnavailable, Event
from db.repositories import StaleFence, Store, StoreUnavailable, WriteBatch

log = structlog.get_logger(__name__)

Publisher = Callable[[Sequence[Event]], Awaitable[None]]
BatchObserver = Callable[[int], None]


# Loop turns a writer that was idle lets pass before it writes: rows produced by one event
# (a command's accepted row and, at no latency, its results) then share one transaction.
GATHER_TURNS = 3
# How often submissions that give up after a while are checked.
SWEEP_EVERY_S = 0.25


class WriterStopped(Exception):
    """The writer no longer takes rows."""


Fate = Literal["queued", "writing", "stored", "dropped"]


@define(eq=False)
class Submission:
    """Rows handed to the writer, and what became of them (`fate`): `stored` once committed
    (also after the caller gave up waiting), `dropped` when they never will be."""

    batch: WriteBatch
    events: Sequence[Event]
    done: asyncio.Future[None] | None = None
    fate: Fate = "queued"
    # An earlier submission these rows need in the store first; dropped with it.
    requires: Submission | None = None
    # For submissions whose caller stops waiting on an outage or after a while: when (loop
    # time), and what to do if the rows commit after the caller was told they did not.
    give_up_at: float | None = None
    on_late_commit: Callable[[], None] | None = None
    abandoned: bool = False
    # (partition, fencing token) the rows were produced under, in cluster mode.
    fence: tuple[int, int] | None = None


def _merge(items: Sequence[Submission]) -> WriteBatch:
    return WriteBatch(
        new_commands=[c for p in items for c in p.batch.new_commands],
        status_changes=[s for p in items for s in p.batch.status_changes],
        responses=[r for p in items for r in p.batch.responses],
        audit=[a for p in items for a in p.batch.audit],
        vehicle_states=[v for p in items for v in p.batch.vehicle_states],
    )


def _fences(items: Sequence[Submission]) -> tuple[dict[int, int], set[tuple[int, int]]]:
    """The partition tokens the batch is written under (the newest of each partition), and
    the older (partition, token) pairs some rows carry: those are stale whatever the store
    says."""
    newest: dict[int, int] = {}
    for item in items:
        if item.fence is not None:
            partition, token = item.fence
            newest[partition] = max(token, newest.get(partition, token))
    outdated = {
        item.fence
        for item in items
        if item.fence is not None and item.fence[1] != newest[item.fence[0]]
    }
    return newest, outdated


class BatchWriter:
    def __init__(
        self,
        store: Store,
        publish: Publisher,
        *,
        max_rows: int = 2000,
        max_queued_rows: int = 50_000,
        retry_delays_s: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._max_rows = max_rows
        self._max_queued_rows = max_queued_rows
        self._retry_delays_s = retry_delays_s
        self._on_batch = on_batch
        self._queue: deque[Submission] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: list[Submission] = []
        self._publishing: asyncio.Task[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopping = False
        self.outage = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Writes what is queued, then stops; gives up after the timeout."""
        self._stopping = True
        self._wakeup.set()
        try:
            if self._task is not None:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._task)
        except TimeoutError:
            for task in (self._task, self._publishing):
                if task is not None:
                    task.cancel()
            log.error("writes_abandoned", queued_rows=self._queued_rows)
        finally:
            if self._sweeper is not None:
                self._sweeper.cancel()
                self._sweeper = None

    def _unqueue(self, item: Submission) -> None:
        self._queue.remove(item)
        self._queued_rows -= max(len(item.batch), 1)
        if self._queued_rows < self._max_queued_rows:
            self._room.set()

    def commit(
        self,
        batch: WriteBatch,
        events: Sequence[Event] = (),
        *,
        give_up_s: float | None = None,
        on_late_commit: Callable[[], None] | None = None,
        fence: tuple[int, int] | None = None,
        requires: Submission | None = None,
    ) -> asyncio.Future[None]:
        """Queues rows; the future resolves once they are committed (events follow).

        With `give_up_s`, the future fails with StoreUnavailable as soon as the store is
        found unreachable or after that many seconds: rows still queued are dropped, rows
        already being written may still commit, and then `on_late_commit` runs. With
        `requires`, the rows are dropped if that submission is."""
        submission = self.submit(
            batch,
            events,
            give_up_s=give_up_s,
            on_late_commit=on_late_commit,
            fence=fence,
            requires=requires,
        )
        assert submission.done is not None
        return submission.done

    def submit(
        self,
        batch: WriteBatch,
        events: Sequence[Event] = (),
        *,
        give_up_s: float | None = None,
        on_late_commit: Callable[[], None] | None = None,
        fence: tuple[int, int] | None = None,
        requires: Submission | None = None,
    ) -> Submission:
        """As `commit`, returning the submission itself: its `done` future, and its fate
        for later submissions to require."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        submission = Submission(
            batch,
            events,
            done,
            requires=requires,
            on_late_commit=on_late_commit,
            fence=fence,
        )
        self._enqueue(submission)
        if give_up_s is not None:
            submission.give_up_at = loop.time() + give_up_s
            if self.outage.is_set():
                self._give_up(submission)
            elif self._sweeper is None:
                self._sweeper = loop.call_later(SWEEP_EVERY_S, self._sweep)
        return submission

    def _sweep(self) -> None:
        """One timer for all waiting submissions instead of one each: answers those whose
        time is up, then comes back while any still wait."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        waiting = False
        for item in [*self._in_flight, *self._queue]:
            if item.give_up_at is None or item.done is None or item.done.done():
                continue
            if item.give_up_at <= now:
                self._give_up(item)
            else:
                waiting = True
        if waiting:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY_S, self._sweep)

    def _give_up(self, item: Submission) -> None:
        if item.done is None or item.done.done():
            return
        if item in self._in_flight:
            item.abandoned = True
        else:
            self._unqueue(item)
            item.fate = "dropped"
        item.done.set_exception(StoreUnavailable("the rows could not be stored in time"))

    def _give_up_waiting(self) -> None:
        """An outage began: callers that asked not to wait through one are answered now."""
        for item in [*self._in_flight, *self._queue]:
            if item.give_up_at is not None:
                self._give_up(item)

    def enqueue(
        self,
        batch: WriteBatch,
        events: Sequence[Event] = (),
        *,
        fence: tuple[int, int] | None = None,
        requires: Submission | None = None,
    ) -> None:
        """Queues rows nobody waits for; a refused row is logged by the writer. With
        `fence`, the rows are written only while that partition token is current; with
        `requires`, only if that submission is not dropped."""
        self._enqueue(Submission(batch, events, fence=fence, requires=requires))

    def _enqueue(self, pending: Submission) -> None:
        if self._stopping:
            raise WriterStopped("the batch writer is stopping")
        batch = pending.batch
        self._queue.append(pending)
        self._queued_rows += max(len(batch), 1)
        if self._queued_rows >= self._max_queued_rows:
            self._room.clear()
        self._wakeup.set()

    async def has_room(self) -> None:
        """Returns once the queue holds fewer rows than its bound."""
        if not self._room.is_set():
            await self._room.wait()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def store_unavailable(self) -> bool:
        return self.outage.is_set()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def _take(self) -> list[Submission]:
        taken: list[Submission] = []
        rows = 0
        while self._queue and (not taken or rows + len(self._queue[0].batch) <= self._max_rows):
            item = self._queue.popleft()
            taken.append(item)
            rows += max(len(item.batch), 1)
        self._queued_rows -= rows
        if self._queued_rows < self._max_queued_rows:
            self._room.set()
        return taken

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    await self._published()
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                for _ in range(GATHER_TURNS):
                    await asyncio.sleep(0)
                continue
            items = self._in_flight = self._take()
            try:
                await self._flush(items)
            finally:
                self._in_flight = []

    async def _flush(self, items: list[Submission]) -> None:
        if any(i.requires is not None for i in items):
            items = self._drop_orphans(items)
        for item in items:
            item.fate = "writing"
        while True:
            fences, outdated = _fences(items)
            if outdated:
                items = self._refuse_stale(items, outdated)
                continue
            batch = _merge(items)
            try:
                committed = await self._commit(batch, fences)
            except StaleFence as exc:
                stale = {i.fence for i in items if i.fence and i.fence[0] in exc.partitions}
                items = self._refuse_stale(items, stale)
                continue
            break
        if not items:
            return
        if committed:
            self._settle(items, None)
        else:
            await self._commit_one_by_one(items)
        if self._on_batch is not None:
            self._on_batch(len(batch))
        events = [event for item in items if item.fate == "stored" for event in item.events]
        if events:
            await self._published()
            self._publishing = asyncio.create_task(self._publish_committed(events))

    async def _published(self) -> None:
        """Waits for the publication in flight, if any."""
        if self._publishing is not None:
            publishing, self._publishing = self._publishing, None
            await publishing

    async def _publish_committed(self, events: Sequence[Event]) -> None:
        try:
            await self._publish(events)
        except BusUnavailable as exc:
            # Storage is the record: subscribers catch up from it.
            log.warning("events_not_published", count=len(events), error=str(exc))

    async def _commit(self, batch: WriteBatch, fences: dict[int, int] | None = None) -> bool:
        """Commits, retrying for as long as the store is unreachable (nothing is dropped);
        False when the store refuses the batch."""
        attempt = 0
        while True:
            try:
                await self._store.write_batch(batch, fences)
            except StaleFence:
                raise
            except StoreUnavailable as exc:
                delay = self._retry_delays_s[min(attempt, len(self._retry_delays_s) - 1)]
                attempt += 1
                self.outage.set()
                self._give_up_waiting()
                log.warning("batch_write_retry", attempt=attempt, rows=len(batch), error=str(exc))
                await asyncio.sleep(delay)
            except Exception as exc:
                log.warning("batch_refused", rows=len(batch), error=str(exc))
                return False
            else:
                self.outage.clear()
                return True

    def _refuse_stale(
        self, items: list[Submission], stale: Collection[tuple[int, int]]
    ) -> list[Submission]:
        """Drops rows produced under a fencing token that is no longer current (another node
        owns their partition now): refused and logged; the new owner redoes the work."""
        refused = [i for i in items if i.fence is not None and i.fence in stale]
        log.warning(
            "stale_owner_write_refused",
            partitions=sorted({i.fence[0] for i in refused if i.fence is not None}),
            submissions=len(refused),
        )
        self._settle(refused, StaleFence([i.fence[0] for i in refused if i.fence is not None]))
        return [i for i in items if i not in refused]

    async def _commit_one_by_one(self, items: list[Submission]) -> None:
        """One bad row must not sink its neighbours: retry each submission on its own (under
        its fence: a new owner may have claimed the partition since the batch was refused)."""
        for item in items:
            if _orphaned(item):
                self._settle([item], _orphan_error())
                continue
            fences = None if item.fence is None else dict([item.fence])
            try:
                await self._store.write_batch(item.batch, fences)
            except StaleFence:
                self._refuse_stale([item], [item.fence] if item.fence else [])
            except Exception as exc:
                log.error("write_failed", rows=len(item.batch), error=str(exc))
                self._settle([item], exc)
            else:
                self._settle([item], None)

    def _drop_orphans(self, items: list[Submission]) -> list[Submission]:
        """Settles, unwritten, the submissions whose required one was dropped (it precedes
        them: dropped while queued, or refused in an earlier batch)."""
        kept = []
        for item in items:
            if _orphaned(item):
                self._settle([item], _orphan_error())
            else:
                kept.append(item)
        return kept

    @staticmethod
    def _settle(items: Sequence[Submission], error: BaseException | None) -> None:
        for item in items:
            item.fate = "stored" if error is None else "dropped"
            if item.abandoned and error is None and item.on_late_commit is not None:
                item.on_late_commit()
            if item.done is None or item.done.done():
                continue
            if error is None:
                item.done.set_result(None)
            else:
                item.done.set_exception(error)


def _orphaned(item: Submission) -> bool:
    return item.requires is not None and item.requires.fate == "dropped"


def _orphan_error() -> StoreUnavailable:
    return StoreUnavailable("the rows these depend on were not stored")
