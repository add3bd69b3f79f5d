"""The store's interfaces: one repository per table, two implementations (memory, PostgreSQL)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from attrs import frozen

from sovd.records import (
    AuditEntry,
    Command,
    CommandStatus,
    ConnectionStatus,
    Page,
    RefreshSession,
    Response,
    User,
    Vehicle,
)


class StoreUnavailable(Exception):
    """The backing store cannot be reached; the API answers 503."""


class DuplicateKey(Exception):
    """A row with the same unique key exists."""


class StaleFence(Exception):
    """A batch carried the fencing token of a partition owner that has been replaced; nothing
    of it was written."""

    def __init__(self, partitions: Sequence[int]) -> None:
        super().__init__(f"stale fencing token for partitions {sorted(partitions)}")
        self.partitions = frozenset(partitions)


# Partition -> the fencing token its rows were produced under.
Fences = Mapping[int, int]


@frozen
class StatusChange:
    command_id: UUID
    status: CommandStatus
    error_message: str | None = None
    completed_at: datetime | None = None


@frozen
class StoredState:
    """A vehicle's state as a command left it (a sovd.persisted snapshot)."""

    vehicle_id: UUID
    state: dict[str, Any]
    updated_at: datetime


@frozen
class WriteBatch:
    """Rows of many commands committed together (group commit), applied in this order; of
    several states of one vehicle, the last is kept."""

    new_commands: Sequence[Command] = ()
    status_changes: Sequence[StatusChange] = ()
    responses: Sequence[Response] = ()
    audit: Sequence[AuditEntry] = ()
    vehicle_states: Sequence[StoredState] = ()

    def __len__(self) -> int:
        return (
            len(self.new_commands)
            + len(self.status_changes)
            + len(self.responses)
            + len(self.audit)
            + len(self.vehicle_states)
        )


@frozen
class IdempotencyRecord:
    request_hash: str
    command_id: UUID


@frozen
class VehicleFilter:
    status: ConnectionStatus | None = None
    search: str | None = None
    fleet: str | None = None
    limit: int = 100
    offset: int = 0


@frozen
class FleetRecord:
    """A spawned fleet as the store keeps it; `definition` is a fleet config document
    holding this fleet alone (see sovd.fleet_config), enough to spawn it again."""

    name: str
    definition: dict[str, Any]
    vehicle_count: int
    created_at: datetime
    updated_at: datetime


@frozen
class SovdLock:
    """A client's lock on one SOVD entity of a vehicle (`entity`: "vehicle" or
    "components/<id>"), held until `expires_at`; past it, the lock is as if it did not exist."""

    lock_id: UUID
    vehicle_id: UUID
    entity: str
    owner_id: UUID
    expires_at: datetime


@frozen
class CommandFilter:
    vehicle_id: UUID | None = None
    user_id: UUID | None = None
    status: CommandStatus | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    limit: int = 50
    offset: int = 0


@frozen
class AuditFilter:
    action: str | None = None
    user_id: UUID | None = None
    limit: int = 100
    offset: int = 0


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...
    async def get(self, user_id: UUID) -> User | None: ...
    async def get_by_username(self, username: str) -> User | None: ...
    async def count(self) -> int: ...


