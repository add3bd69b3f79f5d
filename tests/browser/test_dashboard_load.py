"""The dashboard with 100,000 vehicles and a fleet feed of about 2,000 events/s for a minute.

Checked: every event reaches the page without a reconnect; no task of the page's main thread
takes 200 ms of CPU (Chromium's trace); the main thread needs well under half a core, so
the feed cannot build a backlog; the heap stays small. Reported beside them, as measured on
this machine: long tasks by wall clock (PerformanceObserver), the widest gap between frames,
and how far the page's feed was behind a second reader in this process. Those wall-clock
figures also measure whatever else the machine runs, so they are printed, not asserted.

About 90 s, so it is `slow` (run it with `-m slow`)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, Screenshots, api_token, sign_in
from tests.browser.test_dashboard import DASH, run_loadtest
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet-100k.toml"
# 500 commands/s, each with four events on the feed: pending, in_progress, its reply, the end.
RATE = 500
LOAD_S = 60
TASK_CPU_LIMIT_MS = 200
MAIN_THREAD_CPU_LIMIT = 0.5
HEAP_LIMIT_MB = 40

WATCH_FRAMES = """() => {
    window.__frames = { longTasks: [], worstGapMs: 0, frames: 0 };
    new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
            const at = Math.round(entry.startTime);
            window.__frames.longTasks.push([at, Math.round(entry.duration)]);
        }
    }).observe({ type: "longtask" });
    let last = performance.now();
    const tick = (now) => {
        window.__frames.worstGapMs = Math.max(window.__frames.worstGapMs, now - last);
        window.__frames.frames += 1;
        last = now;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


@pytest.fixture
async def server() -> AsyncIterator[ServerProcess]:
    server = ServerProcess("--fleet", str(FLEET), env={"SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD})
    await server.start(timeout_s=60)
    try:
        yield server
    finally:
        await server.stop()


async def heap_mb(cdp: Any) -> float:
    """The JavaScript heap in use after a full garbage collection."""
    await cdp.send("HeapProfiler.collectGarbage")
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    used = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")
    return float(used) / 2**20


async def renderer_seconds(cdp: Any) -> dict[str, float]:
    """Main-thread time the page has spent so far, by kind (Chromium's own counters)."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    kinds = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    return {m["name"]: float(m["value"]) for m in metrics if m["name"] in kinds}


TRACE_CATEGORIES = ["toplevel", "disabled-by-default-devtools.timeline"]
TASK_NAMES = {"RunTask", "ThreadControllerImpl::RunTask"}


async def start_tracing(cdp: Any) -> None:
    config = {"includedCategories": TRACE_CATEGORIES, "recordMode": "recordContinuously"}
    await cdp.send("Tracing.start", {"traceConfig": config, "transferMode": "ReturnAsStream"})


async def main_thread_tasks(cdp: Any) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of every task the page's main thread ran since tracing started: the
    CPU time is the page's own cost, whatever else the machine was doing meanwhile."""
    complete: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    cdp.on("Tracing.tracingComplete", lambda params: complete.set_result(params))
    await cdp.send("Tracing.end")
    handle = (await complete)["stream"]
    chunks = []
    while True:
        read = await cdp.send("IO.read", {"handle": handle, "size": 1 << 20})
        chunks.append(
            base64.b64decode(read["data"]).decode() if read.get("base64Encoded") else read["data"]
        )
        if read.get("eof"):
            break
    await cdp.send("IO.close", {"handle": handle})
    document = json.loads("".join(chunks))
    events = document["traceEvents"] if isinstance(document, dict) else document
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    return [
        (e["dur"] / 1000, e.get("tdur", e["dur"]) / 1000)
        for e in events
        if e.get("ph") == "X" and e.get("name") in TASK_NAMES and (e["pid"], e["tid"]) in main
    ]


def load_totals(artifacts: Path) -> dict[str, Any]:
    totals: dict[str, Any] = json.loads((artifacts / "loadtest.json").read_text())["totals"]
    return totals


async def feed_total(page: Any) -> int:
    text = await page.locator("#feed-total").text_content()
    return int((text or "0").replace(",", ""))


class FeedObserver:
    """A second reader of the fleet feed beside the page, in this process: how fresh the
    newest event is when it reaches any client, so the server's own delay under load is
    not counted against the page."""

    def __init__(self) -> None:
        self.lag_ms = 0.0

    async def follow(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        query = {"batch": "true", "status": "completed,failed,timed_out", "token": token}
        async with http.ws_connect(f"{url}/ws/fleet", params=query) as feed:
            async for message in feed:
                newest = json.loads(message.data)[-1]
                finished = datetime.fromisoformat(newest["completed_at"]).timestamp()
                self.lag_ms = max(0.0, time.time() - finished) * 1000


async def test_a_minute_of_2000_events_per_second_over_100k_vehicles(
    page: Any,
    shots: Screenshots,
    server: ServerProcess,
    artifacts: Path,
    http: aiohttp.ClientSession,
) -> None:
    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    await page.locator("#stat-vehicles", has_text="100,000").wait_for()
    await page.locator(f"#vehicle-page-info:text-is('1{DASH}50 of 100,000')").wait_for()
    await page.locator("#vehicle-next").click()
    await page.locator(f"#vehicle-page-info:text-is('51{DASH}100 of 100,000')").wait_for()
    await page.locator("#vehicle-fleet").select_option("us-malibus")
    await page.locator(f"#vehicle-page-info:text-is('1{DASH}50 of 25,000')").wait_for()
    await shots.take("fleet-100k")
    heap_before = await heap_mb(cdp)

    await page.locator("#nav a[href='#/feed']").click()
    await page.locator("#feed-state[data-state=live]").wait_for()
    await page.evaluate(WATCH_FRAMES)
    await start_tracing(cdp)
    busy_before = await renderer_seconds(cdp)
    load = asyncio.create_task(
        run_loadtest(
            server.url,
            RATE,
            LOAD_S,
            "--mix",
            "ReadDTC:5,ReadDataByID:4,ClearDTC:1",
            "--vehicles",
            "500",
            "--report",
            str(artifacts / "loadtest.json"),
        )
    )
    observer = FeedObserver()
    token = await api_token(http, server.url, "admin", ADMIN_PASSWORD)
    following = asyncio.create_task(observer.follow(http, server.url, token))
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    while not load.done():
        await asyncio.wait({load}, timeout=1)
        page_lag = float(await page.locator("#feed-lag").get_attribute("data-ms") or 0)
        samples.append(
            {
                "at_s": round(time.monotonic() - started, 1),
                "events": await feed_total(page),
                "page_lag_ms": round(page_lag),
                "server_lag_ms": round(observer.lag_ms),
            }
        )
    following.cancel()
    await load
    accepted = load_totals(artifacts)["accepted"]
    pending = page.locator("#feed-counts tr", has_text="pending").locator("td")
    await expect(pending).to_have_text(f"{accepted:,}")  # every command's first event arrived
    frames: dict[str, Any] = await page.evaluate("window.__frames")
    busy_after = await renderer_seconds(cdp)
    load_s = time.monotonic() - started
    tasks = await main_thread_tasks(cdp)
    await shots.take("feed-after-a-minute")
    worst_lag_ms = int(await page.locator("#feed-lag").get_attribute("data-worst-ms") or 0)
    behind_ms = [s["page_lag_ms"] - s["server_lag_ms"] for s in samples if s["events"]]
    reconnects = await page.locator("#feed-state").get_attribute("data-reconnects")
    events = await feed_total(page)
    heap_after = await heap_mb(cdp)

    await page.locator("#nav a[href='#/fleet']").click()
    await page.locator("#stat-p99", has_text=re.compile(r"\d")).wait_for()
    await shots.take("fleet-after-load")

    long_tasks = [duration for _, duration in frames["longTasks"]]
    figures = {
        "events": events,
        "events_per_s": round(events / load_s),
        "main_thread_share": {
            kind: round((busy_after[kind] - busy_before[kind]) / load_s, 3) for kind in busy_after
        },
        "long_tasks": len(long_tasks),
        "longest_task_ms": max(long_tasks, default=0),
        "traced_tasks": len(tasks),
        "longest_task_cpu_ms": round(max((cpu for _, cpu in tasks), default=0), 1),
        "tasks_over_50ms_cpu": sum(cpu > 50 for _, cpu in tasks),
        "main_thread_cpu_share": round(sum(cpu for _, cpu in tasks) / 1000 / load_s, 3),
        "frames": frames["frames"],
        "worst_frame_gap_ms": round(frames["worstGapMs"], 1),
        "worst_feed_lag_ms": worst_lag_ms,
        "page_behind_other_reader_ms": max(behind_ms, default=0),
        "reconnects": int(reconnects or 0),
        "accepted_commands": accepted,
        "heap_before_mb": round(heap_before, 1),
        "heap_after_mb": round(heap_after, 1),
        "samples": samples[::5],
        "long_task_list": frames["longTasks"],
    }
    (artifacts / "figures.json").write_text(json.dumps(figures, indent=2))
    print("dashboard under load:", json.dumps(figures | {"long_task_list": "(figures.json)"}))
    # The server closes a feed whose reader falls too far behind: no reconnect, nothing lost.
    assert figures["reconnects"] == 0
    assert figures["longest_task_cpu_ms"] < TASK_CPU_LIMIT_MS
    assert figures["main_thread_cpu_share"] < MAIN_THREAD_CPU_LIMIT
    assert heap_after < HEAP_LIMIT_MB
