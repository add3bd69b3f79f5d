"""Event buses: Redis pub/sub in production mode, an in-process one on the embedded default."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

Event = tuple[str, dict[str, Any]]


class BusUnavailable(Exception):
    """The event bus cannot be reached."""


class EventBus(Protocol):
    @property
    def kind(self) -> str: ...

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publishes events in order, in one round trip where the bus allows it."""
        ...

    def subscribe(self, *patterns: str) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Events on channels matching any glob pattern such as `response:*`."""
        ...

    async def ping(self) -> None:
        """Returns when the bus answers; raises BusUnavailable otherwise."""
        ...

    async def close(self) -> None: ...


class InProcessBus:
    kind = "in-process"

    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[str, ...], asyncio.Queue[Event]]] = []

    async def publish_many(self, events: Sequence[Event]) -> None:
        for channel, message in events:
            for patterns, queue in self._subscribers:
                if any(fnmatch.fnmatchcase(channel, p) for p in patterns):
                    queue.put_nowait((channel, message))

    @asynccontextmanager
    async def subscribe(self, *patterns: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        entry = (patterns, queue)
        self._subscribers.append(entry)

        async def events() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._subscribers.remove(entry)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._subscribers.clear()
