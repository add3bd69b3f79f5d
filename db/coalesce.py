"""Lookups by key, many callers to one query.

Callers that ask while a lookup is running wait for the next one, which asks about all of
them at once. A lookup still starts after its caller asked, so it sees every write committed
before that: a logout for the revocation checks, a vehicle's last state for the actor that
wakes up. Under load the store answers one query per group of callers instead of one each
(a fleet of 1,000 vehicles waking up at once cost 1,000 state queries)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Lookup = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


class CoalescedLookups(Generic[K, V]):
    """`get(key)` answers what one `lookup(keys)` found for the key, or `missing`."""

    def __init__(self, lookup: Lookup[K, V], missing: V) -> None:
        self._lookup = lookup
        self._missing = missing
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._running = False
        # The loop holds a running task only weakly: this reference keeps the lookup alive.
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[V] = loop.create_future()
        self._waiting.setdefault(key, []).append(answer)
        if not self._running:
            self._running = True
            loop.call_soon(self._start)
        return await answer

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._look_up())

    async def _look_up(self) -> None:
        while self._waiting:
            asking, self._waiting = self._waiting, {}
            try:
                found = await self._lookup(list(asking))
            except Exception as exc:
                for answers in asking.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(exc)
                continue
            for key, answers in asking.items():
                value = found.get(key, self._missing)
                for answer in answers:
                    if not answer.done():
                        answer.set_result(value)
        self._running = False
