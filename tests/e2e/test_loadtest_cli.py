"""`sovd-sim loadtest` against a server process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.support.server import ServerProcess, run_cli

pytestmark = pytest.mark.e2e
PASSWORD = "loadtest-admin-password"
LOGIN = {"SOVD_LOADTEST_PASSWORD": PASSWORD}


async def start_server() -> ServerProcess:
    return await ServerProcess(
        env={"SOVD_ADMIN_PASSWORD": PASSWORD, "SOVD_LATENCY_MS": "1,2"}
    ).start()


def metric_samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Prometheus text -> {labels: value} of one metric."""
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match[1]))
            samples[labels] = float(match[2])
    return samples


async def test_loadtest_sends_the_offered_load_and_sees_every_completion() -> None:
    server = await start_server()
    try:
        code, out, err = await run_cli(
            "loadtest", "--url", server.url, "--rate", "100", "--duration", "1.5", env=LOGIN
        )
    finally:
        await server.stop()
    assert code == 0, err
    assert (
        "sent 150, accepted 150, rejected {}, client errors {}, unanswered when the run ended 0"
        in out
    )
    assert "terminal {'completed': 150}, never finished 0" in out
    assert "POST-to-completed ms: p50" in out
    assert re.search(r"^loadtest +\d+\.\ds  sent \d+ ", err, re.MULTILINE), "progress each second"


async def test_a_mixed_load_reports_what_the_server_counted(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    server = await start_server()
    try:
        code, out, err = await run_cli(
            "loadtest",
            "--url",
            server.url,
            "--rate",
            "100",
            "--duration",
            "1.2",
            "--mix",
            "ReadDTC:5,ReadDataByID:4,ClearDTC:1",
            "--ws-fraction",
            "0.25",
            "--quiet",
            "--report",
            str(report_file),
            "--slo",
            "p99_ms=5000,error_rate=0.01",
            env=LOGIN,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/metrics") as response,
        ):
            metrics = await response.text()
    finally:
        await server.stop()
    assert code == 0, err
    assert err == "", "--quiet: no progress line"
    assert "SLO p99_ms <= 5000: met" in out
    report = json.loads(report_file.read_text())

    totals = report["totals"]
    assert totals["sent"] == totals["accepted"] == 120
    commands = report["commands"]
    assert {name: c["sent"] for name, c in commands.items()} == {
        "ReadDTC": 60,
        "ReadDataByID": 48,
        "ClearDTC": 12,
    }
    counted = metric_samples(metrics, "sovd_commands_total")
    reported = {
        frozenset({("command_name", name), ("status", status)}): float(n)
        for name, c in commands.items()
        for status, n in c["terminal"].items()
    }
    assert counted == reported
    posts = metric_samples(metrics, "sovd_http_request_duration_seconds_count")
    submitted = {
        dict(labels)["status"]: value
        for labels, value in posts.items()
        if ("route", "/api/v1/commands") in labels and ("method", "POST") in labels
    }
    assert submitted == {code: float(n) for code, n in report["http_status"].items()}

    streams = report["streams"]
    assert streams["followed"] == streams["completed"] == 30
    assert streams["events"] >= 2 * 30  # at least the reply and the terminal status each
    assert report["latency_ms"]["stream"]["count"] == 30
    assert sum(row["sent"] for row in report["timeseries"]) == 120
    assert report["slo"]["error_rate"] == {"limit": 0.01, "value": 0.0, "met": True}


async def test_a_failed_objective_exits_1_and_says_which() -> None:
    server = await start_server()
    try:
        code, out, err = await run_cli(
            "loadtest",
            "--url",
            server.url,
            "--rate",
            "50",
            "--duration",
            "0.4",
            "--quiet",
            "--slo",
            "error_rate=0.5,p50_ms=0",
            env=LOGIN,
        )
    finally:
        await server.stop()
    assert code == 1
    assert "SLO error_rate <= 0.5: met" in out
    assert "SLO p50_ms <= 0: FAILED (POST-to-completed p50 (ms): " in out
    assert err.endswith("sovd-sim loadtest: SLO failed: p50_ms\n")


async def test_a_command_the_server_lacks_exits_2() -> None:
    server = await start_server()
    try:
        code, _, err = await run_cli(
            "loadtest", "--url", server.url, "--command", "Teleport", "--params", "{}", env=LOGIN
        )
    finally:
        await server.stop()
    assert code == 2
    assert "sovd-sim loadtest: the server has no command Teleport; it has ClearDTC" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--rate", "0"], "must be > 0"),
        (["--params", "[1]"], "must be a JSON object"),
        (["--mix", "ReadDTC:0"], "argument --mix: the weight of ReadDTC must be >= 1, got 0"),
        (["--mix", "WriteDataByID:1"], "no default parameters for 'WriteDataByID'"),
        (["--mix", "ReadDTC", "--command", "ClearDTC"], "not allowed with argument --mix"),
        (["--mix", "ReadDTC", "--params", "{}"], "--params goes with --command"),
        (["--ws-fraction", "1.5"], "must be between 0 and 1, got 1.5"),
        (["--slo", "p42=1"], "argument --slo: unknown objective 'p42'"),
        (["--command", "WriteDataByID"], "no default parameters for 'WriteDataByID'"),
    ],
)
async def test_loadtest_misuse_exits_2(args: list[str], fragment: str) -> None:
    code, _, err = await run_cli("loadtest", *args, env=LOGIN)
    assert code == 2
    assert fragment in err
