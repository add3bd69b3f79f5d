"""Numbered SQL migrations: one transaction per file, serialised by an advisory lock."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import asyncpg
import structlog
from attrs import frozen

log = structlog.get_logger(__name__)

# Any constant works as long as every sovd-sim process uses the same one.
MIGRATION_LOCK_KEY = 0x50FD_5100
MIGRATION_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version FROM schema_migrations"
RECORD_APPLIED = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
LEDGER_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"


@frozen
class Migration:
    version: int
    name: str
    sql: str


class MigrationError(Exception):
    pass


class SchemaOutdated(Exception):
    """The database lacks migrations this build needs; `sovd-sim db migrate` applies them."""


def bundled_migrations_dir() -> Path:
    return Path(str(resources.files("db") / "migrations"))


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or bundled_migrations_dir()
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: name must look like 0001_some_name.sql")
        migrations.append(
            Migration(int(match["version"]), match["name"], path.read_text(encoding="utf-8"))
        )
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return migrations


async def apply_migrations(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Applies what is missing and returns it; an up-to-date database gets nothing."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(CREATE_LEDGER)
        applied = {row["version"] for row in await conn.fetch(SELECT_APPLIED)}
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(RECORD_APPLIED, migration.version, migration.name)
            log.info("migration_applied", version=migration.version, name=migration.name)
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def migrate(dsn: str) -> list[Migration]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def check_schema(pool: asyncpg.Pool) -> None:
    """Raises SchemaOutdated unless every bundled migration has been applied. Versions may
    have gaps, and one below the highest applied may still be missing, so each is looked for."""
    wanted = {m.version for m in load_migrations()}
    applied: set[int] = set()
    if await pool.fetchval(LEDGER_EXISTS):
        applied = {row["version"] for row in await pool.fetch(SELECT_APPLIED)}
    missing = sorted(wanted - applied)
    if missing:
        have = max(applied, default=0)
        raise SchemaOutdated(
            f"database schema is at version {have} and lacks migrations "
            f"{', '.join(map(str, missing))} this build needs: run `sovd-sim db migrate`"
        )
