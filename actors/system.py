"""The actor system: every simulated vehicle, routing of commands, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from actors.actor import (
    ActorRuntime,
    ActorStatus,
    Envelope,
    HaltRequest,
    StateLoader,
    VehicleActor,
)
from actors.latency import DEFAULT_LATENCY, LatencyModel, latency_model
from actors.sink import CommandSink
from sovd.commands import COMMANDS
from sovd.errors import DuplicateVehicle, SystemStopping, UnknownVehicle
from sovd.fleet import FleetSpec, VehicleIdentity, build_fleet
from sovd.records import utc_now
from sovd.registry import CommandRegistry, CommandType
from sovd.uds import encode_dtc

logger = structlog.get_logger(__name__)


class ActorSystem:
    """Owns one `VehicleActor` per vehicle and routes commands to them.

    `submit` never waits: it queues the command or raises `UnknownVehicle`,
    `UnknownCommand`, `InvalidParams` (also for an ECU the vehicle lacks), `VehicleBusy`
    or `SystemStopping`. Everything that happens next is reported to `sink`.
    `time_scale` multiplies the simulated delays inside a command (the self-test's
    progress steps, a 0x78 responsePending); the latency model is in real seconds.
    """

    def __init__(
        self,
        sink: CommandSink,
        *,
        registry: CommandRegistry = COMMANDS,
        latency: LatencyModel = DEFAULT_LATENCY,
        mailbox_size: int = 64,
        command_deadline_s: float = 30.0,
        passivate_after_s: float | None = 300.0,
        time_scale: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        load_state: StateLoader | None = None,
    ) -> None:
        if mailbox_size < 1:
            raise ValueError("mailbox_size must be at least 1")
        if command_deadline_s <= 0:
            raise ValueError("command_deadline_s must be positive")
        if time_scale < 0:
            raise ValueError("time_scale must not be negative")
        self.registry = registry
        self.latency = latency
        self._runtime = ActorRuntime(
            sink,
            mailbox_size,
            command_deadline_s,
            passivate_after_s,
            time_scale,
            clock,
            load_state=load_state,
        )
        self._actors: dict[UUID, VehicleActor] = {}
        self._order: list[VehicleActor] = []

    def add_fleet(
        self,
        fleet: FleetSpec,
        *,
        latency: LatencyModel | None = None,
        identities: list[VehicleIdentity] | None = None,
    ) -> list[VehicleIdentity]:
        """Spawns the fleet's vehicles (all or none) and returns their identities;
        `identities` saves building them again when the caller has them already.

        Latency: `latency` if given, else the fleet's configured range, else the system's.
        """
        if latency is None and fleet.latency is not None:
            latency = latency_model(fleet.latency)
        if identities is None:
            identities = build_fleet(fleet)
        self.add_vehicles(identities, latency=latency)
        return identities

    def add_vehicles(
        self, identities: Iterable[VehicleIdentity], *, latency: LatencyModel | None = None
    ) -> None:
        runtime, model = self._runtime, latency or self.latency
        actors = [VehicleActor(identity, runtime, model) for identity in identities]
        added = {actor.identity.vehicle_id: actor for actor in actors}
        if len(added) != len(actors):
            seen: set[UUID] = set()
            for actor in actors:
                if actor.vehicle_id in seen:
                    raise DuplicateVehicle(actor.vehicle_id)
                seen.add(actor.vehicle_id)
        if self._actors and not self._actors.keys().isdisjoint(added):
            raise DuplicateVehicle(next(v for v in added if v in self._actors))
        self._actors.update(added)
        self._order.extend(actors)

    def remove_fleet(self, name: str) -> int:
        """Stops routing to the fleet's vehicles and returns how many there were; commands
        they are running or have queued still finish and are reported."""
        kept: list[VehicleActor] = []
        removed = 0
        for actor in self._order:
            if actor.identity.fleet.name == name:
                del self._actors[actor.identity.vehicle_id]
                removed += 1
            else:
                kept.append(actor)
        self._order = kept
        return removed

    def get(self, vehicle_id: UUID) -> VehicleActor:
        try:
            return self._actors[vehicle_id]
        except KeyError:
            raise UnknownVehicle(vehicle_id) from None

    def vehicles(self, offset: int = 0, limit: int | None = None) -> list[VehicleIdentity]:
        """A page of identities in the order they were added (stable)."""
        end = None if limit is None else offset + limit
        return [actor.identity for actor in self._order[offset:end]]

    def __contains__(self, vehicle_id: object) -> bool:
        return vehicle_id in self._actors

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[VehicleIdentity]:
        return (actor.identity for actor in self._order)

    def validate(self, vehicle_id: UUID, command_name: str, params: object) -> Any:
        """Checks a command without queuing it; returns the parsed params.

        For the HTTP layer, before it makes the command durable: everything `submit`
        checks except the mailbox, which can only be known at `submit`.
        """
        return self._resolve(vehicle_id, command_name, params)[2]

    def reserve(self, vehicle_id: UUID) -> None:
        """Holds a slot in the vehicle's mailbox (VehicleBusy when there is none) for a
        command about to be stored; `submit(..., reserved=True)` fills it, `release` frees it."""
        if self._runtime.stopping:
            raise SystemStopping()
        self.get(vehicle_id).reserve()

    def release(self, vehicle_id: UUID) -> None:
        if vehicle_id in self._actors:
            self._actors[vehicle_id].release()

    def submit(
        self,
        vehicle_id: UUID,
        command_id: UUID,
        command_name: str,
        params: object,
        *,
        reserved: bool = False,
        bounded: bool = True,
        gate: asyncio.Future[bool] | None = None,
    ) -> None:
        """Queues a command; `params` may be the wire dict or already parsed. With
        `reserved`, it takes the slot `reserve` held; if it raises, the slot is still held.
        Unless `bounded`, a full mailbox takes it anyway. With `gate`, the command is queued
        while its row is being stored (see VehicleActor._admitted)."""
        actor, command, parsed = self._resolve(vehicle_id, command_name, params)
        actor.enqueue(
            Envelope(command_id, command, parsed, gate), reserved=reserved, bounded=bounded
        )

    async def settle_vehicles(self, vehicle_ids: Collection[UUID], timeout_s: float) -> bool:
        """Waits until none of these vehicles has a command to run (True), or `timeout_s`
        passes (False); then drops the state in memory of those that are idle, so the next
        command reads it back from the store."""
        wanted = {self._actors[v] for v in vehicle_ids if v in self._actors}
        busy = [task for actor, task in self._runtime.busy.items() if actor in wanted]
        settled = True
        if busy:
            _, pending = await asyncio.wait(busy, timeout=timeout_s)
            settled = not pending
        for actor in wanted:
            actor.forget_state()
        return settled

    def _resolve(
        self, vehicle_id: UUID, command_name: str, params: object
    ) -> tuple[VehicleActor, CommandType[Any], Any]:
        if self._runtime.stopping:
            raise SystemStopping()
        actor = self.get(vehicle_id)
        command = self.registry.get(command_name)
        parsed = command.parse(params)
        command.check_target(parsed, actor.identity.profile)
        return actor, command, parsed

    def set_latency(self, latency: LatencyModel) -> None:
        """Every vehicle, fleets with a latency of their own included, waits `latency` before
        answering the commands it starts from now on; so do vehicles added later without a
        latency of their own."""
        self.latency = latency
        for actor in self._order:
            actor.set_latency(latency)

    def store_fault(
        self, vehicle_id: UUID, ecu_address: int, dtc_code: str, status: int = 0x2F
    ) -> None:
        """The vehicle's ECU detects the fault `dtc_code` (`P0420`) now, with UDS status
        byte `status`: fault injection for tests and demonstrations. Raises UnknownVehicle,
        UnknownEcu, or ValueError for a code that is not SAE J2012."""
        if not 0 <= status <= 0xFF:
            raise ValueError(f"a DTC status is one byte, got {status:#x}")
        self.get(vehicle_id).store_fault(ecu_address, encode_dtc(dtc_code), status)

    def halt(self, vehicle_id: UUID, command_id: UUID) -> HaltRequest:
        """Stops one of the vehicle's commands on its client's request (see VehicleActor.halt)."""
        return self.get(vehicle_id).halt(command_id)

    def actor_status(self, vehicle_id: UUID) -> ActorStatus:
        return self.get(vehicle_id).status()

    def busy_in_fleet(self, name: str) -> int:
        """The fleet's vehicles with a command running or queued."""
        return sum(1 for actor in self._runtime.busy if actor.identity.fleet.name == name)

    @property
    def active_count(self) -> int:
        """Actors holding a mailbox (activated, not yet passivated)."""
        return len(self._runtime.active)

    @property
    def busy_count(self) -> int:
        """Actors with a command running or queued."""
        return len(self._runtime.busy)

    @property
    def queued_count(self) -> int:
        return sum(actor.mailbox_depth for actor in self._runtime.busy)

    @property
    def is_stopping(self) -> bool:
        return self._runtime.stopping

    async def drain(self) -> None:
        """Returns once no actor has work left (commands submitted meanwhile included)."""
        busy = self._runtime.busy
        while busy:
            await asyncio.wait(list(busy.values()))

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a grace period
        """Stops accepting commands and lets queued ones finish for up to `timeout` s.

        Past the bound, the running commands end `timed_out` at once and the queued
        ones `timed_out` without running, so every accepted command gets a terminal
        status; only the sink's own calls can make this take longer.
        """
        runtime = self._runtime
        runtime.stopping = True
        logger.info("actor_system_stopping", busy=len(runtime.busy), timeout_s=timeout)
        if runtime.busy:
            _, pending = await asyncio.wait(list(runtime.busy.values()), timeout=timeout)
            if pending:
                runtime.aborting = True
                for actor in list(runtime.busy):
                    actor.abort()
                await self.drain()
        for actor in list(runtime.active):
            actor.cancel_passivation()
        logger.info("actor_system_stopped")
