"""The PostgreSQL store: asyncpg, SQL as SQL, no ORM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from db.pg_batch import (
    AUDIT_COLUMNS,
    COMMAND_COLUMNS,
    RESPONSE_COLUMNS,
    batch_statement,
    columns,
    json_text,
)
from db.repositories import (
    AuditFilter,
    CommandFilter,
    DuplicateKey,
    Fences,
    FleetRecord,
    IdempotencyRecord,
    SovdLock,
    StaleFence,
    StoreUnavailable,
    VehicleFilter,
    WriteBatch,
)
from sovd.partitions import PARTITION_SQL
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

# What PostgreSQL answers when it cannot serve now, rather than that a statement is wrong:
# connection exceptions (class 08), operator intervention (57: shutdown, restart, cancelled
# statement), insufficient resources (53: too many connections) and system errors (58).
SERVER_UNAVAILABLE: tuple[type[asyncpg.PostgresError], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.PostgresSystemError,
    # A new connection refused: the database is gone (dropped, or being restored under
    # its name), or the role or its password changed since the pool first connected.
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means PostgreSQL cannot be used now (down, restarting, refusing, too
    slow, the link or the driver's protocol state broken), not that a statement is wrong."""
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(exc, SERVER_UNAVAILABLE)
    if isinstance(exc, asyncpg.InterfaceError):
        # Arguments that cannot be encoded and bad settings are ValueErrors: our mistakes.
        return not isinstance(exc, ValueError)
    return isinstance(exc, OSError | TimeoutError | asyncpg.InternalClientError)


def store_error(exc: BaseException) -> Exception | None:
    """The store error a driver error stands for; None when it stands for none (a bug)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return DuplicateKey(exc.detail or str(exc))
    if is_unavailable(exc):
        return StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}")
    return None


def _interrupted(exc: BaseException) -> bool:
    """Whether the connection may be left mid-protocol: anything but an error PostgreSQL
    answered in full for the statement itself."""
    return not isinstance(exc, asyncpg.PostgresError) or is_unavailable(exc)


def redact_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook. The store leaves no session state behind (no SET, LISTEN, advisory
    lock, open cursor or lasting temporary table), so the default reset query, a round trip
    on every release, is skipped; asyncpg still rolls back a transaction left open."""


# How long a connection keeps the plans it made. A generic plan (see SESSION_SETTINGS) is made
# against the tables as they are when a statement first runs, and kept until something
# invalidates it: an ANALYZE, which never comes with autovacuum off. The status update planned
# while `commands` was nearly empty joined it by a sequential scan, and went on scanning the
# whole table in every batch as it grew (50 million rows read in a one-minute benchmark, and
# PostgreSQL's CPU per command rising run after run). So a connection taken from the pool
# first drops its plans once they are older than their lifetime, and its next statement is
# planned against the tables as they are. The lifetime doubles from the first second up to a
# minute: tables grow fastest, relative to their size, just after a fresh start. This is done
# on taking rather than on giving back: a failure then comes before the caller's statement,
# never after a statement that took effect.
FIRST_PLAN_LIFETIME_S = 1.0
LONGEST_PLAN_LIFETIME_S = 60.0
# Per server process (one per connection): when its plans were last dropped or first used,
# and their lifetime. Entries of closed connections are few (one per reconnection) and
# dropped past MAX_PLAN_ENTRIES.
MAX_PLAN_ENTRIES = 1000
_plans: dict[int, tuple[float, float]] = {}


def plans_expired(backend: int, now: float) -> bool:
    """Whether the plans of the connection served by server process `backend` are past their
    lifetime at `now` (monotonic seconds); if so, the next lifetime starts now."""
    known = _plans.get(backend)
    if known is None:
        if len(_plans) >= MAX_PLAN_ENTRIES:
            _plans.clear()
        _plans[backend] = now, FIRST_PLAN_LIFETIME_S
        return False
    planned_at, lifetime = known
    if now - planned_at < lifetime:
        return False
    _plans[backend] = now, min(lifetime * 2, LONGEST_PLAN_LIFETIME_S)
    return True


