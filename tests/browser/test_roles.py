"""What each role sees in the dashboard: viewers look, engineers act on vehicles, only admins
get the fleet feed and the admin page. Accounts come from `sovd-sim user add`, so this runs on
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import ADMIN_PASSWORD, Screenshots, sign_in
from tests.conftest import TABLES
from tests.support.server import ServerProcess, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]

SECRET = "browser-roles-secret-" + "r" * 40
PASSWORDS = {"vera": "vera-viewer-password-1", "alice": "alice-engineer-password-1"}
ROLES = {"vera": "viewer", "alice": "engineer"}


@pytest.fixture
async def server(pg_dsn: str) -> AsyncIterator[ServerProcess]:
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(f"TRUNCATE {TABLES} CASCADE")
    await conn.close()
    env = {"DATABASE_URL": pg_dsn, "JWT_SECRET": SECRET, "SOVD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    for name, role in ROLES.items():
        code, out, err = await run_cli(
            "user", "add", name, "--role", role, env=env, stdin=f"{PASSWORDS[name]}\n".encode()
        )
        assert code == 0, out + err
    server = await ServerProcess(env=env).start()
    try:
        yield server
    finally:
        await server.stop()


async def open_vehicle_with_faults(page: Any) -> str:
    """Opens the first vehicle whose fault memory holds DTCs; returns the faulty ECU."""
    for index in range(await page.locator("#vehicle-table tbody a").count()):
        await page.locator("#vehicle-table tbody a").nth(index).click()
        await page.locator("#vehicle-vin").wait_for()
        await page.locator("#ecu-list[data-faults-read=all]").wait_for()
        faulty = page.locator("#ecu-list .faults:not([data-faults='0'])")
        if await faulty.count():
            box_id = await faulty.first.get_attribute("id")
            return (box_id or "").removeprefix("faults-")
        await page.go_back()
        await page.locator("#fleet-view").wait_for(state="visible")
    raise AssertionError("no demo vehicle has stored faults")


async def test_a_viewer_sees_the_fleet_and_faults_but_acts_on_nothing(
    page: Any, shots: Screenshots, server: ServerProcess
) -> None:
    await sign_in(page, server.url, "vera", PASSWORDS["vera"])
    assert await page.locator("#account-role").text_content() == "viewer"
    assert not await page.locator("#nav a[href='#/feed']").is_visible()
    assert not await page.locator("#nav a[href='#/admin']").is_visible()
    await page.locator("#stat-vehicles", has_text="10").wait_for()

    ecu = await open_vehicle_with_faults(page)

    assert await page.locator(f"#faults-{ecu} table tbody tr").count() >= 1
    assert await page.locator("#ecu-list button.danger").count() == 0
    assert not await page.locator("#run-section").is_visible()
    assert not await page.locator("#history-section").is_visible()
    assert await page.locator("#history-note").is_visible()
    await shots.take("viewer-vehicle")

    await page.evaluate("location.hash = '#/admin'")
    await page.locator("#toast", has_text="That page is for admins.").wait_for()
    assert await page.locator("#fleet-view").is_visible()


async def test_an_engineer_runs_commands_but_has_no_admin_pages(
    page: Any, shots: Screenshots, server: ServerProcess
) -> None:
    await sign_in(page, server.url, "alice", PASSWORDS["alice"])
    assert not await page.locator("#nav a[href='#/feed']").is_visible()

    ecu = await open_vehicle_with_faults(page)
    await page.locator("#command-type").select_option("ReadDataByID")
    await page.locator("#param-ecuAddress").fill(ecu)
    await page.locator("#param-dataId").fill("0xF190")
    await page.locator("#command-submit").click()

    reply = page.locator("#command-reply")
    await reply.locator(".reply-status[data-status=completed]").wait_for()
    vin = await page.locator("#vehicle-vin").text_content()
    assert f'"value": "{vin}"' in (await reply.locator("pre").text_content() or "")
    await page.locator("#history-table tbody tr", has_text="ReadDataByID").first.wait_for()
    assert await page.locator(f"#clear-{ecu}").is_visible()
    await shots.take("engineer-vehicle")

    await page.evaluate("location.hash = '#/feed'")
    await page.locator("#fleet-view").wait_for(state="visible")
