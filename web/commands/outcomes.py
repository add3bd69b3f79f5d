"""Waiting for a command that another node runs (cluster mode): its events reach every node,
and the outcome is read from the store once one says the command ended.

Events are only the trigger; the store is the record. A lost event (a bus outage, a
resubscription) costs at most one poll interval: the store is read then anyway."""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

import structlog

from db.repositories import Store, StoreUnavailable
from sovd.records import TERMINAL_STATUSES
from web.commands.pipeline import Outcome, response_channel
from web.hub import RESYNC, EventHub, Listener

log = structlog.get_logger(__name__)

POLL_S = 2.0


class EventOutcomes:
    def __init__(self, hub: EventHub, store: Store, *, poll_s: float = POLL_S) -> None:
        self._hub = hub
        self._store = store
        self._poll_s = poll_s
        self._following: set[asyncio.Task[None]] = set()

    def watch(self, command_id: UUID) -> asyncio.Future[Outcome]:
        listener = self._hub.listen(response_channel(command_id))
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._follow(command_id, listener, outcome))
        self._following.add(task)
        task.add_done_callback(self._following.discard)
        return outcome

    async def stop(self) -> None:
        for task in list(self._following):
            task.cancel()
        await asyncio.gather(*self._following, return_exceptions=True)

    async def _follow(
        self, command_id: UUID, listener: Listener, outcome: asyncio.Future[Outcome]
    ) -> None:
        try:
            while not outcome.done():
                message = None
                # Not wait_for: on Python 3.11 it can return an event that arrives with
                # stop()'s cancellation and drop the cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_s):
                        message = await listener.next()
                if message is not None and message is not RESYNC and not _ends(message):
                    continue
                ended = await self._stored(command_id)
                if ended is not None and not outcome.done():
                    outcome.set_result(ended)
        except StoreUnavailable as exc:
            if not outcome.done():
                outcome.set_exception(exc)
        finally:
            self._hub.forget(listener)

    async def _stored(self, command_id: UUID) -> Outcome | None:
        command = await self._store.commands.get(command_id)
        if command is None:
            return None
        match command.status:
            case "completed" | "failed" | "timed_out" as status:
                responses = await self._store.responses.list_for_command(command_id)
                return Outcome(
                    status, command.error_message, [r.response_payload for r in responses]
                )
        return None


def _ends(message: dict[str, object]) -> bool:
    return message.get("event") == "error" or message.get("status") in TERMINAL_STATUSES
