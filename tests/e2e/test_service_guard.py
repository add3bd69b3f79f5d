"""An unreachable service fails the integration tests under CI and skips them elsewhere."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.support.server import free_port

pytestmark = pytest.mark.e2e

CLOSED = f"127.0.0.1:{free_port()}"
CASES = [
    (
        "TEST_DATABASE_URL",
        f"postgresql://root@{CLOSED}/test",
        "test_store_contract.py",
        "idempotency_key_holds_one_command and postgresql",
    ),
    (
        "TEST_REDIS_URL",
        f"redis://{CLOSED}/0",
        "test_event_bus.py",
        "two_subscribers_each_get_every_event and redis",
    ),
]


async def run_pytest(test_file: str, selector: str, env: dict[str, str]) -> tuple[int, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "CI"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        f"tests/integration/{test_file}",
        "-k",
        selector,
        "-q",
        env={**inherited, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize(("variable", "url", "test_file", "selector"), CASES)
async def test_unreachable_service_fails_under_ci_and_skips_elsewhere(
    variable: str, url: str, test_file: str, selector: str
) -> None:
    code, out = await run_pytest(test_file, selector, {variable: url, "CI": "true"})
    assert code == 1, out
    assert "CI requires it" in out

    code, out = await run_pytest(test_file, selector, {variable: url})
    assert code == 0, out
    assert "1 skipped" in out