class SessionRepository(Protocol):
    async def add(self, session: RefreshSession) -> None: ...
    async def get(self, session_id: UUID) -> RefreshSession | None: ...
    async def get_by_token_hash(self, token_hash: str) -> RefreshSession | None: ...
    async def mark_rotated(self, session_id: UUID, at: datetime) -> bool:
        """Marks an unrotated, unrevoked session rotated; False when it already was."""
        ...

    async def revoke_family(self, family_id: UUID, at: datetime) -> int: ...
    async def is_family_revoked(self, family_id: UUID) -> bool: ...
    async def revoked_families(self, family_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these login families are revoked, in one lookup."""
        ...


class VehicleRepository(Protocol):
    async def upsert_many(self, vehicles: Sequence[Vehicle]) -> int: ...
    async def get(self, vehicle_id: UUID) -> Vehicle | None: ...
    async def list(self, query: VehicleFilter) -> Page[Vehicle]: ...
    async def delete_fleet(self, fleet: str) -> int: ...


class FleetRepository(Protocol):
    async def save(self, fleets: Sequence[FleetRecord], vehicles: Sequence[Vehicle]) -> None:
        """Records the fleets and makes each one's vehicle rows exactly the `vehicles` of
        that fleet, all in one transaction: rows the fleet no longer has are deleted, the
        rest inserted or updated. DuplicateKey (nothing written) when a VIN belongs to a
        vehicle of another fleet."""
        ...

    async def list(self) -> builtins.list[FleetRecord]:
        """Recorded fleets, oldest first."""
        ...

    async def delete(self, name: str) -> int:
        """Forgets the fleet and deletes its vehicle rows (their commands go with them);
        returns how many vehicles went. Also for fleets that were never recorded."""
        ...


class CommandRepository(Protocol):
    async def add(self, command: Command) -> None: ...
    async def get(self, command_id: UUID) -> Command | None: ...
    async def list(self, query: CommandFilter) -> Page[Command]: ...
    async def set_status(
        self,
        command_id: UUID,
        status: CommandStatus,
        *,
        error_message: str | None = None,
        completed_at: datetime | None = None,
    ) -> bool: ...

    async def add_idempotent(
        self, command: Command, key: str, request_hash: str
    ) -> IdempotencyRecord | None:
        """Stores the command under the user's key, or returns what the key already holds."""
        ...

    async def find_idempotent(self, user_id: UUID, key: str) -> IdempotencyRecord | None: ...

    async def list_unfinished(
        self, partition: int | None = None, partitions: int = 1
    ) -> builtins.list[Command]:
        """Commands not yet completed, failed or timed out, oldest first; of one partition's
        vehicles (out of `partitions`, see sovd.partitions) when `partition` is given."""
        ...

    async def list_pending_before(self, before: datetime) -> builtins.list[Command]:
        """Commands still `pending` that were submitted before `before`, oldest first."""
        ...

    async def list_matching(
        self,
        vehicle_id: UUID,
        command_name: str,
        params: Mapping[str, Any],
        since: datetime,
        limit: int,
    ) -> builtins.list[Command]:
        """The vehicle's `command_name` commands whose params hold every member of `params`
        (equal values), submitted at or after `since`, newest first, at most `limit`; the
        dismissed ones are left out."""
        ...

    async def dismiss(self, command_id: UUID, at: datetime) -> bool:
        """Marks the command dismissed (its SOVD execution was deleted); False when there is
        no such command or it was dismissed before."""
        ...

    async def is_dismissed(self, command_id: UUID) -> bool: ...


class ResponseRepository(Protocol):
    async def add_many(self, responses: Sequence[Response]) -> None: ...
    async def list_for_command(self, command_id: UUID) -> list[Response]: ...


class AuditRepository(Protocol):
    async def add_many(self, entries: Sequence[AuditEntry]) -> None: ...
    async def list(self, query: AuditFilter) -> Page[AuditEntry]: ...


class LockRepository(Protocol):
    """At most one lock per (vehicle, entity). Every method takes the current time, so an
    expired lock is ignored (and replaced) without a timer."""

    async def acquire(
        self, lock: SovdLock, now: datetime, *, break_lock: bool = False
    ) -> SovdLock | None:
        """Gives `lock.owner_id` the entity's lock until `lock.expires_at`, in one atomic
        step; None (nothing changed) when another owner holds an unexpired lock on it,
        unless `break_lock`. The owner's own unexpired lock keeps its id and takes the new
        expiry; any other acquisition stores `lock.lock_id`. Returns the lock as stored."""
        ...

    async def get(self, vehicle_id: UUID, lock_id: UUID, now: datetime) -> SovdLock | None:
        """The unexpired lock with this id on this vehicle."""
        ...

    async def held(
        self, vehicle_id: UUID, entities: Sequence[str], now: datetime
    ) -> builtins.list[SovdLock]:
        """The unexpired locks on any of these entities of the vehicle."""
        ...

    async def extend(
        self, vehicle_id: UUID, lock_id: UUID, owner_id: UUID, expires_at: datetime, now: datetime
    ) -> bool:
        """Moves the expiry of the owner's unexpired lock; False when there is no such lock."""
        ...

    async def release(
        self, vehicle_id: UUID, lock_id: UUID, now: datetime, owner_id: UUID | None = None
    ) -> bool:
        """Deletes the unexpired lock (only if `owner_id` holds it, unless None); False when
        there is no such lock."""
        ...


class VehicleStateRepository(Protocol):
    async def get(self, vehicle_id: UUID) -> dict[str, Any] | None:
        """The vehicle's last stored state; None before any command changed it."""
        ...

    async def get_many(self, vehicle_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
        """The last stored states of those of the vehicles that have one."""
        ...


class Store(Protocol):
    """Everything the service keeps. `kind` names the backend in logs and health output."""

    @property
    def kind(self) -> str: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def vehicles(self) -> VehicleRepository: ...
    @property
    def fleets(self) -> FleetRepository: ...
    @property
    def commands(self) -> CommandRepository: ...
    @property
    def responses(self) -> ResponseRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def locks(self) -> LockRepository: ...
    @property
    def vehicle_states(self) -> VehicleStateRepository: ...

    async def ping(self) -> None:
        """Returns when the store answers; raises StoreUnavailable otherwise."""
        ...

    async def write_batch(self, batch: WriteBatch, fences: Fences | None = None) -> None:
        """Applies the whole batch in one transaction; with `fences`, only if every token is
        its partition's current one (StaleFence otherwise, writing nothing)."""
        ...

    async def claim_partition(self, partition: int, token: int) -> bool:
        """Records `token` as the partition's fence unless a newer one is recorded."""
        ...

    async def partition_fence(self, partition: int) -> int:
        """The partition's recorded fence; 0 before any owner claimed it."""
        ...

    async def close(self) -> None: ...