async def _expire_plans(conn: PoolConnectionProxy) -> None:
    if plans_expired(conn.get_server_pid(), time.monotonic()):
        await conn.execute("DISCARD PLANS")


# Every statement the store sends has a fixed text with parameters, so PostgreSQL may plan
# it once per connection. Under the default `auto` it replans the batch statement on every
# execution, because `unnest` over a bound array looks cheaper when the planner sees its
# length: at a few commands per batch, planning was a third of PostgreSQL's CPU
# (`bench/writes.py --compare-plans`). The generic plans of the listing queries use the
# same indexes as the custom ones.
#
# A transaction is never left waiting on the app for long: a process paused inside one
# (stopped, frozen VM) would otherwise keep its locks until it resumes. In cluster mode the
# fenced batch holds its partitions' fence rows, and a new owner's claim would wait that long.
SESSION_SETTINGS = {
    "plan_cache_mode": "force_generic_plan",
    "idle_in_transaction_session_timeout": "10s",
}


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool of connections with the store's codecs and SESSION_SETTINGS (`settings`
    override them, for benchmarks)."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            # Connections stay open while idle: a release then arms no timer of its own.
            max_inactive_connection_lifetime=0,
            timeout=5,
            server_settings={**SESSION_SETTINGS, **(settings or {})},
        )
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise StoreUnavailable(f"cannot connect to {redact_dsn(dsn)}: {exc}") from exc
    return pool


class GuardedPool:
    """The pool as the repositories use it. A connection whose work was interrupted (link
    lost, FATAL from a shutting-down server, driver protocol error, cancellation) is
    terminated before it goes back, so no later statement is sent on a connection left
    mid-protocol; driver errors leave as StoreUnavailable or DuplicateKey."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(
        self, *, acquire_timeout_s: float | None = None
    ) -> AsyncIterator[PoolConnectionProxy]:
        try:
            async with self.pool.acquire(timeout=acquire_timeout_s) as conn:
                try:
                    await _expire_plans(conn)
                    yield conn
                except BaseException as exc:
                    if _interrupted(exc):
                        conn.terminate()
                    raise
        except Exception as exc:
            error = store_error(exc)
            if error is None:
                raise
            raise error from exc

    async def execute(self, query: str, *args: object) -> str:
        async with self.connection() as conn:
            return await conn.execute(query, *args)

    async def executemany(self, query: str, args: Iterable[Sequence[object]]) -> None:
        async with self.connection() as conn:
            await conn.executemany(query, args)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)


class _Where:
    """Builds a WHERE clause with numbered parameters from optional filters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, value: Any) -> None:
        if value is None:
            return
        self.args.append(value)
        self.clauses.append(template.format(f"${len(self.args)}"))

    def sql(self) -> str:
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""

    def next_param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


PageStatement = Callable[[str, _Where], str]
"""Builds the SELECT of one page from the WHERE clause, adding its own parameters."""


def _ordered_page(
    columns: str, table: str, order_by: str, limit: int, offset: int
) -> PageStatement:
    def statement(filters: str, where: _Where) -> str:
        limit_param, offset_param = where.next_param(limit), where.next_param(offset)
        return (
            f"SELECT {columns} FROM {table} {filters} "
            f"ORDER BY {order_by} LIMIT {limit_param} OFFSET {offset_param}"
        )

    return statement


async def _count_and_page(
    db: GuardedPool,
    table: str,
    where: _Where,
    page: PageStatement,
    total: int | None = None,
) -> tuple[int, list[asyncpg.Record]]:
    """How many rows of `table` match `where` (unless `total` is known already), and the
    rows of the page `page` selects, on one connection."""
    filters = where.sql()
    count_args = list(where.args)
    statement = page(filters, where)
    async with db.connection() as conn:
        if total is None:
            total = int(await conn.fetchval(f"SELECT count(*) FROM {table} {filters}", *count_args))
        rows = await conn.fetch(statement, *where.args)
    return total, rows


