from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from db.migrate import (
    MigrationError,
    SchemaOutdated,
    apply_migrations,
    check_schema,
    load_migrations,
    migrate,
)

pytestmark = pytest.mark.integration

TABLES = {"users", "sessions", "vehicles", "commands", "responses", "audit_logs"}


@pytest.fixture
async def empty_dsn(pg_dsn: str) -> AsyncIterator[str]:
    """A brand-new empty database on the same server as the session database."""
    admin = await asyncpg.connect(pg_dsn)
    name = f"sovd_migrate_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def tables_and_versions(dsn: str) -> tuple[set[str], list[int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return {r["tablename"] for r in rows}, [r["version"] for r in versions]
    finally:
        await conn.close()


async def test_fresh_database_gets_every_table(empty_dsn: str) -> None:
    applied = await migrate(empty_dsn)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    tables, versions = await tables_and_versions(empty_dsn)
    assert tables >= TABLES | {"schema_migrations"}
    assert versions == [m.version for m in load_migrations()]


async def test_second_run_is_a_no_op(empty_dsn: str) -> None:
    await migrate(empty_dsn)
    assert await migrate(empty_dsn) == []


async def test_concurrent_runs_apply_each_migration_once(empty_dsn: str) -> None:
    results = await asyncio.gather(*(migrate(empty_dsn) for _ in range(4)))
    applied = [m.version for result in results for m in result]
    assert sorted(applied) == [m.version for m in load_migrations()]
    _, versions = await tables_and_versions(empty_dsn)
    assert versions == [m.version for m in load_migrations()]


async def test_failing_migration_rolls_back_alone(empty_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_fn();")
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, load_migrations(tmp_path))
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        assert "good" in tables and "half" not in tables
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 1
    finally:
        await conn.close()


async def test_a_migration_added_below_the_newest_is_applied_later(
    empty_dsn: str, tmp_path: Path
) -> None:
    """Versions may have gaps, and a branch merged late may fill one below the newest."""
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0007_seventh.sql").write_text("CREATE TABLE seventh (id int);")
    conn = await asyncpg.connect(empty_dsn)

    async def applied_versions() -> list[int]:
        return [m.version for m in await apply_migrations(conn, load_migrations(tmp_path))]

    try:
        assert await applied_versions() == [1, 7]
        (tmp_path / "0006_sixth.sql").write_text("CREATE TABLE sixth (id int);")
        assert await applied_versions() == [6]
    finally:
        await conn.close()


async def test_schema_check_finds_a_missing_migration_below_the_newest(empty_dsn: str) -> None:
    await migrate(empty_dsn)
    pool = await asyncpg.create_pool(empty_dsn, min_size=1, max_size=1)
    try:
        await check_schema(pool)
        skipped = load_migrations()[-2].version
        await pool.execute("DELETE FROM schema_migrations WHERE version = $1", skipped)
        with pytest.raises(SchemaOutdated, match=rf"lacks migrations {skipped} "):
            await check_schema(pool)
    finally:
        await pool.close()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_some_name\.sql"):
        load_migrations(tmp_path)


async def test_check_constraints_reject_bad_rows(pg_store: object, pg_pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(
            "INSERT INTO users (username, password_hash, role) VALUES ('x', 'h', 'superuser')"
        )
