"""Which driver errors the PostgreSQL store reports as StoreUnavailable (503) or DuplicateKey,
and which it lets through as bugs; when a connection's plans expire."""

from __future__ import annotations

import asyncpg
import pytest

from db import postgres
from db.postgres import plans_expired, store_error
from db.repositories import DuplicateKey, StoreUnavailable


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        asyncpg.InterfaceError("pool is closing"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_saying_postgresql_cannot_serve_now_are_store_unavailable(
    error: Exception,
) -> None:
    assert isinstance(store_error(error), StoreUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UndefinedTableError('relation "users" does not exist'),
        asyncpg.NotNullViolationError('null value in column "vin"'),
        asyncpg.exceptions.ClientConfigurationError("invalid sslmode"),
        KeyError("request_hash"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_saying_the_statement_is_wrong_stay_bugs(error: Exception) -> None:
    assert store_error(error) is None


def test_a_taken_unique_key_is_a_duplicate_key() -> None:
    error = store_error(asyncpg.UniqueViolationError("duplicate key value"))
    assert isinstance(error, DuplicateKey)


def test_a_connections_plans_last_a_second_then_twice_as_long_each_time_up_to_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "_plans", {})
    backend = 4242
    assert not plans_expired(backend, 100.0)  # first use: the first lifetime starts
    assert not plans_expired(backend, 100.9)
    expired_at = []
    now = 100.0
    while now < 400.0:
        now += 0.5
        if plans_expired(backend, now):
            expired_at.append(now)
    assert expired_at[:7] == [101.0, 103.0, 107.0, 115.0, 131.0, 163.0, 223.0]
    assert expired_at[7:] == [283.0, 343.0]  # capped at LONGEST_PLAN_LIFETIME_S
    assert not plans_expired(7, 400.0)  # each connection has a lifetime of its own