USER_COLUMNS = "user_id, username, password_hash, role, email, created_at, is_active"
INSERT_USER = f"INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"


class PgUsers:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def add(self, user: User) -> None:
        await self._db.execute(
            INSERT_USER,
            user.user_id,
            user.username,
            user.password_hash,
            user.role,
            user.email,
            user.created_at,
            user.is_active,
        )

    async def get(self, user_id: UUID) -> User | None:
        row = await self._db.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id
        )
        return None if row is None else User(**dict(row))

    async def get_by_username(self, username: str) -> User | None:
        row = await self._db.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE username = $1", username
        )
        return None if row is None else User(**dict(row))

    async def count(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM users"))


SESSION_COLUMNS = (
    "session_id, user_id, family_id, refresh_token_hash, created_at, expires_at, "
    "rotated_at, revoked_at"
)
MARK_ROTATED = """
UPDATE sessions SET rotated_at = $2
WHERE session_id = $1 AND rotated_at IS NULL AND revoked_at IS NULL
"""
REVOKE_FAMILY = "UPDATE sessions SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL"
REVOKED_FAMILIES = """
SELECT DISTINCT family_id FROM sessions
WHERE family_id = ANY($1::uuid[]) AND revoked_at IS NOT NULL
"""
FAMILY_REVOKED = (
    "SELECT EXISTS (SELECT 1 FROM sessions WHERE family_id = $1 AND revoked_at IS NOT NULL)"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PgSessions:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def add(self, session: RefreshSession) -> None:
        await self._db.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            session.session_id,
            session.user_id,
            session.family_id,
            session.refresh_token_hash,
            session.created_at,
            session.expires_at,
            session.rotated_at,
            session.revoked_at,
        )

    async def get(self, session_id: UUID) -> RefreshSession | None:
        row = await self._db.fetchrow(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id
        )
        return None if row is None else RefreshSession(**dict(row))

    async def get_by_token_hash(self, token_hash: str) -> RefreshSession | None:
        row = await self._db.fetchrow(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE refresh_token_hash = $1", token_hash
        )
        return None if row is None else RefreshSession(**dict(row))

    async def mark_rotated(self, session_id: UUID, at: datetime) -> bool:
        return _affected(await self._db.execute(MARK_ROTATED, session_id, at)) == 1

    async def revoke_family(self, family_id: UUID, at: datetime) -> int:
        return _affected(await self._db.execute(REVOKE_FAMILY, family_id, at))

    async def is_family_revoked(self, family_id: UUID) -> bool:
        return bool(await self._db.fetchval(FAMILY_REVOKED, family_id))

    async def revoked_families(self, family_ids: Sequence[UUID]) -> set[UUID]:
        rows = await self._db.fetch(REVOKED_FAMILIES, list(family_ids))
        return {row["family_id"] for row in rows}


VEHICLE_COLUMNS = (
    "vehicle_id, vin, make, model, year, connection_status, last_seen_at, fleet, metadata"
)
CREATE_VEHICLE_STAGING = """
CREATE TEMP TABLE vehicles_incoming (
    vehicle_id uuid, vin text, make text, model text, year integer,
    connection_status text, last_seen_at timestamptz, fleet text, metadata text
) ON COMMIT DROP
"""
MERGE_VEHICLE_STAGING = f"""
INSERT INTO vehicles ({VEHICLE_COLUMNS})
SELECT vehicle_id, vin, make, model, year, connection_status, last_seen_at, fleet, metadata::jsonb
FROM vehicles_incoming
ON CONFLICT (vehicle_id) DO UPDATE SET
    vin = EXCLUDED.vin, make = EXCLUDED.make, model = EXCLUDED.model, year = EXCLUDED.year,
    connection_status = EXCLUDED.connection_status, last_seen_at = EXCLUDED.last_seen_at,
    fleet = EXCLUDED.fleet, metadata = EXCLUDED.metadata
"""


TotalKey = tuple[str | None, str | None, str | None]


class _RecentTotals:
    """`count(*)` answers per filter, kept for `TTL_S`: counting 100,000 rows for every page
    of a busy list costs more than the page itself. Writes through this store clear them;
    another process's writes show in X-Total-Count within `TTL_S`."""

    TTL_S = 1.0
    MAX_KEYS = 256

    def __init__(self) -> None:
        self._held: dict[TotalKey, tuple[float, int]] = {}

    def get(self, key: TotalKey) -> int | None:
        held = self._held.get(key)
        if held is None or held[0] < asyncio.get_running_loop().time():
            return None
        return held[1]

    def put(self, key: TotalKey, total: int) -> None:
        if len(self._held) >= self.MAX_KEYS:
            self._held.clear()
        self._held[key] = (asyncio.get_running_loop().time() + self.TTL_S, total)

    def clear(self) -> None:
        self._held.clear()


def _vehicle_page(query: VehicleFilter) -> PageStatement:
    """A page in VIN order; past the first it skips along the VIN index alone (index-only),
    then reads just the page."""

    def statement(filters: str, where: _Where) -> str:
        limit = where.next_param(query.limit)
        if query.offset:
            offset = where.next_param(query.offset)
            first_vin = f"(SELECT vin FROM vehicles {filters} ORDER BY vin OFFSET {offset} LIMIT 1)"
            filters = f"{filters} AND" if filters else "WHERE"
            filters += f" vin >= {first_vin}"
        return f"SELECT {VEHICLE_COLUMNS} FROM vehicles {filters} ORDER BY vin LIMIT {limit}"

    return statement


class PgVehicles:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db
        self.totals = _RecentTotals()

    async def upsert_many(self, vehicles: Sequence[Vehicle]) -> int:
        """Bulk insert-or-update through COPY into a staging table, one transaction."""
        records = _vehicle_rows(vehicles)
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(CREATE_VEHICLE_STAGING)
            await conn.copy_records_to_table("vehicles_incoming", records=records)
            await conn.execute(MERGE_VEHICLE_STAGING)
        self.totals.clear()
        return len(records)

    async def get(self, vehicle_id: UUID) -> Vehicle | None:
        row = await self._db.fetchrow(
            f"SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE vehicle_id = $1", vehicle_id
        )
        return None if row is None else Vehicle(**dict(row))

    async def list(self, query: VehicleFilter) -> Page[Vehicle]:
        where = _Where()
        where.add("connection_status = {}", query.status)
        where.add("fleet = {}", query.fleet)
        if query.search:
            where.add("vin LIKE {}", f"%{_escape_like(query.search.upper())}%")
        key = (query.status, query.fleet, query.search)
        recent = self.totals.get(key)
        page = _vehicle_page(query)
        total, rows = await _count_and_page(self._db, "vehicles", where, page, recent)
        if recent is None:
            self.totals.put(key, total)
        return Page(items=[Vehicle(*r) for r in rows], total=total)  # columns in field order

    async def delete_fleet(self, fleet: str) -> int:
        deleted = await self._db.execute("DELETE FROM vehicles WHERE fleet = $1", fleet)
        self.totals.clear()
        return _affected(deleted)


def _vehicle_rows(vehicles: Sequence[Vehicle]) -> list[tuple[Any, ...]]:
    encoded: dict[int, str] = {}  # fleets share one metadata dict: encode it once
    rows = []
    for v in vehicles:
        metadata = encoded.get(id(v.metadata))
        if metadata is None:
            metadata = encoded[id(v.metadata)] = orjson.dumps(v.metadata).decode()
        rows.append(
            (
                v.vehicle_id,
                v.vin,
                v.make,
                v.model,
                v.year,
                v.connection_status,
                v.last_seen_at,
                v.fleet,
                metadata,
            )
        )
    return rows


PRUNE_FLEET_VEHICLES = """
DELETE FROM vehicles AS v
WHERE v.fleet = ANY($1::text[])
    AND NOT EXISTS (SELECT 1 FROM vehicles_incoming AS i WHERE i.vehicle_id = v.vehicle_id)
"""
# Unchanged rows are left alone: re-spawning a fleet writes nothing.
MERGE_CHANGED_VEHICLES = (
    MERGE_VEHICLE_STAGING
    + """
WHERE (vehicles.vin, vehicles.make, vehicles.model, vehicles.year,
       vehicles.connection_status, vehicles.fleet, vehicles.metadata)
    IS DISTINCT FROM (EXCLUDED.vin, EXCLUDED.make, EXCLUDED.model, EXCLUDED.year,
                      EXCLUDED.connection_status, EXCLUDED.fleet, EXCLUDED.metadata)
"""
)
FLEET_COLUMNS = "name, definition, vehicle_count, created_at, updated_at"
UPSERT_FLEETS = f"""
INSERT INTO fleets ({FLEET_COLUMNS})
SELECT name, definition::jsonb, vehicle_count, created_at, updated_at
FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[])
    AS u (name, definition, vehicle_count, created_at, updated_at)
ON CONFLICT (name) DO UPDATE SET
    definition = EXCLUDED.definition, vehicle_count = EXCLUDED.vehicle_count,
    updated_at = EXCLUDED.updated_at
"""
LIST_FLEETS = f"SELECT {FLEET_COLUMNS} FROM fleets ORDER BY created_at, name"


# Past this many rows a save refreshes the planner's statistics and the visibility map, so
# that lists use the (connection_status, vin) index and count and skip with index-only scans.
VACUUM_AFTER_ROWS = 10_000


class PgFleets:
    def __init__(self, db: GuardedPool, vehicles: PgVehicles) -> None:
        self._db = db
        self._vehicles = vehicles

    async def save(self, fleets: Sequence[FleetRecord], vehicles: Sequence[Vehicle]) -> None:
        """COPY into a staging table, then prune, merge and record in one transaction."""
        rows = _vehicle_rows(vehicles)
        fleet_rows = [
            (f.name, json_text(f.definition), f.vehicle_count, f.created_at, f.updated_at)
            for f in fleets
        ]
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(CREATE_VEHICLE_STAGING)
            await conn.copy_records_to_table("vehicles_incoming", records=rows)
            await conn.execute("ANALYZE vehicles_incoming")
            await conn.execute(PRUNE_FLEET_VEHICLES, [f.name for f in fleets])
            await conn.execute(MERGE_CHANGED_VEHICLES)
            await conn.execute(UPSERT_FLEETS, *columns(fleet_rows, 5))
        self._vehicles.totals.clear()
        if len(rows) >= VACUUM_AFTER_ROWS:
            await self._db.execute("VACUUM (ANALYZE) vehicles")

    async def list(self) -> list[FleetRecord]:
        return [FleetRecord(**dict(r)) for r in await self._db.fetch(LIST_FLEETS)]

    async def delete(self, name: str) -> int:
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM fleets WHERE name = $1", name)
            deleted = await conn.execute("DELETE FROM vehicles WHERE fleet = $1", name)
        self._vehicles.totals.clear()
        return _affected(deleted)


SET_COMMAND_STATUS = """
UPDATE commands SET status = $2, error_message = $3, completed_at = $4 WHERE command_id = $1
"""
INSERT_COMMAND = (
    f"INSERT INTO commands ({COMMAND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
CLAIM_IDEMPOTENCY_KEY = """
INSERT INTO idempotency_keys (user_id, key, request_hash, command_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, key) DO NOTHING
"""
FIND_IDEMPOTENCY_KEY = """
SELECT request_hash, command_id FROM idempotency_keys WHERE user_id = $1 AND key = $2
"""
LIST_UNFINISHED = f"""
SELECT {COMMAND_COLUMNS} FROM commands WHERE status IN ('pending', 'in_progress')
ORDER BY submitted_at
"""
LIST_UNFINISHED_OF_PARTITION = f"""
SELECT {COMMAND_COLUMNS} FROM commands WHERE status IN ('pending', 'in_progress')
AND {PARTITION_SQL.format(count="$1")} = $2
ORDER BY submitted_at
"""
LIST_PENDING_BEFORE = f"""
SELECT {COMMAND_COLUMNS} FROM commands WHERE status = 'pending' AND submitted_at < $1
ORDER BY submitted_at
"""
LIST_MATCHING = f"""
SELECT {COMMAND_COLUMNS} FROM commands
WHERE vehicle_id = $1 AND command_name = $2 AND command_params @> $3 AND submitted_at >= $4
    AND dismissed_at IS NULL
ORDER BY submitted_at DESC, command_id DESC LIMIT $5
"""
DISMISS_COMMAND = """
UPDATE commands SET dismissed_at = $2 WHERE command_id = $1 AND dismissed_at IS NULL
"""
COMMAND_DISMISSED = "SELECT dismissed_at IS NOT NULL FROM commands WHERE command_id = $1"


def _command_args(command: Command) -> tuple[Any, ...]:
    return (
        command.command_id,
        command.user_id,
        command.vehicle_id,
        command.command_name,
        command.command_params,
        command.status,
        command.submitted_at,
        command.error_message,
        command.completed_at,
    )


class PgCommands:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def add(self, command: Command) -> None:
        await self._db.execute(INSERT_COMMAND, *_command_args(command))

    async def add_idempotent(
        self, command: Command, key: str, request_hash: str
    ) -> IdempotencyRecord | None:
        async with self._db.connection() as conn, conn.transaction():
            # The key row goes first (its foreign key is deferred), so a taken key costs
            # no command insert.
            claim = (command.user_id, key, request_hash, command.command_id)
            while _affected(await conn.execute(CLAIM_IDEMPOTENCY_KEY, *claim)) == 0:
                row = await conn.fetchrow(FIND_IDEMPOTENCY_KEY, command.user_id, key)
                if row is not None:
                    return IdempotencyRecord(row["request_hash"], row["command_id"])
                # The key's command was deleted (with its vehicle) since the claim saw it.
            await conn.execute(INSERT_COMMAND, *_command_args(command))
            return None

    async def find_idempotent(self, user_id: UUID, key: str) -> IdempotencyRecord | None:
        row = await self._db.fetchrow(FIND_IDEMPOTENCY_KEY, user_id, key)
        return None if row is None else IdempotencyRecord(row["request_hash"], row["command_id"])

    async def list_unfinished(
        self, partition: int | None = None, partitions: int = 1
    ) -> list[Command]:
        if partition is None:
            return [Command(**dict(r)) for r in await self._db.fetch(LIST_UNFINISHED)]
        rows = await self._db.fetch(LIST_UNFINISHED_OF_PARTITION, partitions, partition)
        return [Command(**dict(r)) for r in rows]

    async def list_pending_before(self, before: datetime) -> list[Command]:
        rows = await self._db.fetch(LIST_PENDING_BEFORE, before)
        return [Command(**dict(r)) for r in rows]

    async def list_matching(
        self,
        vehicle_id: UUID,
        command_name: str,
        params: Mapping[str, Any],
        since: datetime,
        limit: int,
    ) -> list[Command]:
        rows = await self._db.fetch(
            LIST_MATCHING, vehicle_id, command_name, dict(params), since, limit
        )
        return [Command(**dict(r)) for r in rows]

    async def dismiss(self, command_id: UUID, at: datetime) -> bool:
        return _affected(await self._db.execute(DISMISS_COMMAND, command_id, at)) == 1

    async def is_dismissed(self, command_id: UUID) -> bool:
        return bool(await self._db.fetchval(COMMAND_DISMISSED, command_id))

    async def get(self, command_id: UUID) -> Command | None:
        row = await self._db.fetchrow(
            f"SELECT {COMMAND_COLUMNS} FROM commands WHERE command_id = $1", command_id
        )
        return None if row is None else Command(**dict(row))

    async def list(self, query: CommandFilter) -> Page[Command]:
        where = _Where()
        where.add("vehicle_id = {}", query.vehicle_id)
        where.add("user_id = {}", query.user_id)
        where.add("status = {}", query.status)
        where.add("submitted_at >= {}", query.start_date)
        where.add("submitted_at <= {}", query.end_date)
        page = _ordered_page(
            COMMAND_COLUMNS,
            "commands",
            "submitted_at DESC, command_id DESC",
            query.limit,
            query.offset,
        )
        total, rows = await _count_and_page(self._db, "commands", where, page)
        return Page(items=[Command(**dict(r)) for r in rows], total=total)

    async def set_status(
        self,
        command_id: UUID,
        status: CommandStatus,
        *,
        error_message: str | None = None,
        completed_at: datetime | None = None,
    ) -> bool:
        result = await self._db.execute(
            SET_COMMAND_STATUS, command_id, status, error_message, completed_at
        )
        return _affected(result) == 1


class PgResponses:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def add_many(self, responses: Sequence[Response]) -> None:
        await self._db.executemany(
            f"INSERT INTO responses ({RESPONSE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (
                    r.response_id,
                    r.command_id,
                    r.response_payload,
                    r.sequence_number,
                    r.is_final,
                    r.received_at,
                )
                for r in responses
            ],
        )

    async def list_for_command(self, command_id: UUID) -> list[Response]:
        rows = await self._db.fetch(
            f"SELECT {RESPONSE_COLUMNS} FROM responses WHERE command_id = $1 "
            "ORDER BY sequence_number",
            command_id,
        )
        return [Response(**dict(r)) for r in rows]


