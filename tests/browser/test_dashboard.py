"""The dashboard in a real browser: sign in, the fleet, one vehicle's faults and commands,
the live feed under load, fleets from TOML, signing out."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from typing import Any

import aiohttp
import pytest

from tests.browser.conftest import (
    ADMIN_PASSWORD,
    Screenshots,
    api_token,
    sign_in,
    unlabelled_controls,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
DASH = "\N{EN DASH}"


async def vehicle_with_faults(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    """A connected demo vehicle whose fault memory holds DTCs, with its faulty ECU."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{url}/api/v1/vehicles?status=connected", headers=headers) as response:
        vehicles = await response.json()
    for vehicle in vehicles:
        async with http.get(
            f"{url}/api/v1/vehicles/{vehicle['vehicle_id']}/status", headers=headers
        ) as response:
            health = (await response.json())["health"]
        if health["ecus_with_faults"]:
            return vehicle | {"faulty_ecu": health["ecus_with_faults"][0]}
    raise AssertionError("no demo vehicle has stored faults")


async def submit(
    http: aiohttp.ClientSession, url: str, token: str, vehicle_id: str, name: str, **params: Any
) -> str:
    body = {"vehicle_id": vehicle_id, "command_name": name, "command_params": params}
    async with http.post(
        f"{url}/api/v1/commands", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 202, await response.text()
        command_id: str = (await response.json())["command_id"]
        return command_id


async def run_loadtest(url: str, rate: float, duration: float, *extra: str) -> None:
    """`sovd-sim loadtest` as a process: the project's own open-loop load generator."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "loadtest",
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--quiet",
        *extra,
        env={**os.environ, "SOVD_LOADTEST_PASSWORD": ADMIN_PASSWORD},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), duration + 60)
    assert process.returncode == 0, (out + err).decode()


async def test_an_admin_session_from_sign_in_to_sign_out(
    page: Any,
    shots: Screenshots,
    server: ServerProcess,
    http: aiohttp.ClientSession,
    expected_http_errors: set[int],
) -> None:
    expected_http_errors.add(401)  # the wrong password
    token = await api_token(http, server.url, "admin", ADMIN_PASSWORD)
    target = await vehicle_with_faults(http, server.url, token)
    ecu = target["faulty_ecu"]

    await page.goto(server.url)
    await page.locator("#login-view").wait_for(state="visible")
    assert await page.evaluate("document.activeElement.id") == "login-username"
    await page.locator("#login-username").fill("admin")
    await page.locator("#login-password").fill("not the password")
    await page.locator("#login-password").press("Enter")
    await page.locator("#login-error", has_text="Wrong user name or password.").wait_for()
    await shots.take("login-refused")

    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)
    await page.locator("#stat-vehicles", has_text="10").wait_for()
    await page.locator("#fleet-table tbody tr", has_text="demo-golf").wait_for()
    assert await page.locator("#fleet-table tbody tr").count() == 3
    assert await page.locator("#vehicle-page-info").text_content() == f"1{DASH}10 of 10"
    assert await page.locator("#nav a[href='#/admin']").is_visible()
    assert await unlabelled_controls(page) == []
    await shots.take("fleet")

    await page.locator("#vehicle-search").fill(target["vin"][-6:])
    await page.locator("#vehicle-page-info", has_text=f"1{DASH}1 of 1").wait_for()
    link = page.locator("#vehicle-table tbody a")
    assert await link.text_content() == target["vin"]
    await link.focus()
    await page.keyboard.press("Enter")
    await page.locator("#vehicle-view").wait_for(state="visible")
    await page.locator("#vehicle-vin", has_text=target["vin"]).wait_for()
    faults = page.locator(f"#faults-{ecu}")
    await faults.locator("table").wait_for()
    stored_code = await faults.locator("tbody td.mono").first.text_content()
    assert re.fullmatch(r"[PCBU][0-9A-F]{4}", stored_code or "")
    assert await faults.locator("abbr.bit.on").count() >= 1
    assert await page.locator(f"#security-{ecu}").text_content() == "locked"
    assert await page.locator(f"#session-{ecu}").text_content() == "default"
    sovd = await page.locator("#vehicle-sovd-link").get_attribute("href")
    assert sovd == f"/vehicles/{target['vehicle_id']}/sovd/version-info"
    await shots.take("vehicle")

    await page.locator("#command-type").select_option("ReadDTC")
    await page.locator("#param-ecuAddress").fill(ecu)
    assert await unlabelled_controls(page) == []
    await page.locator("#command-submit").click()
    reply = page.locator("#command-reply")
    await reply.locator(".reply-status[data-status=completed]").wait_for()
    assert stored_code in (await reply.locator("pre").text_content() or "")
    await page.locator("#history-table tbody tr", has_text="ReadDTC").first.wait_for()
    await shots.take("read-dtc-reply")

    await page.locator(f"#clear-{ecu}").click()
    await faults.locator("p.ok", has_text="No stored faults.").wait_for()
    await page.locator("#command-submit").click()
    await reply.locator(".reply-status[data-status=completed]").wait_for()
    assert '"dtcs": []' in (await reply.locator("pre").text_content() or "")
    first_row = page.locator("#history-table tbody tr[data-command-id]").first
    await first_row.locator("button", has_text="Show").click()
    await page.locator("#history-table tr.detail:not([hidden]) pre").first.wait_for()
    await shots.take("dtcs-cleared")

    await page.locator("#nav a[href='#/feed']").click()
    await page.locator("#feed-state[data-state=live]").wait_for()
    await run_loadtest(server.url, 100, 2, "--mix", "ReadDTC:1,ReadDataByID:1")
    await submit(
        http,
        server.url,
        token,
        target["vehicle_id"],
        "ReadDataByID",
        ecuAddress=ecu,
        dataId="0x0001",
    )
    # The loadtest waited for its commands' ends, so the feed carried them before this one.
    nrc = page.locator("#feed-failures tr.sub", has_text="NRC 0x31 requestOutOfRange")
    await nrc.wait_for()
    total = int((await page.locator("#feed-total").text_content() or "").replace(",", ""))
    assert total >= 200 * 4 + 4
    assert await page.locator("#feed-table tbody tr:not([hidden])").count() == 50
    await shots.take("feed-under-load")

    for status in ("pending", "in_progress", "completed"):
        await page.locator(f"#feed-controls input[value={status}]").uncheck()
    await page.locator("#feed-state[data-state=live]").wait_for()
    failing = await submit(
        http,
        server.url,
        token,
        target["vehicle_id"],
        "ReadDataByID",
        ecuAddress=ecu,
        dataId="0x0002",
    )
    row = page.locator(f"#feed-table tbody tr[data-command-id='{failing}']")
    await row.wait_for()
    assert await row.locator("td").nth(1).text_content() == "failed"
    newest = page.locator("#feed-table tbody tr").first
    assert await newest.get_attribute("data-command-id") == failing
    await shots.take("feed-failures-only")

    await page.locator("#logout").click()
    await page.locator("#login-view").wait_for(state="visible")
    assert not await page.locator("#nav").is_visible()
    await shots.take("signed-out")


async def test_admins_spawn_and_delete_fleets_from_toml(
    page: Any, shots: Screenshots, server: ServerProcess, expected_http_errors: set[int]
) -> None:
    expected_http_errors.add(422)  # the broken fleet config
    await sign_in(page, server.url, "admin", ADMIN_PASSWORD)
    await page.locator("#nav a[href='#/admin']").click()
    await page.locator("#admin-fleet-table tbody tr", has_text="demo-golf").wait_for()
    await page.locator("#cluster-summary", has_text="Cluster mode is off").wait_for()
    assert await page.locator("#cluster-detail").is_hidden()

    await page.locator("#fleet-toml").fill(
        '[[fleets]]\nname = "broken"\ncount = -1\nprofile = "vw-golf"\n'
    )
    await page.locator("#fleet-form button").click()
    await page.locator("#fleet-result li", has_text="fleets[0].count").wait_for()
    await page.locator("#fleet-toml").fill(
        '[[fleets]]\nname = "berlin"\ncount = 25\nprofile = "vw-golf"\nvin_prefix = "WVWZZZ9X"\n'
    )
    await page.locator("#fleet-form button").click()
    await page.locator("#fleet-result", has_text="Spawned 25 vehicles: berlin.").wait_for()
    berlin = page.locator("#admin-fleet-table tbody tr[data-fleet=berlin]")
    await berlin.wait_for()
    await page.locator("#audit-table tbody tr", has_text="user_login").first.wait_for()
    assert "admin" in (await page.locator("#user-facts").text_content() or "")
    assert await unlabelled_controls(page) == []
    await shots.take("admin")

    delete = berlin.locator("button")
    await delete.click()
    await delete.filter(has_text="Really delete berlin?").wait_for()
    await delete.click()
    await berlin.wait_for(state="detached")
    await page.locator("#nav a[href='#/fleet']").click()
    await page.locator("#stat-vehicles", has_text="10").wait_for()
    await shots.take("fleet-after-delete")
