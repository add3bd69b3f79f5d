"""Records kept by the store: the rows of SPEC §3 "Storage" as frozen values."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from attrs import field, frozen

_ID_BYTES = 16
_RANDOM_CHUNK = 4096
_random_pool = b""
_random_offset = _RANDOM_CHUNK


def new_id() -> UUID:
    """A random version 4 UUID, as uuid4 makes, with the randomness fetched in 4 KiB reads
    instead of one system call per id (ids are made several times per command)."""
    global _random_pool, _random_offset
    if _random_offset >= len(_random_pool):
        _random_pool, _random_offset = os.urandom(_RANDOM_CHUNK), 0
    chunk = _random_pool[_random_offset : _random_offset + _ID_BYTES]
    _random_offset += _ID_BYTES
    return UUID(bytes=chunk, version=4)


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