class PgAudit:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def add_many(self, entries: Sequence[AuditEntry]) -> None:
        statement = batch_statement(WriteBatch(audit=entries))
        if statement is not None:
            await self._db.execute(statement[0], *statement[1])

    async def list(self, query: AuditFilter) -> Page[AuditEntry]:
        where = _Where()
        where.add("action = {}", query.action)
        where.add("user_id = {}", query.user_id)
        page = _ordered_page(
            AUDIT_COLUMNS, "audit_logs", "timestamp DESC, log_id", query.limit, query.offset
        )
        total, rows = await _count_and_page(self._db, "audit_logs", where, page)
        return Page(items=[AuditEntry(**dict(r)) for r in rows], total=total)


LOCK_COLUMNS = "lock_id, vehicle_id, entity, owner_id, expires_at"
# One statement, so two clients racing for a free entity cannot both win: the loser's insert
# waits for the winner's row and then finds its WHERE false.
ACQUIRE_LOCK = f"""
INSERT INTO sovd_locks AS held ({LOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (vehicle_id, entity) DO UPDATE SET
    lock_id = CASE WHEN held.owner_id = EXCLUDED.owner_id AND held.expires_at > $6
                   THEN held.lock_id ELSE EXCLUDED.lock_id END,
    owner_id = EXCLUDED.owner_id,
    expires_at = EXCLUDED.expires_at
WHERE held.expires_at <= $6 OR held.owner_id = EXCLUDED.owner_id OR $7::boolean
RETURNING {LOCK_COLUMNS}
"""
GET_LOCK = f"""
SELECT {LOCK_COLUMNS} FROM sovd_locks WHERE lock_id = $2 AND vehicle_id = $1 AND expires_at > $3
"""
HELD_LOCKS = f"""
SELECT {LOCK_COLUMNS} FROM sovd_locks
WHERE vehicle_id = $1 AND entity = ANY($2::text[]) AND expires_at > $3
ORDER BY entity
"""
EXTEND_LOCK = """
UPDATE sovd_locks SET expires_at = $4
WHERE lock_id = $2 AND vehicle_id = $1 AND owner_id = $3 AND expires_at > $5
"""
RELEASE_LOCK = """
DELETE FROM sovd_locks
WHERE lock_id = $2 AND vehicle_id = $1 AND expires_at > $3 AND ($4::uuid IS NULL OR owner_id = $4)
"""


