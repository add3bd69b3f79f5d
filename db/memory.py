"""The embedded default store: plain dicts in this process, gone when it stops."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import attrs

from db.repositories import (
    AuditFilter,
    CommandFilter,
    DuplicateKey,
    Fences,
    FleetRecord,
    IdempotencyRecord,
    SovdLock,
    StaleFence,
    StoredState,
    VehicleFilter,
    WriteBatch,
)
from sovd.partitions import partition_of
from sovd.records import (
    AuditEntry,
    Command,
    CommandStatus,
    Page,
    RefreshSession,
    Response,
    User,
    Vehicle,
)

T = TypeVar("T")
_ABSENT = object()


def _page(rows: list[T], keep: Callable[[T], bool] | None, limit: int, offset: int) -> Page[T]:
    """The rows `keep` keeps (all without it), counted, and the page of them asked for."""
    matching = rows if keep is None else [row for row in rows if keep(row)]
    return Page(items=matching[offset : offset + limit], total=len(matching))


class MemoryUsers:
    def __init__(self) -> None:
        self._by_id: dict[UUID, User] = {}
        self._by_name: dict[str, User] = {}

    async def add(self, user: User) -> None:
        if user.username in self._by_name or user.user_id in self._by_id:
            raise DuplicateKey(f"user {user.username!r} exists")
        self._by_id[user.user_id] = user
        self._by_name[user.username] = user

    async def get(self, user_id: UUID) -> User | None:
        return self._by_id.get(user_id)

    async def get_by_username(self, username: str) -> User | None:
        return self._by_name.get(username)

    async def count(self) -> int:
        return len(self._by_id)


class MemorySessions:
    def __init__(self) -> None:
        self._by_id: dict[UUID, RefreshSession] = {}
        self._by_hash: dict[str, UUID] = {}
        self._by_family: dict[UUID, list[UUID]] = {}
        self._revoked_families: set[UUID] = set()

    async def add(self, session: RefreshSession) -> None:
        if session.refresh_token_hash in self._by_hash:
            raise DuplicateKey("refresh token exists")
        self._by_id[session.session_id] = session
        self._by_hash[session.refresh_token_hash] = session.session_id
        self._by_family.setdefault(session.family_id, []).append(session.session_id)
        if session.revoked_at is not None:
            self._revoked_families.add(session.family_id)

    async def get(self, session_id: UUID) -> RefreshSession | None:
        return self._by_id.get(session_id)

    async def get_by_token_hash(self, token_hash: str) -> RefreshSession | None:
        session_id = self._by_hash.get(token_hash)
        return None if session_id is None else self._by_id[session_id]

    async def mark_rotated(self, session_id: UUID, at: datetime) -> bool:
        session = self._by_id.get(session_id)
        if session is None or session.rotated_at or session.revoked_at:
            return False
        self._by_id[session_id] = attrs.evolve(session, rotated_at=at)
        return True

    async def revoke_family(self, family_id: UUID, at: datetime) -> int:
        revoked = 0
        for session_id in self._by_family.get(family_id, ()):
            session = self._by_id[session_id]
            if session.revoked_at is None:
                self._by_id[session_id] = attrs.evolve(session, revoked_at=at)
                revoked += 1
        if revoked:
            self._revoked_families.add(family_id)
        return revoked

    async def is_family_revoked(self, family_id: UUID) -> bool:
        """Checked on every authenticated request, hence the set."""
        return family_id in self._revoked_families

    async def revoked_families(self, family_ids: Sequence[UUID]) -> set[UUID]:
        return self._revoked_families.intersection(family_ids)


def _same_but_seen(one: Vehicle, other: Vehicle) -> bool:
    return attrs.evolve(one, last_seen_at=other.last_seen_at) == other


class MemoryVehicles:
    """Vehicles by id, plus sorted views (by VIN, per status and fleet) built on first use
    after a change, so listing a page of 100,000 vehicles does not scan them all."""

    def __init__(self, on_removed: Callable[[Collection[UUID]], None] | None = None) -> None:
        self._by_id: dict[UUID, Vehicle] = {}
        self._views: dict[tuple[str | None, str | None], list[Vehicle]] = {}
        # Told which vehicles went, so rows naming them go too (ON DELETE CASCADE in PostgreSQL).
        self._on_removed = on_removed or (lambda ids: None)

    async def upsert_many(self, vehicles: Sequence[Vehicle]) -> int:
        self._store_all(vehicles, replacing=frozenset())
        return len(vehicles)

    def replace_fleets(self, fleets: frozenset[str], vehicles: Sequence[Vehicle]) -> None:
        """The rows of `fleets` become exactly `vehicles`; DuplicateKey changes nothing.
        As in PostgreSQL, a row that differs in `last_seen_at` only is left as it is."""
        held = self._by_id
        vehicles = [
            kept if kept is not None and _same_but_seen(kept, vehicle) else vehicle
            for vehicle in vehicles
            for kept in (held.get(vehicle.vehicle_id),)
        ]
        self._store_all(vehicles, replacing=fleets)

    def _store_all(self, vehicles: Sequence[Vehicle], replacing: frozenset[str]) -> None:
        by_vin = {v.vin: v.vehicle_id for v in self._by_id.values() if v.fleet not in replacing}
        for vehicle in vehicles:
            owner = by_vin.setdefault(vehicle.vin, vehicle.vehicle_id)
            if owner != vehicle.vehicle_id:
                raise DuplicateKey(f"VIN {vehicle.vin} belongs to vehicle {owner}")
        if replacing:
            doomed = [vid for vid, v in self._by_id.items() if v.fleet in replacing]
            for vehicle_id in doomed:
                del self._by_id[vehicle_id]
            kept = {vehicle.vehicle_id for vehicle in vehicles}
            self._on_removed([vid for vid in doomed if vid not in kept])
        for vehicle in vehicles:
            self._by_id[vehicle.vehicle_id] = vehicle
        self._views.clear()

    async def get(self, vehicle_id: UUID) -> Vehicle | None:
        return self._by_id.get(vehicle_id)

    def _view(self, status: str | None, fleet: str | None) -> list[Vehicle]:
        view = self._views.get((status, fleet))
        if view is None:
            everything = self._views.get((None, None))
            if everything is None:
                everything = sorted(self._by_id.values(), key=lambda v: v.vin)
                self._views[(None, None)] = everything
            view = [
                v
                for v in everything
                if (status is None or v.connection_status == status)
                and (fleet is None or v.fleet == fleet)
            ]
            self._views[(status, fleet)] = view
        return view

    async def list(self, query: VehicleFilter) -> Page[Vehicle]:
        search = query.search.upper() if query.search else None
        keep = None if search is None else lambda v: search in v.vin
        return _page(self._view(query.status, query.fleet), keep, query.limit, query.offset)

    async def delete_fleet(self, fleet: str) -> int:
        doomed = [vid for vid, v in self._by_id.items() if v.fleet == fleet]
        for vid in doomed:
            del self._by_id[vid]
        self._views.clear()
        self._on_removed(doomed)
        return len(doomed)


class MemoryFleets:
    def __init__(self, vehicles: MemoryVehicles) -> None:
        self._vehicles = vehicles
        self._by_name: dict[str, FleetRecord] = {}

    async def save(self, fleets: Sequence[FleetRecord], vehicles: Sequence[Vehicle]) -> None:
        self._vehicles.replace_fleets(frozenset(f.name for f in fleets), vehicles)
        for fleet in fleets:
            held = self._by_name.get(fleet.name)
            if held is not None:
                fleet = attrs.evolve(fleet, created_at=held.created_at)
            self._by_name[fleet.name] = fleet

    async def list(self) -> builtins.list[FleetRecord]:
        return sorted(self._by_name.values(), key=lambda f: (f.created_at, f.name))

    async def delete(self, name: str) -> int:
        self._by_name.pop(name, None)
        return await self._vehicles.delete_fleet(name)


class MemoryCommands:
    def __init__(self) -> None:
        self._by_id: dict[UUID, Command] = {}
        self._idempotency: dict[tuple[UUID, str], IdempotencyRecord] = {}
        self._dismissed: dict[UUID, datetime] = {}

    async def add(self, command: Command) -> None:
        if command.command_id in self._by_id:
            raise DuplicateKey(f"command {command.command_id} exists")
        self._by_id[command.command_id] = command

    async def get(self, command_id: UUID) -> Command | None:
        return self._by_id.get(command_id)

    async def list(self, query: CommandFilter) -> Page[Command]:
        def keep(c: Command) -> bool:
            return (
                (query.vehicle_id is None or c.vehicle_id == query.vehicle_id)
                and (query.user_id is None or c.user_id == query.user_id)
                and (query.status is None or c.status == query.status)
                and (query.start_date is None or c.submitted_at >= query.start_date)
                and (query.end_date is None or c.submitted_at <= query.end_date)
            )

        newest_first = sorted(
            self._by_id.values(), key=lambda c: (c.submitted_at, c.command_id.bytes), reverse=True
        )
        return _page(newest_first, keep, query.limit, query.offset)

    async def set_status(
        self,
        command_id: UUID,
        status: CommandStatus,
        *,
        error_message: str | None = None,
        completed_at: datetime | None = None,
    ) -> bool:
        command = self._by_id.get(command_id)
        if command is None:
            return False
        self._by_id[command_id] = attrs.evolve(
            command, status=status, error_message=error_message, completed_at=completed_at
        )
        return True

    async def add_idempotent(
        self, command: Command, key: str, request_hash: str
    ) -> IdempotencyRecord | None:
        held = self._idempotency.get((command.user_id, key))
        if held is not None:
            return held
        await self.add(command)
        self._idempotency[(command.user_id, key)] = IdempotencyRecord(
            request_hash, command.command_id
        )
        return None

    async def find_idempotent(self, user_id: UUID, key: str) -> IdempotencyRecord | None:
        return self._idempotency.get((user_id, key))

    async def list_unfinished(
        self, partition: int | None = None, partitions: int = 1
    ) -> builtins.list[Command]:
        unfinished = [
            c
            for c in self._by_id.values()
            if c.status in ("pending", "in_progress")
            and (partition is None or partition_of(c.vehicle_id, partitions) == partition)
        ]
        return sorted(unfinished, key=lambda c: c.submitted_at)

    async def list_pending_before(self, before: datetime) -> builtins.list[Command]:
        pending = [
            c for c in self._by_id.values() if c.status == "pending" and c.submitted_at < before
        ]
        return sorted(pending, key=lambda c: c.submitted_at)

    async def list_matching(
        self,
        vehicle_id: UUID,
        command_name: str,
        params: Mapping[str, Any],
        since: datetime,
        limit: int,
    ) -> builtins.list[Command]:
        matching = [
            c
            for c in self._by_id.values()
            if c.vehicle_id == vehicle_id
            and c.command_name == command_name
            and c.submitted_at >= since
            and c.command_id not in self._dismissed
            and all(c.command_params.get(k, _ABSENT) == v for k, v in params.items())
        ]
        matching.sort(key=lambda c: (c.submitted_at, c.command_id.bytes), reverse=True)
        return matching[:limit]

    async def dismiss(self, command_id: UUID, at: datetime) -> bool:
        if command_id not in self._by_id or command_id in self._dismissed:
            return False
        self._dismissed[command_id] = at
        return True

    async def is_dismissed(self, command_id: UUID) -> bool:
        return command_id in self._dismissed


class MemoryResponses:
    def __init__(self) -> None:
        self._by_command: dict[UUID, list[Response]] = {}

    async def add_many(self, responses: Sequence[Response]) -> None:
        for response in responses:
            stored = self._by_command.setdefault(response.command_id, [])
            if any(r.sequence_number == response.sequence_number for r in stored):
                raise DuplicateKey(
                    f"response {response.sequence_number} of {response.command_id} exists"
                )
            stored.append(response)
            stored.sort(key=lambda r: r.sequence_number)

    async def list_for_command(self, command_id: UUID) -> list[Response]:
        return list(self._by_command.get(command_id, ()))


class MemoryAudit:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def add_many(self, entries: Sequence[AuditEntry]) -> None:
        self._entries.extend(entries)

    async def list(self, query: AuditFilter) -> Page[AuditEntry]:
        def keep(e: AuditEntry) -> bool:
            return (query.action is None or e.action == query.action) and (
                query.user_id is None or e.user_id == query.user_id
            )

        newest_first = sorted(self._entries, key=lambda e: e.timestamp, reverse=True)
        return _page(newest_first, keep, query.limit, query.offset)


class MemoryLocks:
    def __init__(self) -> None:
        self._by_entity: dict[tuple[UUID, str], SovdLock] = {}
        self._entity_of: dict[UUID, tuple[UUID, str]] = {}

    def _live(self, key: tuple[UUID, str] | None, now: datetime) -> SovdLock | None:
        lock = None if key is None else self._by_entity.get(key)
        return lock if lock is not None and lock.expires_at > now else None

    def _put(self, lock: SovdLock) -> None:
        key = (lock.vehicle_id, lock.entity)
        replaced = self._by_entity.get(key)
        if replaced is not None:
            del self._entity_of[replaced.lock_id]
        self._by_entity[key] = lock
        self._entity_of[lock.lock_id] = key

    def _remove(self, lock: SovdLock) -> None:
        del self._by_entity[(lock.vehicle_id, lock.entity)]
        del self._entity_of[lock.lock_id]

    async def acquire(
        self, lock: SovdLock, now: datetime, *, break_lock: bool = False
    ) -> SovdLock | None:
        held = self._live((lock.vehicle_id, lock.entity), now)
        if held is not None and held.owner_id != lock.owner_id and not break_lock:
            return None
        if held is not None and held.owner_id == lock.owner_id:
            lock = attrs.evolve(lock, lock_id=held.lock_id)
        self._put(lock)
        return lock

    async def get(self, vehicle_id: UUID, lock_id: UUID, now: datetime) -> SovdLock | None:
        lock = self._live(self._entity_of.get(lock_id), now)
        return lock if lock is not None and lock.vehicle_id == vehicle_id else None

    async def held(
        self, vehicle_id: UUID, entities: Sequence[str], now: datetime
    ) -> builtins.list[SovdLock]:
        found = (self._live((vehicle_id, entity), now) for entity in sorted(set(entities)))
        return [lock for lock in found if lock is not None]

    async def extend(
        self, vehicle_id: UUID, lock_id: UUID, owner_id: UUID, expires_at: datetime, now: datetime
    ) -> bool:
        lock = await self.get(vehicle_id, lock_id, now)
        if lock is None or lock.owner_id != owner_id:
            return False
        self._put(attrs.evolve(lock, expires_at=expires_at))
        return True

    async def release(
        self, vehicle_id: UUID, lock_id: UUID, now: datetime, owner_id: UUID | None = None
    ) -> bool:
        lock = await self.get(vehicle_id, lock_id, now)
        if lock is None or (owner_id is not None and lock.owner_id != owner_id):
            return False
        self._remove(lock)
        return True

    def forget_vehicles(self, vehicle_ids: Collection[UUID]) -> None:
        gone = set(vehicle_ids)
        for lock in [lock for key, lock in self._by_entity.items() if key[0] in gone]:
            self._remove(lock)


class MemoryVehicleStates:
    def __init__(self) -> None:
        self._states: dict[UUID, dict[str, Any]] = {}

    async def get(self, vehicle_id: UUID) -> dict[str, Any] | None:
        return (await self.get_many([vehicle_id])).get(vehicle_id)

    async def get_many(self, vehicle_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
        return {v: self._states[v] for v in vehicle_ids if v in self._states}

    def put(self, states: Sequence[StoredState]) -> None:
        for stored in states:
            self._states[stored.vehicle_id] = stored.state

    def forget_vehicles(self, vehicle_ids: Collection[UUID]) -> None:
        for vehicle_id in vehicle_ids:
            self._states.pop(vehicle_id, None)


class MemoryStore:
    kind = "memory"

    def __init__(self) -> None:
        self.users = MemoryUsers()
        self.sessions = MemorySessions()
        self.locks = MemoryLocks()
        self.vehicle_states = MemoryVehicleStates()
        self.vehicles = MemoryVehicles(on_removed=self._forget_vehicles)
        self._fences: dict[int, int] = {}
        self.fleets = MemoryFleets(self.vehicles)
        self.commands = MemoryCommands()
        self.responses = MemoryResponses()
        self.audit = MemoryAudit()

    def _forget_vehicles(self, vehicle_ids: Collection[UUID]) -> None:
        self.locks.forget_vehicles(vehicle_ids)
        self.vehicle_states.forget_vehicles(vehicle_ids)

    async def ping(self) -> None:
        return None

    async def claim_partition(self, partition: int, token: int) -> bool:
        if self._fences.get(partition, -1) >= token:
            return False
        self._fences[partition] = token
        return True

    async def partition_fence(self, partition: int) -> int:
        return self._fences.get(partition, 0)

    async def write_batch(self, batch: WriteBatch, fences: Fences | None = None) -> None:
        """All or nothing, like the PostgreSQL transaction: constraints are checked first."""
        stale = [p for p, token in (fences or {}).items() if self._fences.get(p) != token]
        if stale:
            raise StaleFence(stale)
        new_ids: set[UUID] = set()
        for command in batch.new_commands:
            if command.command_id in new_ids or await self.commands.get(command.command_id):
                raise DuplicateKey(f"command {command.command_id} exists")
            new_ids.add(command.command_id)
        new_chunks: set[tuple[UUID, int]] = set()
        for response in batch.responses:
            chunk = (response.command_id, response.sequence_number)
            stored = await self.responses.list_for_command(response.command_id)
            if chunk in new_chunks or any(r.sequence_number == chunk[1] for r in stored):
                raise DuplicateKey(f"response {chunk[1]} of {chunk[0]} exists")
            if chunk[0] not in new_ids and await self.commands.get(chunk[0]) is None:
                raise LookupError(f"response for unknown command {chunk[0]}")
            new_chunks.add(chunk)
        for command in batch.new_commands:
            await self.commands.add(command)
        for change in batch.status_changes:
            await self.commands.set_status(
                change.command_id,
                change.status,
                error_message=change.error_message,
                completed_at=change.completed_at,
            )
        await self.responses.add_many(batch.responses)
        await self.audit.add_many(batch.audit)
        self.vehicle_states.put(batch.vehicle_states)

    async def close(self) -> None:
        return None
