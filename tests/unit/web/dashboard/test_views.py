"""The dashboard's page, its static files and the statistics endpoint it charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from db.memory import MemoryStore
from tests.conftest import MakeClient
from tests.support.api import Client, bearer, seed_users, token_for
from web.config import Config
from web.dashboard.views import STATIC_DIR

IMPORT = re.compile(r"""^import .* from "(\./[^"]+)";$""", re.M)


@pytest.fixture
async def client(make_client: MakeClient, config: Config) -> Client:
    store = MemoryStore()
    await seed_users(store, config)
    return await make_client(store=store)


@pytest.mark.parametrize("path", ["/", "/dashboard/"])
async def test_the_page_is_served_with_a_policy_that_forbids_inline_code(
    client: Client, path: str
) -> None:
    response = await client.get(path)

    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    page = await response.text()
    assert '<script type="module" src="/dashboard/static/js/app.js"></script>' in page
    assert "<script>" not in page and " style=" not in page and " on" + "click=" not in page


async def test_dashboard_without_a_slash_redirects(client: Client) -> None:
    response = await client.get("/dashboard", allow_redirects=False)

    assert response.status == 308
    assert response.headers["Location"] == "/dashboard/"


async def test_every_file_the_page_and_its_modules_load_is_served(client: Client) -> None:
    page = (STATIC_DIR / "index.html").read_text()
    wanted = set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', page))
    for module in (STATIC_DIR / "js").glob("*.js"):
        imported = IMPORT.findall(module.read_text())
        wanted |= {f"/dashboard/static/js/{Path(name).name}" for name in imported}
    assert "/dashboard/static/js/session.js" in wanted

    for path in sorted(wanted):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if path.endswith(".js"):
            assert response.content_type == "text/javascript"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/../views.py",
        "/dashboard/static/%2e%2e/views.py",
        "/dashboard/static/js/missing.js",
        "/dashboard/static/js",
        "/dashboard/static/README.txt",
    ],
)
async def test_nothing_outside_the_static_files_is_served(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status == 404


async def test_statistics_need_a_signed_in_user(client: Client) -> None:
    assert (await client.get("/api/v1/stats")).status == 401

    response = await client.get("/api/v1/stats", headers=bearer(await token_for(client, "vera")))

    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"


async def until_finished(client: Client, command_id: str, token: str) -> None:
    """Reads the command's stream until the server closes it after the terminal event."""
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        async for _ in ws:
            pass
    assert ws.close_code == 1000


async def test_statistics_count_the_fleet_and_the_commands_it_ran(client: Client) -> None:
    token = await token_for(client, "alice")
    headers = bearer(token)
    vehicles = await (await client.get("/api/v1/vehicles?limit=1", headers=headers)).json()
    vehicle = await (
        await client.get(f"/api/v1/vehicles/{vehicles[0]['vehicle_id']}", headers=headers)
    ).json()
    ecu = vehicle["ecus"][0]["ecu_address"]
    for name, params in (
        ("ReadDTC", {"ecuAddress": ecu}),
        ("ReadDataByID", {"ecuAddress": ecu, "dataId": "0x0001"}),
    ):
        body = {"vehicle_id": vehicle["vehicle_id"], "command_name": name, "command_params": params}
        submitted = await client.post("/api/v1/commands", json=body, headers=headers)
        assert submitted.status == 202, await submitted.text()
        await until_finished(client, (await submitted.json())["command_id"], token)

    stats = await (await client.get("/api/v1/stats", headers=headers)).json()

    commands = stats["commands"]
    assert len(commands["completed"]) == commands["seconds"] == 300
    assert commands["totals"] | {"accepted": 2, "completed": 1, "failed": 1} == commands["totals"]
    assert commands["failures"]["nrc"] == 1
    assert list(commands["nrcs"]) == ["NRC 0x31 requestOutOfRange"]
    assert commands["totals"]["p50_ms"] > 0
    assert stats["actors"]["vehicles"] == 10
    fleets = {fleet["name"]: fleet for fleet in stats["fleets"]}
    assert set(fleets) == {"demo-golf", "demo-f150", "demo-malibu"}
    assert sum(sum(f["vehicles_by_connection"].values()) for f in fleets.values()) == 10
    assert fleets["demo-golf"] | {"profile": "vw-golf", "count": 4} == fleets["demo-golf"]