class PgLocks:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def acquire(
        self, lock: SovdLock, now: datetime, *, break_lock: bool = False
    ) -> SovdLock | None:
        row = await self._db.fetchrow(
            ACQUIRE_LOCK,
            lock.lock_id,
            lock.vehicle_id,
            lock.entity,
            lock.owner_id,
            lock.expires_at,
            now,
            break_lock,
        )
        return None if row is None else SovdLock(**dict(row))

    async def get(self, vehicle_id: UUID, lock_id: UUID, now: datetime) -> SovdLock | None:
        row = await self._db.fetchrow(GET_LOCK, vehicle_id, lock_id, now)
        return None if row is None else SovdLock(**dict(row))

    async def held(
        self, vehicle_id: UUID, entities: Sequence[str], now: datetime
    ) -> list[SovdLock]:
        rows = await self._db.fetch(HELD_LOCKS, vehicle_id, list(entities), now)
        return [SovdLock(**dict(r)) for r in rows]

    async def extend(
        self, vehicle_id: UUID, lock_id: UUID, owner_id: UUID, expires_at: datetime, now: datetime
    ) -> bool:
        result = await self._db.execute(EXTEND_LOCK, vehicle_id, lock_id, owner_id, expires_at, now)
        return _affected(result) == 1

    async def release(
        self, vehicle_id: UUID, lock_id: UUID, now: datetime, owner_id: UUID | None = None
    ) -> bool:
        result = await self._db.execute(RELEASE_LOCK, vehicle_id, lock_id, now, owner_id)
        return _affected(result) == 1


