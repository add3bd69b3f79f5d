"""Fleets in a running simulator: spawned all or nothing, listed, removed.

What a server runs at start: the fleets recorded in its store (by `sovd-sim fleet spawn`,
`POST /api/v1/fleets` or an earlier `serve --fleet`), then the `--fleet` file's fleets
(recorded too; they replace recorded fleets of the same name); and if that is nothing at
all, the built-in demo fleet, which is never recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import structlog
from attrs import field, frozen

from actors.system import ActorSystem
from db.repositories import DuplicateKey, FleetRecord, Store
from sovd.demo import demo_fleets
from sovd.errors import FleetBusy, FleetConflict, UnknownFleet
from sovd.fleet import FleetSpec, VehicleIdentity, build_fleet, first_shared_vin
from sovd.fleet_config import (
    ConfigProblem,
    FleetConfig,
    FleetPlan,
    InvalidFleetConfig,
    loads_fleet_config,
    parse_fleet_config,
)
from sovd.records import Vehicle, utc_now

log = structlog.get_logger(__name__)

Origin = Literal["demo", "file", "store", "api"]
DEMO_FLEET_NAMES = frozenset(spec.name for spec in demo_fleets())


@frozen
class RunningFleet:
    spec: FleetSpec
    origin: Origin
    spawned_at: datetime
    definition: dict[str, Any] | None = field(default=None, eq=False)
    # How many of its vehicles are connected, intermittent, disconnected (fixed per vehicle).
    connections: dict[str, int] = field(factory=dict, eq=False)

    @property
    def recorded(self) -> bool:
        return self.definition is not None


@frozen
class SpawnOutcome:
    fleet: RunningFleet
    created: bool


def read_fleet_file(path: str, default_seed: int = 0) -> FleetConfig:
    """The fleet config in the TOML file at `path`; InvalidFleetConfig names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = ConfigProblem("", f"cannot read the file: {exc.strerror or exc}")
        raise InvalidFleetConfig(path, [problem]) from None
    except UnicodeDecodeError:
        raise InvalidFleetConfig(path, [ConfigProblem("", "is not UTF-8 text")]) from None
    return loads_fleet_config(text, source=path, default_seed=default_seed)


def last_seen(identity: VehicleIdentity, now: datetime) -> datetime:
    """A disconnected vehicle was last seen 1-72 hours ago (the same for the same vehicle);
    the others just now."""
    if identity.connection_status != "disconnected":
        return now
    minutes = 60 + (identity.vehicle_id.int >> 32) % (71 * 60)
    return now - timedelta(minutes=minutes)


def vehicle_records(
    spec: FleetSpec, identities: Sequence[VehicleIdentity], now: datetime
) -> list[Vehicle]:
    """The store's rows for a fleet. They share one metadata dict, a third of what a row
    would cost with its own (100,000 vehicles live in the embedded store too)."""
    metadata = {"fleet": spec.name, "profile": spec.profile.name}
    make, model, name = spec.profile.make, spec.profile.model, spec.name
    return [
        Vehicle(
            identity.vehicle_id,
            identity.vin,
            make,
            model,
            identity.year,
            identity.connection_status,
            last_seen(identity, now),
            name,
            metadata,
        )
        for identity in identities
    ]


BuiltFleet = tuple[FleetPlan, list[VehicleIdentity]]


async def record_fleets(store: Store, built: Sequence[BuiltFleet], now: datetime) -> None:
    """Records the fleets and stores exactly their vehicles, in one transaction; a VIN that
    belongs to a vehicle of another fleet is a FleetConflict and writes nothing."""
    fleets = [
        FleetRecord(plan.spec.name, plan.definition, plan.spec.count, now, now) for plan, _ in built
    ]
    rows = [row for plan, ids in built for row in vehicle_records(plan.spec, ids, now)]
    try:
        await store.fleets.save(fleets, rows)
    except DuplicateKey as exc:
        raise FleetConflict(f"a VIN of these fleets belongs to another vehicle: {exc}") from None


