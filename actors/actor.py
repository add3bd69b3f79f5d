"""One vehicle's actor: a mailbox, one command at a time, in arrival order.

An idle actor is a slotted object holding the vehicle's identity: no task, no queue, and
no state until the first command materializes it from the seed. The mailbox and a drain
task exist only while there is work; passivation drops the mailbox after a quiet spell.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import structlog
from attrs import define, field, frozen
from structlog.typing import FilteringBoundLogger

from actors.latency import LatencyModel
from actors.sink import CommandSink, TerminalStatus
from sovd.errors import VehicleBusy
from sovd.execution import Chunk, NoAnswer, run_command, stop_command
from sovd.fleet import VehicleIdentity
from sovd.persisted import Snapshot, restore_state, snapshot_of
from sovd.registry import CommandType
from sovd.state import VehicleState, materialize_state
from sovd.uds import Session

logger = structlog.get_logger(__name__)

STOPPED_BEFORE_START = "simulator stopped before the command ran"
HALTED_BEFORE_START = "stopped by the client before it started"
HALT_REFUSED = "stopped by the client; the vehicle refused to stop it and dropped it"
STOPPED_WHILE_RUNNING = "simulator stopped before the command completed"
INTERMITTENT_LOSS = "connection to the vehicle lost: its link is intermittent"

Outcome = tuple[TerminalStatus, str | None]
StateLoader = Callable[[UUID], Awaitable[Snapshot | None]]
STATE_UNREADABLE = "the vehicle's stored state could not be read"
# Why a wait ended early: the command's deadline, the system stopping, or the client halting
# the command (a UDS stopRoutine).
_Interruption = Literal["deadline", "stopped", "halted"]
HaltRequest = Literal["halting", "dropped", "not_stoppable", "unknown"]


@frozen
class Envelope:
    command_id: UUID
    command: CommandType[Any]
    params: object
    # Resolved True once the command's client was told it is accepted (its row stored), False
    # when it was refused; None: it was stored before it was queued.
    gate: asyncio.Future[bool] | None = None


@frozen
class ActorStatus:
    state: Literal["idle", "active"]
    mailbox_depth: int
    in_flight_command_id: UUID | None
    session: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "mailbox_depth": self.mailbox_depth,
            "in_flight_command_id": (
                str(self.in_flight_command_id) if self.in_flight_command_id else None
            ),
            "session": self.session,
        }


@define
class ActorRuntime:
    """What all actors of one system share: settings and the sets of live actors."""

    sink: CommandSink
    mailbox_size: int
    command_deadline_s: float
    passivate_after_s: float | None
    time_scale: float
    clock: Callable[[], datetime]
    active: set[VehicleActor] = field(factory=set)
    busy: dict[VehicleActor, asyncio.Task[None]] = field(factory=dict)
    stopping: bool = False
    aborting: bool = False
    # Where a vehicle's state is read back from when its actor first needs it (PostgreSQL
    # mode); None: every vehicle starts from its seed.
    load_state: StateLoader | None = None


class VehicleActor:
    __slots__ = (
        "_halt",
        "_halted_queued",
        "_idle_since",
        "_in_flight",
        "_latency",
        "_mailbox",
        "_passivation",
        "_pause",
        "_reserved",
        "_runtime",
        "_state",
        "_task",
        "identity",
    )

    def __init__(
        self, identity: VehicleIdentity, runtime: ActorRuntime, latency: LatencyModel
    ) -> None:
        self.identity = identity
        self._runtime = runtime
        self._latency = latency
        self._state: VehicleState | None = None
        self._mailbox: deque[Envelope] | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: Envelope | None = None
        self._halt = False
        self._halted_queued: set[UUID] | None = None
        self._passivation: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._pause: asyncio.Future[None] | None = None
        self._reserved = 0

    def __repr__(self) -> str:
        return f"<VehicleActor {self.identity.vehicle_id} {self.identity.vin}>"

    @property
    def vehicle_id(self) -> UUID:
        return self.identity.vehicle_id

    @property
    def state(self) -> VehicleState | None:
        """The materialized state, None until the first command."""
        return self._state

    @property
    def is_active(self) -> bool:
        return self._mailbox is not None

    @property
    def mailbox_depth(self) -> int:
        return len(self._mailbox) if self._mailbox is not None else 0

    @property
    def in_flight_command_id(self) -> UUID | None:
        return self._in_flight.command_id if self._in_flight is not None else None

    @property
    def mailbox_size(self) -> int:
        """Commands this vehicle queues before answering busy: its fleet's or the system's."""
        return self.identity.fleet.mailbox_size or self._runtime.mailbox_size

    @property
    def command_deadline_s(self) -> float:
        return self.identity.fleet.command_deadline_s or self._runtime.command_deadline_s

    @property
    def last_contact_at(self) -> datetime | None:
        """When the vehicle last answered a command; None before the first one."""
        return self._state.now if self._state is not None else None

    def status(self) -> ActorStatus:
        if self._state is not None:
            sessions = self._state.sessions()
        else:
            default = Session.DEFAULT.label
            sessions = {ecu.ecu_address: default for ecu in self.identity.profile.ecus}
        return ActorStatus(
            "active" if self.is_active else "idle",
            self.mailbox_depth,
            self.in_flight_command_id,
            sessions,
        )

    def reserve(self) -> None:
        """Holds a mailbox slot for a command still being stored, or raises VehicleBusy: the
        decision to accept is taken at once, before the caller awaits anything, so requests
        racing for the last slot cannot all be let through."""
        self._refuse_when_full()
        self._reserved += 1

    def release(self) -> None:
        """Gives back a slot `reserve` held for a command that will not be queued."""
        self._reserved -= 1

    def _refuse_when_full(self) -> None:
        taken = self.mailbox_depth + self._reserved
        if taken >= self.mailbox_size:
            retry_after = max(1.0, taken * self._latency.mean_s)
            raise VehicleBusy(self.vehicle_id, self.mailbox_size, retry_after)

    def enqueue(self, envelope: Envelope, *, reserved: bool = False, bounded: bool = True) -> None:
        """Queues the command, in a slot `reserve` held when `reserved`, or raises
        VehicleBusy; never waits. Unless `bounded`, a full mailbox takes it anyway (a cluster
        node must run what another node accepted)."""
        runtime = self._runtime
        if reserved:
            self._reserved -= 1
        elif bounded:
            self._refuse_when_full()
        mailbox = self._mailbox
        if mailbox is None:
            mailbox = self._activate()
        mailbox.append(envelope)
        if self._task is None:
            task = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context()
            )
            self._task = task
            runtime.busy[self] = task

    def cancel_passivation(self) -> None:
        if self._passivation is not None:
            self._passivation.cancel()
            self._passivation = None

    def abort(self) -> None:
        """Cuts short the simulated wait in progress (used by a stop past its bound)."""
        if self._pause is not None and not self._pause.done():
            self._pause.set_result(None)

    def halt(self, command_id: UUID) -> HaltRequest:
        """The client stops one command: a running one ends at once with the command's stop
        reply, a queued one ends without running."""
        running = self._in_flight
        if running is not None and running.command_id == command_id:
            if running.command.stop is None:
                return "not_stoppable"
            self._halt = True
            self.abort()
            return "halting"
        if self._mailbox and any(e.command_id == command_id for e in self._mailbox):
            if self._halted_queued is None:
                self._halted_queued = set()
            self._halted_queued.add(command_id)
            return "dropped"
        return "unknown"

    def set_latency(self, latency: LatencyModel) -> None:
        """The network latency of the commands this vehicle starts from now on."""
        self._latency = latency

    def store_fault(self, ecu_address: int, uds_dtc: int, status: int) -> None:
        """The ECU at `ecu_address` detects a fault now, between commands (fault injection).
        Raises UnknownEcu for an address this vehicle lacks."""
        now = self._runtime.clock()
        state = self._state
        if state is None:
            state = self._state = materialize_state(self.identity, now)
        state.advance_to(now)
        state.record_fault(state.ecu(ecu_address), uds_dtc, status)

    def _activate(self) -> deque[Envelope]:
        mailbox: deque[Envelope] = deque()
        self._mailbox = mailbox
        self._runtime.active.add(self)
        logger.debug("actor_activated", vehicle_id=self.vehicle_id)
        return mailbox

    def _passivate(self) -> None:
        self._passivation = None
        if self._task is not None or self._mailbox:
            return
        self._mailbox = None
        self._runtime.active.discard(self)
        if self._state is not None:
            self._state.end_sessions()
        logger.debug("actor_passivated", vehicle_id=self.vehicle_id)

    async def _drain(self) -> None:
        runtime = self._runtime
        mailbox = self._mailbox
        # The task runs in a fresh context: what is bound here never leaks into a request.
        structlog.contextvars.bind_contextvars(vehicle_id=self.vehicle_id)
        # One concrete logger per turn: the module's lazy proxy costs a lookup per call.
        log: FilteringBoundLogger = logger.bind()
        try:
            while mailbox:
                envelope = mailbox.popleft()
                structlog.contextvars.bind_contextvars(
                    command_id=envelope.command_id, command_name=envelope.command.name
                )
                if runtime.aborting:
                    await self._report_finished(envelope, "timed_out", STOPPED_BEFORE_START, log)
                elif self._halted_queued and envelope.command_id in self._halted_queued:
                    self._halted_queued.discard(envelope.command_id)
                    await self._report_finished(envelope, "failed", HALTED_BEFORE_START, log)
                elif await self._admitted(envelope):
                    await self._run(envelope, log)
                else:
                    log.debug("command_dropped_unaccepted")
        finally:
            structlog.contextvars.clear_contextvars()
            self._task = None
            runtime.busy.pop(self, None)
            self._schedule_passivation()

    @staticmethod
    async def _admitted(envelope: Envelope) -> bool:
        """A command queued while its row is being stored runs at once when it only reads,
        and is dropped unread if that row is not stored; one that changes the vehicle waits
        until its client is told it is accepted, and never runs if it is not."""
        gate = envelope.gate
        if gate is None or not envelope.command.changes_state:
            return True
        return gate.result() if gate.done() else await asyncio.shield(gate)

    def _schedule_passivation(self) -> None:
        after = self._runtime.passivate_after_s
        if after is None or self._runtime.stopping:
            return
        if after <= 0:
            self._passivate()
            return
        # One timer per quiet spell, not one per drain: a busy actor re-arms it only when it
        # fires, for what is left of the spell since its last command.
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        if self._passivation is None:
            self._passivation = loop.call_later(after, self._passivation_due)

    def _passivation_due(self) -> None:
        self._passivation = None
        after = self._runtime.passivate_after_s
        if self._task is not None or self._mailbox or after is None:
            return  # busy: the end of its drain starts the quiet spell again
        loop = asyncio.get_running_loop()
        left = self._idle_since + after - loop.time()
        if left > 0:
            self._passivation = loop.call_later(left, self._passivation_due)
        else:
            self._passivate()

    async def _run(self, envelope: Envelope, log: FilteringBoundLogger) -> None:
        """One command: in_progress, the chunks, the terminal status. Every sink call is
        guarded on its own: a failing sink is logged and never stops the actor."""
        runtime = self._runtime
        sink = runtime.sink
        command_id, vehicle_id = envelope.command_id, self.vehicle_id
        self._in_flight = envelope
        self._halt = False
        try:
            started_at = runtime.clock()
            log.debug("command_started")
            try:
                await sink.command_started(command_id, vehicle_id, started_at)
            except Exception:
                log.exception("sink_failed", sink_call="command_started")
            try:
                status, error = await self._perform(envelope, started_at, log)
            except Exception:
                log.exception("handler_crashed")
                status, error = "failed", f"internal error while running {envelope.command.name}"
            await self._report_finished(envelope, status, error, log)
        finally:
            self._in_flight = None

    async def _perform(
        self, envelope: Envelope, now: datetime, log: FilteringBoundLogger
    ) -> Outcome:
        deadline = asyncio.get_running_loop().time() + self.command_deadline_s
        reachability = self.identity.connection_status
        if reachability == "disconnected":
            return await self._unreachable(deadline)
        state = self._state
        if state is None:
            try:
                state = self._state = await self._materialize(now)
            except Exception as exc:
                log.warning("vehicle_state_unreadable", error=str(exc))
                return "failed", f"{STATE_UNREADABLE}: {exc}"
        latency = self._latency.sample(state.rng)
        if latency > 0 or self._halt:
            cut_short = await self._wait_or_end(latency, deadline, envelope, state, 1, log)
            if cut_short is not None:
                return cut_short
            now = self._runtime.clock()
        if reachability == "intermittent":
            connectivity = self.identity.fleet.effective_connectivity
            if state.rng.random() < connectivity.intermittent_loss:
                return "failed", INTERMITTENT_LOSS
        return await self._answer(envelope, state, now, deadline, log)

    async def _answer(
        self,
        envelope: Envelope,
        state: VehicleState,
        now: datetime,
        deadline: float,
        log: FilteringBoundLogger,
    ) -> Outcome:
        """The registry's handler runs: each chunk is reported after its delay, until the
        final one."""
        loop = asyncio.get_running_loop()
        steps = run_command(envelope.command, envelope.params, state, now)
        for sequence, step in enumerate(steps, start=1):
            if isinstance(step, Chunk):
                delay = step.delay_s * self._runtime.time_scale
                if delay > 0 or self._halt:
                    cut_short = await self._wait_or_end(
                        delay, deadline, envelope, state, sequence, log
                    )
                    if cut_short is not None:
                        return cut_short
                await self._report_chunk(envelope, sequence, step.payload, step.is_final, log)
                if step.is_final:
                    return ("failed", step.error) if step.error else ("completed", None)
                if loop.time() >= deadline:
                    return self._interrupted("deadline")
            elif isinstance(step, NoAnswer):
                return self._interrupted(await self._wait(math.inf, deadline) or "deadline")
            else:
                return "failed", step.message
        return "failed", f"{envelope.command.name} ended without a final reply"

    async def _wait_or_end(
        self,
        seconds: float,
        deadline: float,
        envelope: Envelope,
        state: VehicleState,
        sequence: int,
        log: FilteringBoundLogger,
    ) -> Outcome | None:
        """Simulated time passing before chunk `sequence`; the command's outcome when the
        wait was cut short (by its deadline, the client's stop, the system stopping)."""
        interruption = await self._wait(seconds, deadline)
        if interruption == "halted":
            return await self._halted(envelope, state, sequence, log)
        if interruption:
            return self._interrupted(interruption)
        return None

    async def _report_chunk(
        self,
        envelope: Envelope,
        sequence: int,
        payload: dict[str, Any],
        is_final: bool,
        log: FilteringBoundLogger,
    ) -> None:
        try:
            await self._runtime.sink.command_chunk(
                envelope.command_id,
                self.vehicle_id,
                sequence,
                payload,
                is_final,
                self._runtime.clock(),
            )
        except Exception:
            log.exception("sink_failed", sink_call="command_chunk")

    async def _halted(
        self, envelope: Envelope, state: VehicleState, sequence: int, log: FilteringBoundLogger
    ) -> Outcome:
        """The client's stop: the command's stop reply is its final chunk, numbered
        `sequence`."""
        chunk = stop_command(envelope.command, envelope.params, state)
        if chunk is None:
            return "failed", HALT_REFUSED
        await self._report_chunk(envelope, sequence, chunk.payload, True, log)
        return "completed", None

    async def _materialize(self, now: datetime) -> VehicleState:
        """The vehicle as it was left (its stored state), or as its seed makes it."""
        load = self._runtime.load_state
        snapshot = await load(self.vehicle_id) if load is not None else None
        if snapshot is None:
            return materialize_state(self.identity, now)
        return restore_state(self.identity, snapshot, now)

    def forget_state(self) -> bool:
        """Drops the state in memory (another process may change it meanwhile), unless a
        command is running; the next command reads it back."""
        if self._task is not None:
            return False
        self._state = None
        return True

    async def _unreachable(self, deadline: float) -> Outcome:
        """A disconnected vehicle: fail at once, or wait for it until the deadline."""
        vin = self.identity.vin
        if self.identity.fleet.effective_connectivity.when_disconnected == "fail":
            return "failed", f"vehicle {vin} is disconnected: the command could not be delivered"
        if await self._wait(math.inf, deadline) == "stopped":
            return "timed_out", STOPPED_WHILE_RUNNING
        return (
            "timed_out",
            f"vehicle {vin} stayed disconnected: no reply within {self.command_deadline_s:g} s",
        )

    async def _wait(self, seconds: float, deadline: float) -> _Interruption | None:
        """Simulated time passing; says why it was cut short, if it was."""
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if self._halt:
            return "halted"
        if remaining > 0 and not self._runtime.aborting:
            pause = loop.create_future()
            timer = loop.call_later(min(seconds, remaining), _resolve, pause)
            self._pause = pause
            try:
                await pause
            finally:
                timer.cancel()
                self._pause = None
        if self._runtime.aborting:
            return "stopped"
        if self._halt:
            return "halted"
        if seconds >= remaining:
            return "deadline"
        return None

    def _interrupted(self, why: _Interruption) -> Outcome:
        if why == "stopped":
            return "timed_out", STOPPED_WHILE_RUNNING
        return "timed_out", f"no reply within {self.command_deadline_s:g} s"

    async def _report_finished(
        self,
        envelope: Envelope,
        status: TerminalStatus,
        error: str | None,
        log: FilteringBoundLogger,
    ) -> None:
        if status == "completed":
            log.debug("command_completed")
        elif status == "failed":
            log.info("command_failed", error_message=error)
        else:
            log.warning("command_timed_out", error_message=error)
        state = None
        if envelope.command.changes_state and self._state is not None:
            state = snapshot_of(self._state)
        try:
            await self._runtime.sink.command_finished(
                envelope.command_id, self.vehicle_id, status, error, self._runtime.clock(), state
            )
        except Exception:
            log.exception("sink_failed", sink_call="command_finished")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
