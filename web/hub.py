"""One bus subscription per process, fanned out to WebSocket clients.

Each client gets a bounded queue; a client that falls behind is dropped instead of slowing
the others. The subscription is supervised: when the bus goes away it is re-established with
backoff, and every client is told to catch up from storage, since events published during the
gap are gone."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any
from uuid import UUID

import structlog

from db.events import Event, EventBus

log = structlog.get_logger(__name__)

RESYNC: dict[str, Any] = {"event": "__resync__"}
HUB_PATTERNS = ("response:*",)
EVERYTHING = "*"
Filter = Callable[[dict[str, Any]], bool]
# Sends one event to a client; see `Listener.send_directly`.
Sender = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class Listener:
    """What one WebSocket client receives: events of one channel, or a resync marker.

    A bounded buffer with one waiter: offering wakes the reader without a task per event, and
    an optional filter drops unwanted events before they are queued. A listener that
    overflows keeps what it holds and then ends; so does one whose client left.

    With a sender (`send_directly`), an event offered while the reader waits with nothing
    queued is sent at once, in the offering call, and the reader sleeps on: an idle
    subscriber then costs no task wake-up per event, and renews no wait objects the garbage
    collector would have to walk. A send that has to wait (the socket's buffer is full) is
    finished by the reader, before anything queued meanwhile; a send that fails makes the
    reader's `next()` raise its error."""

    def __init__(self, channel: str, capacity: int, keep: Filter | None = None) -> None:
        self.channel = channel
        self.capacity = capacity
        self._keep = keep
        self._messages: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self.overflowed = asyncio.Event()
        self._sender: Sender | None = None
        self._unfinished: Resumed | None = None
        self._failure: Exception | None = None

    @property
    def pending(self) -> int:
        return len(self._messages)

    def send_directly(self, sender: Sender) -> None:
        """From now on, events the reader is idle for go straight to `sender`."""
        self._sender = sender

    def offer(self, message: dict[str, Any]) -> None:
        if self._ended or self.overflowed.is_set():
            return
        if message is not RESYNC and self._keep is not None and not self._keep(message):
            return
        if len(self._messages) >= self.capacity:
            self.overflowed.set()
        elif self._sender is not None and not self._messages and self._idle():
            self._send_now(self._sender, message)
            return
        else:
            self._messages.append(message)
        self._wake()

    def end(self) -> None:
        """No more events: `next()` answers None once the buffer is empty."""
        self._ended = True
        self._wake()

    def _idle(self) -> bool:
        """The reader waits in `next()` and nothing it must finish is pending."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _send_now(self, sender: Sender, message: dict[str, Any]) -> None:
        sending = sender(message)
        try:
            blocked_on = sending.send(None)
        except StopIteration:
            return
        except Exception as exc:
            self._failure = exc
        else:
            self._unfinished = Resumed(sending, blocked_on)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take_queued(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` messages already queued, without waiting."""
        messages = self._messages
        return [messages.popleft() for _ in range(min(limit, len(messages)))]

    async def next(self) -> dict[str, Any] | None:
        """The next message, or None once this listener has overflowed or ended. Raises
        what a direct send raised."""
        while True:
            unfinished, self._unfinished = self._unfinished, None
            if unfinished is not None:
                await unfinished
            failure, self._failure = self._failure, None
            if failure is not None:
                raise failure
            if self._messages:
                return self._messages.popleft()
            if self._ended or self.overflowed.is_set():
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class Resumed:
    """A coroutine that was started by hand (`coroutine.send(None)`) and is waiting on what it
    yielded, made awaitable: awaiting it hands that on to the awaiting task and drives the
    coroutine to its end, passing cancellation in."""

    __slots__ = ("_blocked_on", "_coroutine")

    def __init__(self, coroutine: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        self._coroutine = coroutine
        self._blocked_on = blocked_on

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, yielded = self._coroutine, self._blocked_on
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:
                try:
                    yielded = coroutine.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                yielded = coroutine.send(sent)
            except StopIteration:
                return


class EventHub:
    def __init__(
        self,
        bus: EventBus,
        *,
        patterns: Sequence[str] = HUB_PATTERNS,
        client_queue_size: int = 256,
        backoff_s: Sequence[float] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
    ) -> None:
        self._bus = bus
        self._patterns = tuple(patterns)
        self._client_queue_size = client_queue_size
        self._backoff_s = backoff_s
        self._by_channel: defaultdict[str, set[Listener]] = defaultdict(set)
        self._by_vehicle: defaultdict[str, set[Listener]] = defaultdict(set)
        self._everywhere: defaultdict[str, set[Listener]] = defaultdict(set)
        self._registries = (self._by_channel, self._by_vehicle, self._everywhere)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="event-hub")

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping = True
        if self._task is None:
            return
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        if not done:
            log.error("event_hub_stop_timed_out", timeout_s=timeout_s)

    @property
    def running(self) -> bool:
        """The subscription task is alive (started and not yet ended)."""
        return self._task is not None and not self._task.done()

    def listen(self, channel: str) -> Listener:
        """Events of one channel, e.g. `response:{command_id}`."""
        return self._register(self._by_channel, channel, self._client_queue_size)

    def listen_vehicle(self, vehicle_id: UUID, keep: Filter | None = None) -> Listener:
        """Events of every command of one vehicle (they carry `vehicle_id`)."""
        return self._register(self._by_vehicle, str(vehicle_id), self._client_queue_size, keep)

    def listen_everything(
        self, capacity: int | None = None, keep: Filter | None = None
    ) -> Listener:
        capacity = capacity or self._client_queue_size
        return self._register(self._everywhere, EVERYTHING, capacity, keep)

    @staticmethod
    def _register(
        registry: defaultdict[str, set[Listener]],
        key: str,
        capacity: int,
        keep: Filter | None = None,
    ) -> Listener:
        listener = Listener(key, capacity, keep)
        registry[key].add(listener)
        return listener

    def deliver(self, events: Sequence[Event]) -> None:
        """Events this process published, handed to its own listeners at once (the bus
        carries them to the other processes)."""
        for channel, message in events:
            self._dispatch(channel, message)

    def forget(self, listener: Listener) -> None:
        for registry in self._registries:
            listeners = registry.get(listener.channel)
            if listeners is not None and listener in listeners:
                listeners.discard(listener)
                if not listeners:
                    del registry[listener.channel]

    @property
    def listener_count(self) -> int:
        return sum(len(ls) for registry in self._registries for ls in registry.values())

    def _resync_everyone(self) -> None:
        for registry in self._registries:
            for listeners in registry.values():
                for listener in listeners:
                    listener.offer(RESYNC)

    def _dispatch(self, channel: str, message: dict[str, Any]) -> None:
        for listener in tuple(self._by_channel.get(channel, ())):
            listener.offer(message)
        vehicle_id = message.get("vehicle_id")
        if vehicle_id is not None:
            for listener in tuple(self._by_vehicle.get(vehicle_id, ())):
                listener.offer(message)
        for listener in tuple(self._everywhere.get(EVERYTHING, ())):
            listener.offer(message)

    async def _supervise(self) -> None:
        failures = 0
        while True:
            try:
                async with self._bus.subscribe(*self._patterns) as events:
                    self.connected.set()
                    if failures:
                        self.reconnects += 1
                        log.info("event_hub_resubscribed", after_failures=failures)
                        self._resync_everyone()
                    failures = 0
                    async for channel, message in events:
                        self._dispatch(channel, message)
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                if self._stopping:
                    return
                delay = self._backoff_s[min(failures, len(self._backoff_s) - 1)]
                failures += 1
                log.warning("event_hub_disconnected", error=str(exc), retry_in_s=delay)
                self._resync_everyone()
                await asyncio.sleep(delay)
