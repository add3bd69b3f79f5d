"""From actor to record to subscribers: the sink the actor system reports to.

Every lifecycle step becomes rows for the batch writer plus the events to publish once those
rows are committed, so a subscriber never hears of a result the store does not hold yet."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from attrs import define, field, frozen

from actors.sink import TerminalStatus
from db.events import Event
from db.repositories import StatusChange, StoredState, StoreUnavailable, WriteBatch
from db.writer import BatchWriter, Submission, WriterStopped
from sovd.persisted import Snapshot
from sovd.records import (
    TERMINAL_STATUSES,
    AuditEntry,
    Command,
    CommandStatus,
    Response,
    new_id,
)
from web.commands.stats import CommandStats
from web.metrics import Metrics

log = structlog.get_logger(__name__)


def _when_stored(callback: Callable[[], None], committed: asyncio.Future[None]) -> None:
    if not committed.cancelled() and committed.exception() is None:
        callback()


def _settle(awaited: _Awaited, committed: asyncio.Future[None]) -> None:
    if awaited.done.done():
        return
    if committed.cancelled():
        awaited.done.set_exception(StoreUnavailable("the command's result was not stored"))
        return
    error = committed.exception()
    if error is not None:
        awaited.done.set_exception(error)
    elif awaited.outcome is not None:
        awaited.done.set_result(awaited.outcome)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def response_channel(command_id: UUID | str) -> str:
    return f"response:{command_id}"


def _text(value: UUID | str) -> str:
    return value if isinstance(value, str) else str(value)


def response_message(
    response: Response, vehicle_id: UUID | str, command_id: str | None = None
) -> dict[str, Any]:
    return {
        "event": "response",
        "command_id": command_id or str(response.command_id),
        "vehicle_id": _text(vehicle_id),
        "response_id": str(response.response_id),
        "response_payload": response.response_payload,
        "sequence_number": response.sequence_number,
        "is_final": response.is_final,
    }


def status_message(
    command_id: UUID | str,
    vehicle_id: UUID | str,
    status: CommandStatus,
    completed_at: datetime | None,
    error_message: str | None = None,
    command_name: str | None = None,
) -> dict[str, Any]:
    """`status` for progress and success, `error` for failed and timed-out commands.

    Beside the reference app's fields, `vehicle_id` and `command_name` let one channel feed
    the command's stream, its vehicle's feed and the fleet feed."""
    message: dict[str, Any] = {
        "event": "error" if status in ("failed", "timed_out") else "status",
        "command_id": _text(command_id),
        "vehicle_id": _text(vehicle_id),
        "command_name": command_name,
        "status": status,
        "completed_at": iso(completed_at),
    }
    if message["event"] == "error":
        message["error_message"] = error_message
    return message


def command_audit(
    action: str,
    *,
    command_id: UUID,
    vehicle_id: UUID,
    user_id: UUID | None,
    at: datetime,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> AuditEntry:
    return AuditEntry(
        log_id=new_id(),
        action=action,
        entity_type="command",
        timestamp=at,
        user_id=user_id,
        vehicle_id=vehicle_id,
        command_id=command_id,
        entity_id=command_id,
        details=details or {},
        ip_address=ip_address,
        user_agent=user_agent,
    )


@define
class _Rows:
    """One command's rows and events gathered for a single writer submission."""

    status_changes: list[StatusChange] = field(factory=list)
    responses: list[Response] = field(factory=list)
    audit: list[AuditEntry] = field(factory=list)
    vehicle_states: list[StoredState] = field(factory=list)
    events: list[Event] = field(factory=list)
    tracked: Tracked | None = None
    terminal: bool = False


@frozen
class Outcome:
    """How a command ended, with its reply payloads in order; for callers that wait on it."""

    status: TerminalStatus
    error_message: str | None
    payloads: list[dict[str, Any]]

    @property
    def final_payload(self) -> dict[str, Any] | None:
        return self.payloads[-1] if self.payloads else None


@define
class _Awaited:
    done: asyncio.Future[Outcome]
    payloads: list[dict[str, Any]] = field(factory=list)
    outcome: Outcome | None = None


