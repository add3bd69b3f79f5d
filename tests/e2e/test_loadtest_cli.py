"""`sovd-sim loadtest` against a server process."""

from __future__ import annotations

import pytest

from tests.support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e
PASSWORD = "loadtest-admin-password"


async def test_loadtest_sends_the_offered_load_and_sees_every_completion() -> None:
    server = await ServerProcess(
        env={"SOVD_ADMIN_PASSWORD": PASSWORD, "SOVD_LATENCY_MS": "1,2"}
    ).start()
    try:
        code, out, err = await run_cli(
            "loadtest",
            "--url",
            server.url,
            "--rate",
            "100",
            "--duration",
            "1",
            env={"SOVD_LOADTEST_PASSWORD": PASSWORD},
        )
    finally:
        await server.stop()
    assert code == 0, err
    assert (
        "sent 100, accepted 100, rejected {}, client errors {}, unanswered when the run ended 0"
        in out
    )
    assert "terminal {'completed': 100}, never finished 0" in out
    assert "POST-to-completed ms: p50" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--rate", "0"], "must be > 0"), (["--params", "[1]"], "must be a JSON object")],
)
async def test_loadtest_misuse_exits_2(args: list[str], fragment: str) -> None:
    code, _, err = await run_cli("loadtest", *args)
    assert code == 2
    assert fragment in err
