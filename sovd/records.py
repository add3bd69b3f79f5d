"""Records kept by the store: the rows of SPEC §3 "Storage" as frozen values."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID, SafeUUID

from attrs import field, frozen

_RANDOM_CHUNK = 4096
# Version 4, variant RFC 4122: the bits uuid4 sets.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)
_new_uuid = UUID.__new__
_set_slot = object.__setattr__
_id_values: list[int] = []


def _more_id_values() -> list[int]:
    raw = os.urandom(_RANDOM_CHUNK)
    return [
        (int.from_bytes(raw[i : i + 16], "big") & _V4_CLEAR) | _V4_SET
        for i in range(0, _RANDOM_CHUNK, 16)
    ]


def new_id() -> UUID:
    """A random version 4 UUID, as uuid4 makes. Ids are made several times per command, so
    the randomness comes in 4 KiB reads instead of one system call per id, and the UUID is
    built from its integer directly instead of through the checking constructor."""
    global _id_values
    if not _id_values:
        _id_values = _more_id_values()
    made = _new_uuid(UUID)
    _set_slot(made, "int", _id_values.pop())
    _set_slot(made, "is_safe", SafeUUID.unknown)
    return made


def utc_now() -> datetime:
    """The one clock every layer reads by default (tests pass their own)."""
    return datetime.now(UTC)


Role = Literal["viewer", "engineer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "engineer", "admin")

CommandStatus = Literal["pending", "in_progress", "completed", "failed", "timed_out"]
COMMAND_STATUSES: tuple[CommandStatus, ...] = (
    "pending",
    "in_progress",
    "completed",
    "failed",
    "timed_out",
)
TERMINAL_STATUSES: frozenset[CommandStatus] = frozenset({"completed", "failed", "timed_out"})

ConnectionStatus = Literal["connected", "disconnected", "intermittent", "error"]
CONNECTION_STATUSES: tuple[ConnectionStatus, ...] = (
    "connected",
    "disconnected",
    "intermittent",
    "error",
)


@frozen
class User:
    user_id: UUID
    username: str
    password_hash: str
    role: Role
    email: str | None
    created_at: datetime
    is_active: bool = True


@frozen
class RefreshSession:
    """One refresh token of a login family; rotation adds a row, reuse revokes the family."""

    session_id: UUID
    user_id: UUID
    family_id: UUID
    refresh_token_hash: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@frozen
class Vehicle:
    vehicle_id: UUID
    vin: str
    make: str
    model: str
    year: int
    connection_status: ConnectionStatus
    last_seen_at: datetime | None
    fleet: str = ""
    metadata: dict[str, Any] = field(factory=dict)


@frozen
class Command:
    command_id: UUID
    user_id: UUID
    vehicle_id: UUID
    command_name: str
    command_params: dict[str, Any]
    status: CommandStatus
    submitted_at: datetime
    error_message: str | None = None
    completed_at: datetime | None = None


@frozen
class Response:
    response_id: UUID
    command_id: UUID
    response_payload: dict[str, Any]
    sequence_number: int
    is_final: bool
    received_at: datetime


@frozen
class AuditEntry:
    log_id: UUID
    action: str
    entity_type: str
    timestamp: datetime
    user_id: UUID | None = None
    vehicle_id: UUID | None = None
    command_id: UUID | None = None
    entity_id: UUID | None = None
    details: dict[str, Any] = field(factory=dict)
    ip_address: str | None = None
    user_agent: str | None = None


T = TypeVar("T")


@frozen
class Page(Generic[T]):
    items: list[T]
    total: int