@frozen
class Tracked:
    """What the pipeline remembers of a running command; ids as text, made once. In cluster
    mode, the partition's fencing token its rows are written under, and what to do once its
    terminal status is stored (acknowledge its stream entry). `accept`: the submission of
    its accepted row, when the command was queued before that row was stored; its results
    are written only if that row is."""

    command_name: str
    user_id: UUID | None
    command_id: str
    vehicle_id: str
    channel: str
    fence: tuple[int, int] | None = None
    on_stored: Callable[[], None] | None = field(default=None, eq=False)
    # When this process accepted it (monotonic seconds), for the POST-to-completed latency.
    accepted_at: float = field(factory=time.monotonic, eq=False)
    accept: Submission | None = field(default=None, eq=False)

    @classmethod
    def of(
        cls,
        command_id: UUID,
        vehicle_id: UUID,
        name: str = "",
        user_id: UUID | None = None,
        *,
        fence: tuple[int, int] | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> Tracked:
        text = str(command_id)
        return cls(name, user_id, text, str(vehicle_id), response_channel(text), fence, on_stored)

    def stored_by(self, accept: Submission) -> Tracked:
        """This command, queued before its row is stored by `accept` (attrs.evolve costs
        several times this on the hot path)."""
        return Tracked(
            self.command_name,
            self.user_id,
            self.command_id,
            self.vehicle_id,
            self.channel,
            self.fence,
            self.on_stored,
            self.accepted_at,
            accept,
        )


class CommandPipeline:
    """The actor system's sink: rows to the batch writer, events after their commit."""

    def __init__(
        self,
        writer: BatchWriter,
        metrics: Metrics,
        stats: CommandStats | None = None,
        *,
        keep_vehicle_states: bool = False,
    ) -> None:
        """`keep_vehicle_states`: write what commands change of a vehicle with their results
        (PostgreSQL mode, where a restart or another process reads it back)."""
        self._writer = writer
        self._metrics = metrics
        self.stats = stats or CommandStats()
        self._keep_vehicle_states = keep_vehicle_states
        self._tracked: dict[UUID, Tracked] = {}
        self._awaited: dict[UUID, _Awaited] = {}
        self._gathered: dict[UUID, _Rows] = {}
        self._flush_scheduled = False
        self._finished_counters: dict[tuple[str, str], Any] = {}

    def track(self, command: Command, tracked: Tracked | None = None) -> Tracked:
        """Remembers who asked for what, for vehicle events, audit entries and metrics. A
        command tracked before its row is stored (`tracked.accept`) counts as accepted once
        its caller says so (`stats.command_accepted`)."""
        tracked = tracked or Tracked.of(
            command.command_id, command.vehicle_id, command.command_name, command.user_id
        )
        self._tracked[command.command_id] = tracked
        if tracked.accept is None:
            self.stats.command_accepted()
        return tracked

    def forget(self, command_id: UUID) -> None:
        """Drops what `track` and `await_outcome` keep of a command that will not run."""
        self._tracked.pop(command_id, None)
        self._awaited.pop(command_id, None)

    def await_outcome(self, command_id: UUID) -> asyncio.Future[Outcome]:
        """A future for the command's outcome, resolved once its terminal status is committed
        (StoreUnavailable if the store refuses it). Ask before the command runs."""
        awaited = _Awaited(asyncio.get_running_loop().create_future())
        self._awaited[command_id] = awaited
        return awaited.done

    def fail_unrun(
        self, command: Command, reason: str, at: datetime, *, fence: tuple[int, int] | None = None
    ) -> None:
        """Ends a stored command that no actor will run: `failed`, with `reason` (written
        under `fence`, in cluster mode)."""
        self._tracked.pop(command.command_id, None)
        self.stats.command_finished("failed", reason, None)
        awaited = self._awaited.pop(command.command_id, None)
        if awaited is not None and not awaited.done.done():
            awaited.done.set_result(Outcome("failed", reason, []))
        self._writer.enqueue(
            WriteBatch(status_changes=[StatusChange(command.command_id, "failed", reason, at)]),
            [
                (
                    response_channel(command.command_id),
                    status_message(
                        command.command_id,
                        command.vehicle_id,
                        "failed",
                        at,
                        reason,
                        command.command_name,
                    ),
                )
            ],
            fence=fence,
        )

    async def committed(self) -> None:
        """Returns once every row handed over so far is committed (the writer keeps order)."""
        self.flush()
        await self._writer.commit(WriteBatch())

    def _known(self, command_id: UUID, vehicle_id: UUID) -> Tracked:
        return self._tracked.get(command_id) or Tracked.of(command_id, vehicle_id)

    @staticmethod
    def _unstored(known: Tracked) -> bool:
        """A read that ran while its row was being stored, and the row was dropped: nothing
        of it is recorded, published or counted."""
        return known.accept is not None and known.accept.fate == "dropped"

    async def _gather(
        self,
        command_id: UUID,
        event: Event,
        known: Tracked,
        *,
        status: StatusChange | None = None,
        response: Response | None = None,
        audit: AuditEntry | None = None,
        vehicle_state: StoredState | None = None,
    ) -> None:
        """Gathers a command's rows until the event loop turns, then hands them to the writer
        as one submission: a command that runs without pausing (no simulated latency) costs
        the writer one submission instead of one per lifecycle step, and a command that
        pauses still has its `in_progress` written at once."""
        await self._writer.has_room()
        rows = self._gathered.get(command_id)
        if rows is None:
            rows = self._gathered[command_id] = _Rows(tracked=known)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)
        if status is not None:
            rows.status_changes.append(status)
            rows.terminal = status.status in TERMINAL_STATUSES
        if response is not None:
            rows.responses.append(response)
        if audit is not None:
            rows.audit.append(audit)
        if vehicle_state is not None:
            rows.vehicle_states.append(vehicle_state)
        rows.events.append(event)

    def flush(self) -> None:
        """Hands every gathered row to the writer, in the order the commands began."""
        self._flush_scheduled = False
        gathered, self._gathered = self._gathered, {}
        for command_id, rows in gathered.items():
            batch = WriteBatch(
                status_changes=rows.status_changes,
                responses=rows.responses,
                audit=rows.audit,
                vehicle_states=rows.vehicle_states,
            )
            awaited = self._awaited.get(command_id)
            tracked = rows.tracked
            fence = tracked.fence if tracked is not None else None
            accept = tracked.accept if tracked is not None else None
            on_stored = tracked.on_stored if tracked is not None and rows.terminal else None
            try:
                if on_stored is None and (awaited is None or awaited.outcome is None):
                    self._writer.enqueue(batch, rows.events, fence=fence, requires=accept)
                    continue
                committed = self._writer.commit(batch, rows.events, fence=fence, requires=accept)
                if awaited is not None and awaited.outcome is not None:
                    del self._awaited[command_id]
                    committed.add_done_callback(functools.partial(_settle, awaited))
                if on_stored is not None:
                    committed.add_done_callback(functools.partial(_when_stored, on_stored))
            except WriterStopped as exc:
                log.error("command_rows_not_written", command_id=str(command_id))
                if awaited is not None and not awaited.done.done():
                    awaited.done.set_exception(StoreUnavailable(str(exc)))

    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        known = self._known(command_id, vehicle_id)
        if self._unstored(known):
            return
        await self._gather(
            command_id,
            (
                known.channel,
                status_message(
                    known.command_id,
                    known.vehicle_id,
                    "in_progress",
                    None,
                    command_name=known.command_name,
                ),
            ),
            known,
            status=StatusChange(command_id, "in_progress"),
        )

    async def command_chunk(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        sequence_number: int,
        payload: dict[str, Any],
        is_final: bool,
        at: datetime,
    ) -> None:
        known = self._known(command_id, vehicle_id)
        if self._unstored(known):
            return
        response = Response(new_id(), command_id, payload, sequence_number, is_final, at)
        awaited = self._awaited.get(command_id)
        if awaited is not None:
            awaited.payloads.append(payload)
        await self._gather(
            command_id,
            (known.channel, response_message(response, known.vehicle_id, known.command_id)),
            known,
            response=response,
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
        tracked = self._tracked.pop(command_id, None)
        known = tracked or Tracked.of(command_id, vehicle_id)
        if self._unstored(known):
            self._awaited.pop(command_id, None)
            log.debug("unstored_command_finished", command_id=known.command_id)
            return
        name = known.command_name
        latency = time.monotonic() - tracked.accepted_at if tracked is not None else None
        self.stats.command_finished(status, error_message, latency)
        awaited = self._awaited.get(command_id)
        if awaited is not None:
            awaited.outcome = Outcome(status, error_message, awaited.payloads)
        audit = command_audit(
            "command_completed" if status == "completed" else "command_failed",
            command_id=command_id,
            vehicle_id=vehicle_id,
            user_id=known.user_id,
            at=at,
            details={"status": status, "error_message": error_message, "command_name": name},
        )
        await self._gather(
            command_id,
            (
                known.channel,
                status_message(known.command_id, known.vehicle_id, status, at, error_message, name),
            ),
            known,
            status=StatusChange(command_id, status, error_message, at),
            audit=audit,
            vehicle_state=(
                StoredState(vehicle_id, state, at)
                if state is not None and self._keep_vehicle_states
                else None
            ),
        )
        counter = self._finished_counters.get((status, name))
        if counter is None:
            counter = self._metrics.commands.labels(status, name)
            self._finished_counters[(status, name)] = counter
        counter.inc()
        log.debug("command_recorded", command_id=known.command_id, status=status)
