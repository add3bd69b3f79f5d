"""Where an actor reports each command's lifecycle.

The web layer wires a sink to the batched database writer and the event bus; the actor
awaits every call, so a sink can apply backpressure or wait for a group commit. A sink
that raises is logged and otherwise ignored: it never stops the actor.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from attrs import frozen

from sovd.persisted import Snapshot

TerminalStatus = Literal["completed", "failed", "timed_out"]


class CommandSink(Protocol):
    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        """The command left the mailbox: status `in_progress`."""

    async def command_chunk(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        sequence_number: int,
        payload: dict[str, Any],
        is_final: bool,
        at: datetime,
    ) -> None:
        """One reply chunk; `sequence_number` counts from 1, the last has `is_final`."""

    async def command_finished(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        status: TerminalStatus,
        error_message: str | None,
        at: datetime,
        state: Snapshot | None = None,
    ) -> None:
        """The terminal status; reported exactly once per submitted command. `state` is the
        vehicle's state after a command that changes it, to be kept with the result."""


@frozen
class Started:
    command_id: UUID
    vehicle_id: UUID
    at: datetime


@frozen
class ChunkReported:
    command_id: UUID
    vehicle_id: UUID
    sequence_number: int
    payload: dict[str, Any]
    is_final: bool
    at: datetime


@frozen
class Finished:
    command_id: UUID
    vehicle_id: UUID
    status: TerminalStatus
    error_message: str | None
    at: datetime
    state: Snapshot | None = None


SinkEvent = Started | ChunkReported | Finished


class RecordingSink:
    """Keeps every event in memory, in order; tests await `wait_finished`."""

    def __init__(self) -> None:
        self.events: list[SinkEvent] = []
        self._waiters: dict[UUID, asyncio.Future[Finished]] = {}

    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        self.events.append(Started(command_id, vehicle_id, at))

    async def command_chunk(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        sequence_number: int,
        payload: dict[str, Any],
        is_final: bool,
        at: datetime,
    ) -> None:
        self.events.append(
            ChunkReported(command_id, vehicle_id, sequence_number, payload, is_final, at)
        )

    async def command_finished(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        status: TerminalStatus,
        error_message: str | None,
        at: datetime,
        state: Snapshot | None = None,
    ) -> None:
        finished = Finished(command_id, vehicle_id, status, error_message, at, state)
        self.events.append(finished)
        waiter = self._waiters.get(command_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(finished)

    def chunks(self, command_id: UUID) -> list[ChunkReported]:
        return [
            e for e in self.events if isinstance(e, ChunkReported) and e.command_id == command_id
        ]

    def finished(self, command_id: UUID) -> Finished | None:
        for event in self.events:
            if isinstance(event, Finished) and event.command_id == command_id:
                return event
        return None

    def for_command(self, command_id: UUID) -> list[SinkEvent]:
        return [e for e in self.events if e.command_id == command_id]

    async def wait_finished(self, command_id: UUID) -> Finished:
        done = self.finished(command_id)
        if done is not None:
            return done
        waiter = self._waiters.get(command_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[command_id] = waiter
        return await waiter
