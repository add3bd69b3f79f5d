"""Revocation checks for many requests in one query.

Every authenticated request must learn whether its login family was revoked (logout, token
reuse), also by another process. Requests that arrive while a lookup is running wait for the
next one, which asks about all of them at once: the check still starts after the request
arrived, so a logout committed before it is always seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

Lookup = Callable[[Sequence[UUID]], Awaitable[set[UUID]]]


class RevocationChecks:
    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._waiting: dict[UUID, list[asyncio.Future[bool]]] = {}
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def is_revoked(self, family_id: UUID) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(family_id, []).append(answer)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().call_soon(self._start_lookup)
        return await answer

    def _start_lookup(self) -> None:
        self._task = asyncio.ensure_future(self._look_up())

    async def _look_up(self) -> None:
        while self._waiting:
            asking, self._waiting = self._waiting, {}
            try:
                revoked = await self._lookup(list(asking))
            except Exception as exc:
                for answers in asking.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(exc)
                continue
            for family_id, answers in asking.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(family_id in revoked)
        self._running = False
