"""`sovd-sim fleet validate|spawn` and `serve --fleet` as a user runs them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.support.fleets import vehicles_of
from tests.support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "e2e-secret-" + "f" * 40
ADMIN_PASSWORD = "fleet-admin-password-1"
SMALL = """
[simulation]
seed = 77

[[fleets]]
name = "vans"
count = 7
profile = "ford-f150"
connectivity = { disconnected = 0.3 }

[[fleets]]
name = "hatches"
count = 5
profile = "vw-golf"
"""
BAD = """
[[fleets]]
name = "a"
count = 3
profile = "vw-golf"

[[fleets]]
name = "b"
count = 1
profile = "vw-golf"
colour = "red"

[[fleets]]
name = "c"
count = -1
profile = "vw-golf"
"""


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    return path


async def vehicle_ids(http: aiohttp.ClientSession, server: ServerProcess) -> set[str]:
    login = {"username": "admin", "password": ADMIN_PASSWORD}
    async with http.post(server.url + "/api/v1/auth/login", json=login) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(server.url + "/api/v1/vehicles?limit=1000", headers=headers) as response:
        assert response.status == 200
        return {v["vehicle_id"] for v in await response.json()}


async def test_validate_summarises_a_good_file() -> None:
    path = EXAMPLES / "mixed-fleet.toml"

    code, out, err = await run_cli("fleet", "validate", str(path))

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{path}: 4 fleets, 60 vehicles"
    assert [line.split()[0] for line in lines[1:]] == [
        "berlin-ev",
        "depot-golfs",
        "us-trucks",
        "rental-sedans",
    ]


async def test_validate_names_the_file_key_and_problem(bad: Path) -> None:
    code, out, err = await run_cli("fleet", "validate", str(bad))

    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{bad}: fleets[1].colour: unknown key",
        f"{bad}: fleets[2].count: must be >= 0, got -1",
    ]


async def test_validate_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    code, _, err = await run_cli("fleet", "validate", str(missing))

    assert code == 2
    assert err.strip() == f"{missing}: cannot read the file: No such file or directory"


async def test_serve_with_a_bad_fleet_file_exits_2_before_starting(bad: Path) -> None:
    code, out, err = await run_cli("serve", "--port", "1", "--fleet", str(bad))

    assert code == 2
    assert f"{bad}: fleets[2].count: must be >= 0" in err
    assert "Traceback" not in err + out
    assert "server_started" not in out


async def test_serve_runs_the_fleet_file(http: aiohttp.ClientSession, small: Path) -> None:
    server = await ServerProcess(
        "--fleet", str(small), env={"SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    ).start()
    try:
        ids = await vehicle_ids(http, server)
    finally:
        assert await server.stop() == 0

    assert ids == {str(v.vehicle_id) for v in vehicles_of(SMALL)}
    assert server.errors() == []


async def test_spawn_needs_a_database(small: Path) -> None:
    code, _, err = await run_cli("fleet", "spawn", str(small), env={"DATABASE_URL": ""})

    assert code == 2
    assert "DATABASE_URL" in err


@pytest.mark.integration
async def test_spawn_records_fleets_that_servers_run_from_their_next_start(
    http: aiohttp.ClientSession, pg_dsn: str, small: Path
) -> None:
    admin = await asyncpg.connect(pg_dsn)
    name = f"sovd_e2e_fleet_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_dsn.rsplit("/", 1)[0] + "/" + name
    env = {"DATABASE_URL": dsn, "JWT_SECRET": SECRET, "SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    try:
        assert (await run_cli("db", "migrate", env=env))[0] == 0
        code, out, err = await run_cli("fleet", "spawn", str(small), env=env)
        assert code == 0, err
        assert f"{small}: 2 fleets, 12 vehicles" in out
        conn = await asyncpg.connect(dsn)
        try:
            rows = "SELECT vehicle_id::text, xmin::text FROM vehicles ORDER BY 1"
            first = await conn.fetch(rows)
            assert (await run_cli("fleet", "spawn", str(small), env=env))[0] == 0
            assert await conn.fetch(rows) == first  # the same file again writes nothing
        finally:
            await conn.close()
        expected = {str(v.vehicle_id) for v in vehicles_of(SMALL)}
        assert {r["vehicle_id"] for r in first} == expected

        for _ in range(2):  # and again after a restart
            server = await ServerProcess(env=env).start()
            try:
                assert await vehicle_ids(http, server) == expected
            finally:
                assert await server.stop() == 0
            assert server.errors() == []
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