class PgVehicleStates:
    def __init__(self, db: GuardedPool) -> None:
        self._db = db

    async def get(self, vehicle_id: UUID) -> dict[str, Any] | None:
        return (await self.get_many([vehicle_id])).get(vehicle_id)

    async def get_many(self, vehicle_ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT vehicle_id, state FROM vehicle_states WHERE vehicle_id = ANY($1::uuid[])",
            list(vehicle_ids),
        )
        return {row["vehicle_id"]: dict(row["state"]) for row in rows}


CURRENT_FENCES = (
    "SELECT partition, fence FROM cluster_fences WHERE partition = ANY($1::int[]) FOR SHARE"
)
CLAIM_PARTITION = """
INSERT INTO cluster_fences (partition, fence) VALUES ($1, $2)
ON CONFLICT (partition) DO UPDATE SET fence = EXCLUDED.fence
WHERE cluster_fences.fence < EXCLUDED.fence
RETURNING fence
"""


class PostgresStore:
    kind = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._db = db = GuardedPool(pool)
        self.users = PgUsers(db)
        self.sessions = PgSessions(db)
        self.vehicles = PgVehicles(db)
        self.fleets = PgFleets(db, self.vehicles)
        self.commands = PgCommands(db)
        self.responses = PgResponses(db)
        self.audit = PgAudit(db)
        self.locks = PgLocks(db)
        self.vehicle_states = PgVehicleStates(db)

    async def ping(self) -> None:
        async with self._db.connection(acquire_timeout_s=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)

    async def write_batch(self, batch: WriteBatch, fences: Fences | None = None) -> None:
        statement = batch_statement(batch)
        if not fences:
            if statement is not None:
                sql, args = statement
                await self._db.execute(sql, *args)
            return
        async with self._db.connection() as conn, conn.transaction():
            # FOR SHARE: a new owner's claim waits until this batch is committed.
            rows = await conn.fetch(CURRENT_FENCES, list(fences))
            current = {row["partition"]: row["fence"] for row in rows}
            stale = [p for p, token in fences.items() if current.get(p) != token]
            if stale:
                raise StaleFence(stale)
            if statement is not None:
                sql, args = statement
                await conn.execute(sql, *args)

    async def claim_partition(self, partition: int, token: int) -> bool:
        claimed = await self._db.fetchval(CLAIM_PARTITION, partition, token)
        return claimed is not None

    async def partition_fence(self, partition: int) -> int:
        fence = await self._db.fetchval(
            "SELECT fence FROM cluster_fences WHERE partition = $1", partition
        )
        return int(fence or 0)

    async def close(self) -> None:
        await self.pool.close()
