"""`sovd-sim serve` as a process: embedded default, production mode, shutdown, bad config."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-" + "k" * 40


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_embedded_default_serves_health_and_stops_on_sigterm(
    http: aiohttp.ClientSession,
) -> None:
    server = await ServerProcess().start()
    try:
        for path in ("/healthz", "/readyz"):
            async with http.get(server.url + path) as response:
                assert response.status == 200, path
        async with http.get(server.url + "/readyz") as response:
            body = await response.json()
        assert body["checks"]["store"]["kind"] == "memory"
        assert body["checks"]["bus"]["kind"] == "in-process"
        async with http.get(server.url + "/metrics") as response:
            metrics = await response.text()
        # the served process watches its collector; the startup freeze ran a full collection
        full = re.search(r'^sovd_gc_pause_seconds_count\{generation="2"\} (\S+)$', metrics, re.M)
        assert full is not None and float(full[1]) >= 1
    finally:
        code = await server.stop(signal.SIGTERM)
    assert code == 0
    names = [e["event"] for e in server.events]
    assert names.index("store_selected") < names.index("server_started")
    assert names[-1] == "server_stopped"
    assert server.errors() == []


async def test_sigint_stops_gracefully_too() -> None:
    server = await ServerProcess().start()
    assert await server.stop(signal.SIGINT) == 0


@pytest.mark.integration
async def test_production_mode_migrates_and_serves(
    http: aiohttp.ClientSession, pg_dsn: str, redis_url: str
) -> None:
    admin = await asyncpg.connect(pg_dsn)
    name = f"sovd_e2e_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_dsn.rsplit("/", 1)[0] + "/" + name
    env = {"DATABASE_URL": dsn, "REDIS_URL": redis_url, "JWT_SECRET": SECRET}
    try:
        code, _, err = await run_cli("serve", "--port", "1", env=env)
        assert code == 1
        assert "run `sovd-sim db migrate`" in err + _

        code, out, _ = await run_cli("db", "migrate", env=env)
        assert code == 0, out
        assert "0001_initial" in out
        code, out, _ = await run_cli("db", "migrate", env=env)
        assert code == 0
        assert '"applied":[]' in out

        server = await ServerProcess(env=env).start()
        try:
            async with http.get(server.url + "/readyz") as response:
                body = await response.json()
                assert response.status == 200, body
            assert body["checks"]["store"]["kind"] == "postgresql"
            assert body["checks"]["bus"]["kind"] == "redis"
        finally:
            assert await server.stop() == 0
        assert server.errors() == []
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--port", "0"], {}, "server.port: must be between 1 and 65535"),
        ([], {"SOVD_PORT": "http"}, "environment SOVD_PORT: server.port: expected integer"),
        ([], {"DATABASE_URL": "postgresql://x@127.0.0.1/none"}, "auth.jwt_secret"),
        ([], {"JWT_SECRET": "short"}, "auth.jwt_secret: must be at least 32 bytes"),
        (["--latency-ms", "fast"], {}, "expected MIN,MAX"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
    ],
)
async def test_bad_configuration_exits_2_with_one_clear_line(
    args: list[str], env: dict[str, str], fragment: str
) -> None:
    code, out, err = await run_cli("serve", *args, env=env)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err + out


async def test_bad_config_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[simulation]\nmailbox_size = -1\n")
    code, _, err = await run_cli("serve", "--config", str(path))
    assert code == 2
    assert err.strip() == (
        f"sovd-sim: configuration error: {path}: simulation.mailbox_size: must be >= 1"
    )


async def test_migrate_without_a_database_is_usage_error() -> None:
    code, _, err = await run_cli("db", "migrate", env={"DATABASE_URL": ""})
    assert code == 2
    assert "DATABASE_URL" in err


async def test_readiness_answers_503_while_draining(http: aiohttp.ClientSession) -> None:
    server = await ServerProcess(env={"SOVD_DRAIN_SECONDS": "3"}).start()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    await server.wait_for_event("server_draining")
    async with http.get(server.url + "/readyz") as response:
        body = await response.json()
        assert response.status == 503
    assert body["status"] == "draining"
    async with http.get(server.url + "/healthz") as response:
        assert response.status == 200
    assert await server.stop() == 0