class FleetService:
    def __init__(
        self, store: Store, actors: ActorSystem, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._actors = actors
        self._clock = clock
        self._running: dict[str, RunningFleet] = {}
        # One change at a time: two requests spawning one fleet must not both add it.
        self._changing = asyncio.Lock()

    def running(self) -> list[RunningFleet]:
        return list(self._running.values())

    def get(self, name: str) -> RunningFleet:
        fleet = self._running.get(name)
        if fleet is None:
            raise UnknownFleet(name)
        return fleet

    async def recorded(self) -> list[FleetRecord]:
        return await self._store.fleets.list()

    async def start(self, file_config: FleetConfig | None, seed: int) -> None:
        """Spawns what a server runs at start (see the module's doc). A file's fleet that
        is recorded with the same definition already is taken as it is: a restart with
        `--fleet` does not rewrite 100,000 rows."""
        from_file = {plan.spec.name: plan for plan in file_config.plans} if file_config else {}
        for record in await self._store.fleets.list():
            plan = from_file.get(record.name)
            if plan is not None and plan.definition != record.definition:
                continue
            self._resume(record, "store" if plan is None else "file")
        if file_config is not None:
            await self.spawn(file_config, "file")
        if not self._running:
            await self.spawn_unrecorded(demo_fleets(seed), "demo")
            return
        for name in DEMO_FLEET_NAMES - self._running.keys():
            retired = await self._store.vehicles.delete_fleet(name)
            if retired:
                log.info("demo_fleet_retired", fleet=name, vehicles=retired)

    def _resume(self, record: FleetRecord, origin: Origin) -> None:
        try:
            config = parse_fleet_config(record.definition, source=f"recorded fleet {record.name!r}")
        except InvalidFleetConfig as exc:
            log.error("recorded_fleet_invalid", fleet=record.name, problems=exc.lines())
            return
        for recorded in config.plans:
            spec = recorded.spec
            self._adopt(spec, build_fleet(spec), origin, recorded.definition)
            log.info("fleet_resumed", fleet=spec.name, vehicles=spec.count, origin=origin)

    async def sync_recorded(self) -> None:
        """Cluster mode: takes up the fleets other nodes recorded since, and drops the ones
        they removed (once their vehicles are idle), so every node routes every vehicle."""
        async with self._changing:
            records = {record.name: record for record in await self._store.fleets.list()}
            for name, running in list(self._running.items()):
                record = records.get(name)
                outdated = record is None or record.definition != running.definition
                if running.recorded and outdated and not self._actors.busy_in_fleet(name):
                    self._actors.remove_fleet(name)
                    del self._running[name]
                    log.info("fleet_dropped", fleet=name, reason="changed by another node")
            for name, record in records.items():
                if name not in self._running:
                    self._resume(record, "store")

    async def spawn(self, config: FleetConfig, origin: Origin) -> list[SpawnOutcome]:
        """Spawns and records the config's fleets, all or none.

        A fleet already running with the same definition is left as it is (re-spawning
        is idempotent); one running with another definition is a FleetConflict.
        """
        async with self._changing:
            return await self._spawn(config.plans, origin, record=True)

    async def spawn_unrecorded(self, specs: Iterable[FleetSpec], origin: Origin) -> int:
        """Spawns fleets the store keeps the vehicles of but not the fleet (the demo)."""
        plans = [FleetPlan(spec, {}) for spec in specs]
        async with self._changing:
            outcomes = await self._spawn(plans, origin, record=False)
        return sum(o.fleet.spec.count for o in outcomes if o.created)

    async def _spawn(
        self, plans: Sequence[FleetPlan], origin: Origin, *, record: bool
    ) -> list[SpawnOutcome]:
        outcomes: list[SpawnOutcome] = []
        fresh: list[FleetPlan] = []
        for plan in plans:
            held = self._running.get(plan.spec.name)
            if held is None:
                fresh.append(plan)
            elif held.spec == plan.spec:
                outcomes.append(SpawnOutcome(held, created=False))
            else:
                raise FleetConflict(
                    f"fleet {plan.spec.name!r} is running with another definition; "
                    "delete it first (DELETE /api/v1/fleets/NAME)"
                )
        for plan in fresh:
            for other in self._running.values():
                vin = first_shared_vin(other.spec, plan.spec)
                if vin is not None:
                    raise FleetConflict(
                        f"fleet {plan.spec.name!r} would have VIN {vin}, which belongs to "
                        f"fleet {other.spec.name!r}: give it another vin_prefix"
                    )
        now = self._clock()
        built = [(plan, build_fleet(plan.spec)) for plan in fresh]
        if record and built:
            await record_fleets(self._store, built, now)
        elif built:
            rows = [row for plan, ids in built for row in vehicle_records(plan.spec, ids, now)]
            try:
                await self._store.vehicles.upsert_many(rows)
            except DuplicateKey as exc:
                raise FleetConflict(f"a VIN belongs to another vehicle: {exc}") from None
        for plan, identities in built:
            running = self._adopt(
                plan.spec, identities, origin, plan.definition if record else None
            )
            outcomes.append(SpawnOutcome(running, created=True))
            log.info("fleet_spawned", fleet=plan.spec.name, vehicles=plan.spec.count, origin=origin)
        return outcomes

    def _adopt(
        self,
        spec: FleetSpec,
        identities: list[VehicleIdentity],
        origin: Origin,
        definition: dict[str, Any] | None,
    ) -> RunningFleet:
        self._actors.add_fleet(spec, identities=identities)
        connections: Counter[str] = Counter(identity.connection_status for identity in identities)
        running = RunningFleet(spec, origin, self._clock(), definition, dict(connections))
        self._running[spec.name] = running
        return running

    async def remove(self, name: str) -> int:
        """Stops the fleet, forgets its record and deletes its vehicles; returns how many.

        Refused (FleetBusy) while its vehicles have commands to finish. A fleet that is
        recorded but not running (spawned by the CLI for the next start) goes too.
        """
        async with self._changing:
            return await self._remove(name)

    async def _remove(self, name: str) -> int:
        running = self._running.get(name)
        if running is None:
            if not any(record.name == name for record in await self._store.fleets.list()):
                raise UnknownFleet(name)
            return await self._store.fleets.delete(name)
        busy = self._actors.busy_in_fleet(name)
        if busy:
            raise FleetBusy(name, busy)
        # Routing stops first, so no new command can reach a vehicle whose row is going.
        self._actors.remove_fleet(name)
        del self._running[name]
        try:
            removed = await self._store.fleets.delete(name)
        except Exception:
            self._adopt(running.spec, build_fleet(running.spec), running.origin, running.definition)
            raise
        log.info("fleet_removed", fleet=name, vehicles=removed)
        return removed
