"""Schemathesis over the served OpenAPI document: a server process in production mode
(PostgreSQL, Redis) with a fleet, an admin token, every operation but the streams and
logout, checked for 5xx answers and for answers the document does not describe.

The short form (a few deterministic examples per operation) runs with the suite. With
SOVD_FUZZ_SECONDS set it runs that long instead, with fresh random data (README, "API
description and fuzzing")."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ADMIN_PASSWORD = "fuzz-admin-password-1"
TARGET_FLEET = "fuzz-target"
PROFILE = "vw-golf"
FLEET = f"""
[[fleets]]
name = "{TARGET_FLEET}"
count = 3
profile = "{PROFILE}"
seed = 11
"""
# Password hashing at production cost makes each fuzzed login take a tenth of a second.
SERVER_CONFIG = """
[auth]
access_ttl_s = 7200
password_time_cost = 1
password_memory_kib = 8
password_parallelism = 1
"""
SHORT_FORM = ["--max-examples", "3", "--generation-deterministic"]
# One worker: hypothesis describes strategies through a cache that is not thread-safe.
COMMON = ["--workers", "1", "--seed", "2026", "--no-color"]


def long_form(seconds: int) -> list[str]:
    return ["--max-examples", "1000", "--max-time", str(seconds)]


async def admin_token(server: ServerProcess) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/api/v1/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        token: str = (await response.json())["access_token"]
        return token


async def fuzz_target(server: ServerProcess, token: str) -> dict[str, Any]:
    """What the hooks swap generated ids for: the fleet under test's vehicles."""
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.get(f"{server.url}/api/v1/vehicles", params={"fleet": TARGET_FLEET}) as response,
    ):
        assert response.status == 200, await response.text()
        vehicles = await response.json()
    assert vehicles
    return {
        "fleet": TARGET_FLEET,
        "profile": PROFILE,
        "vehicles": [vehicle["vehicle_id"] for vehicle in vehicles],
    }


async def requests_served(server: ServerProcess) -> int:
    """How many requests the server answered, by its own metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        text = await response.text()
    counts = re.findall(r"^sovd_http_request_duration_seconds_count\{.*\} (\S+)$", text, re.M)
    return int(sum(float(count) for count in counts))


async def run_schemathesis(
    server: ServerProcess, token: str, target: dict[str, Any], options: list[str], timeout_s: float
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        *COMMON,
        *options,
        cwd=ROOT,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
            "SOVD_FUZZ_TARGET": json.dumps(target),
            "PYTHONPATH": str(ROOT),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    tmp_path: Path, own_pg_dsn: str, redis_url: str
) -> None:
    seconds = int(os.environ.get("SOVD_FUZZ_SECONDS", "0"))
    fleet, config = tmp_path / "fleet.toml", tmp_path / "server.toml"
    fleet.write_text(FLEET)
    config.write_text(SERVER_CONFIG)
    server = await ServerProcess(
        "--config",
        str(config),
        "--fleet",
        str(fleet),
        env={
            "SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "JWT_SECRET": "fuzz-secret-" + "f" * 40,
            "DATABASE_URL": own_pg_dsn,
            "REDIS_URL": redis_url,
        },
    ).start()
    try:
        token = await admin_token(server)
        target = await fuzz_target(server, token)
        options = long_form(seconds) if seconds else SHORT_FORM
        code, output = await run_schemathesis(server, token, target, options, seconds + 300)
        served = await requests_served(server)
    finally:
        await server.stop()
    if seconds:
        print(output, f"\nThe server answered {served} requests.")
    assert code == 0, output
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None and cases[1] == cases[2] and int(cases[1]) > 0, output
    assert served >= int(cases[1])
    assert server.errors() == [], server.errors()
