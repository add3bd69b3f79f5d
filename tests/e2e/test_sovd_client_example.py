"""examples/sovd_client.py, run as a user would against a server process: SOVD paths only."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "sovd_client.py"
FLEET = """
[profiles.worn-golf]
extends = "vw-golf"
dtcs = [{ ecu = "0x01", code = "P0420", probability = 1.0, status = 0x2F }]

[[fleets]]
name = "workshop"
count = 1
profile = "worn-golf"
"""


async def test_the_example_client_reads_clears_and_self_tests(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    server = await ServerProcess(
        "--fleet",
        str(fleet),
        env={"SOVD_ADMIN_PASSWORD": "admin-pw-123", "SOVD_TIME_SCALE": "0.05"},
    ).start()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            server.url,
            "admin",
            "admin-pw-123",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await server.stop()
    text = out.decode()
    assert process.returncode == 0, text
    assert "engine-control-module: 1 faults ['P0420" in text
    assert "cleared; 0 left" in text
    assert "self-test completed, 100 %" in text
    assert "VIN: " in text
