"""The fleets API (admins): spawn from a JSON fleet config, list, delete; all or nothing,
idempotent, kept across restarts; on both stores."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from db.postgres import PostgresStore
from db.repositories import Store, VehicleFilter
from sovd.fleet import build_fleet
from sovd.fleet_config import parse_fleet_config
from sovd.records import Vehicle
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from tests.support.fleets import without_recorded_fleets
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]

BERLIN: dict[str, Any] = {
    "simulation": {"seed": 42},
    "profiles": {
        "city-golf": {
            "extends": "vw-golf",
            "connectivity": {"disconnected": 0.1},
        }
    },
    "fleets": [{"name": "berlin", "count": 12, "profile": "city-golf", "vin_prefix": "WVWZZZ1K"}],
}
DEMO_NAMES = {"demo-golf", "demo-f150", "demo-malibu"}


def fleet(name: str, count: int, profile: str = "ford-f150", **extra: Any) -> dict[str, Any]:
    return {"fleets": [{"name": name, "count": count, "profile": profile, **extra}]}


@pytest.fixture
async def fleet_store(backend: Backend) -> AsyncIterator[Store]:
    async for clean in without_recorded_fleets(backend.store):
        yield clean


@pytest.fixture
async def client(
    make_client: MakeClient, fleet_store: Store, backend: Backend, config: Config
) -> Client:
    await seed_users(fleet_store, config)
    return await make_client(store=fleet_store, bus=backend.bus)


@pytest.fixture
async def root(client: Client) -> dict[str, str]:
    return bearer(await token_for(client, "root"))


async def total(client: Client, headers: dict[str, str], query: str = "") -> int:
    response = await client.get(f"/api/v1/vehicles?limit=1{query}", headers=headers)
    assert response.status == 200
    return int(response.headers["X-Total-Count"])


async def fleets(client: Client, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/fleets", headers=headers)
    assert response.status == 200
    return {f["name"]: f for f in await response.json()}


async def test_only_admins_manage_fleets(client: Client) -> None:
    for name in ("vera", "alice"):
        headers = bearer(await token_for(client, name))
        assert (await client.get("/api/v1/fleets", headers=headers)).status == 403
        assert (await client.post("/api/v1/fleets", json=BERLIN, headers=headers)).status == 403
        assert (await client.delete("/api/v1/fleets/demo-golf", headers=headers)).status == 403
    assert (await client.get("/api/v1/fleets")).status == 401


async def test_the_demo_fleet_runs_unrecorded(client: Client, root: dict[str, str]) -> None:
    listed = await fleets(client, root)

    assert set(listed) == DEMO_NAMES
    golf = listed["demo-golf"]
    assert golf | {"count": 4, "profile": "vw-golf", "origin": "demo"} == golf
    assert (golf["running"], golf["recorded"]) == (True, False)


async def test_a_posted_fleet_config_spawns_and_records_its_fleets(
    client: Client, root: dict[str, str], fleet_store: Store
) -> None:
    response = await client.post("/api/v1/fleets", json=BERLIN, headers=root)

    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["vehicles"] == 12
    (spawned,) = body["fleets"]
    assert spawned | {"name": "berlin", "count": 12, "seed": 42, "created": True} == spawned
    assert spawned["connectivity"]["disconnected"] == 0.1
    assert await total(client, root, "&fleet=berlin") == 12
    assert await total(client, root) == 22
    listed = await fleets(client, root)
    assert (
        listed["berlin"] | {"origin": "api", "recorded": True, "running": True}
        == (listed["berlin"])
    )
    (record,) = await fleet_store.fleets.list()
    assert (record.name, record.vehicle_count) == ("berlin", 12)
    expected = build_fleet(parse_fleet_config(BERLIN).fleets[0])
    page = await fleet_store.vehicles.list(VehicleFilter(fleet="berlin"))
    assert {v.vehicle_id for v in page.items} == {v.vehicle_id for v in expected}


async def test_spawning_the_same_config_again_changes_nothing(
    client: Client, root: dict[str, str]
) -> None:
    first = await client.post("/api/v1/fleets", json=BERLIN, headers=root)
    listed = await (await client.get("/api/v1/vehicles?limit=1000", headers=root)).json()

    again = await client.post("/api/v1/fleets", json=BERLIN, headers=root)

    assert (first.status, again.status) == (201, 200)
    body = await again.json()
    assert (body["vehicles"], body["fleets"][0]["created"]) == (0, False)
    assert await (await client.get("/api/v1/vehicles?limit=1000", headers=root)).json() == listed


async def test_a_bad_config_spawns_nothing_and_names_each_mistake(
    client: Client, root: dict[str, str]
) -> None:
    document = {
        "fleets": [
            {"name": "fine", "count": 3, "profile": "vw-golf"},
            {"name": "bad", "count": -3, "profile": "vw-golff", "colour": "red"},
        ]
    }

    response = await client.post("/api/v1/fleets", json=document, headers=root)

    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "invalid_fleet_config"
    assert problem["errors"] == [{"field": "fleets[1].colour", "message": "unknown key"}]
    document["fleets"][1].pop("colour")
    problem = await (await client.post("/api/v1/fleets", json=document, headers=root)).json()
    assert [e["field"] for e in problem["errors"]] == ["fleets[1].count", "fleets[1].profile"]
    assert set(await fleets(client, root)) == DEMO_NAMES
    assert await total(client, root) == 10


BERLIN_TOML = """
[simulation]
seed = 42

[profiles.city-golf]
extends = "vw-golf"
connectivity = { disconnected = 0.1 }

[[fleets]]
name = "berlin"
count = 12
profile = "city-golf"
vin_prefix = "WVWZZZ1K"
"""


async def test_a_fleet_config_posted_as_toml_spawns_like_its_json(
    client: Client, root: dict[str, str]
) -> None:
    headers = root | {"Content-Type": "application/toml"}

    response = await client.post("/api/v1/fleets", data=BERLIN_TOML, headers=headers)

    assert response.status == 201, await response.text()
    assert (await response.json())["vehicles"] == 12
    again = await client.post("/api/v1/fleets", json=BERLIN, headers=root)
    assert again.status == 200
    assert (await again.json())["fleets"][0]["created"] is False
    berlin = (await fleets(client, root))["berlin"]
    assert sum(berlin["vehicles_by_connection"].values()) == 12
    assert berlin["vehicles_by_connection"].get("disconnected", 0) >= 1


async def test_bad_toml_spawns_nothing_and_names_the_line(
    client: Client, root: dict[str, str]
) -> None:
    headers = root | {"Content-Type": "application/toml"}

    response = await client.post(
        "/api/v1/fleets", data='[[fleets]]\nname = "x"\ncount = = 3\n', headers=headers
    )

    assert response.status == 422
    (error,) = (await response.json())["errors"]
    assert error["field"].startswith("line 3")
    assert "invalid TOML" in error["message"]
    not_text = await client.post("/api/v1/fleets", data=b"\xff\xfe", headers=headers)
    assert not_text.status == 400
    assert set(await fleets(client, root)) == DEMO_NAMES


async def test_another_definition_under_a_running_name_is_a_conflict(
    client: Client, root: dict[str, str]
) -> None:
    await client.post("/api/v1/fleets", json=fleet("trucks", 5), headers=root)

    response = await client.post("/api/v1/fleets", json=fleet("trucks", 6), headers=root)

    assert response.status == 409
    assert (await response.json())["code"] == "fleet_conflict"
    assert await total(client, root, "&fleet=trucks") == 5


async def test_a_vin_clash_spawns_none_of_the_fleets(
    client: Client, root: dict[str, str], fleet_store: Store
) -> None:
    document = {
        "fleets": [
            {"name": "fine", "count": 3, "profile": "vw-golf", "seed": 1},
            {"name": "clashing", "count": 3, "profile": "ford-f150", "seed": 1},
        ]
    }
    taken = build_fleet(parse_fleet_config(document).fleets[1])[2]
    stranger = Vehicle(
        uuid.UUID(int=12345),
        taken.vin,
        "Ford",
        "F-150",
        2020,
        "connected",
        datetime.now(UTC),
        fleet="elsewhere",
    )
    await fleet_store.vehicles.upsert_many([stranger])

    response = await client.post("/api/v1/fleets", json=document, headers=root)

    assert response.status == 409
    assert taken.vin in (await response.json())["detail"]
    assert set(await fleets(client, root)) == DEMO_NAMES
    assert await total(client, root) == 11


async def test_deleting_a_fleet_removes_its_vehicles(client: Client, root: dict[str, str]) -> None:
    body = await (await client.post("/api/v1/fleets", json=BERLIN, headers=root)).json()
    assert body["vehicles"] == 12
    vehicle = build_fleet(parse_fleet_config(BERLIN).fleets[0])[0]

    response = await client.delete("/api/v1/fleets/berlin", headers=root)

    assert response.status == 204
    assert await total(client, root) == 10
    assert "berlin" not in await fleets(client, root)
    alice = bearer(await token_for(client, "alice"))
    command = await client.post(
        "/api/v1/commands",
        json={"vehicle_id": str(vehicle.vehicle_id), "command_name": "ReadDTC"},
        headers=alice,
    )
    assert command.status == 404
    gone = await client.delete("/api/v1/fleets/berlin", headers=root)
    assert gone.status == 404
    assert (await gone.json())["code"] == "fleet_not_found"


async def test_a_fleet_with_commands_running_is_not_deleted(
    make_client: MakeClient, fleet_store: Store, config: Config
) -> None:
    await seed_users(fleet_store, config)
    client = await make_client(
        store=fleet_store, server=attrs.evolve(config.server, shutdown_timeout_s=0.05)
    )
    root = bearer(await token_for(client, "root"))
    slow = fleet("slow", 2, latency={"min_ms": 60000, "max_ms": 60000})
    assert (await client.post("/api/v1/fleets", json=slow, headers=root)).status == 201
    vehicle = build_fleet(parse_fleet_config(slow).fleets[0])[0]
    alice = await token_for(client, "alice")
    submitted = await client.post(
        "/api/v1/commands",
        json={
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": "0x10"},
        },
        headers=bearer(alice),
    )
    assert submitted.status == 202  # queued in the vehicle's mailbox by now

    response = await client.delete("/api/v1/fleets/slow", headers=root)

    assert response.status == 409
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["code"] == "fleet_busy"


async def test_recorded_fleets_come_back_after_a_restart(
    make_client: MakeClient, fleet_store: Store, config: Config
) -> None:
    await seed_users(fleet_store, config)
    first = await make_client(store=fleet_store)
    root = bearer(await token_for(first, "root"))
    await first.post("/api/v1/fleets", json=BERLIN, headers=root)
    before = await (await first.get("/api/v1/vehicles?limit=1000", headers=root)).json()
    await first.close()

    second = await make_client(store=fleet_store)
    root = bearer(await token_for(second, "root"))
    listed = await fleets(second, root)
    after = await (await second.get("/api/v1/vehicles?limit=1000", headers=root)).json()

    assert set(listed) == {"berlin"}
    assert listed["berlin"]["origin"] == "store"
    assert after == [v for v in before if v["metadata"]["fleet"] == "berlin"]


async def test_a_restart_with_the_same_fleet_file_rewrites_nothing(
    make_client: MakeClient, fleet_store: Store, config: Config, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('[[fleets]]\nname = "vans"\ncount = 8\nprofile = "ford-f150"\nseed = 4\n')
    simulation = attrs.evolve(config.simulation, fleet=str(path))
    await seed_users(fleet_store, config)
    first = await make_client(store=fleet_store, simulation=simulation)
    await first.close()
    versions = "SELECT vehicle_id, xmin::text FROM vehicles ORDER BY vehicle_id"
    if isinstance(fleet_store, PostgresStore):
        before = await fleet_store.pool.fetch(versions)

    second = await make_client(store=fleet_store, simulation=simulation)
    listed = await fleets(second, bearer(await token_for(second, "root")))

    assert set(listed) == {"vans"}
    assert listed["vans"]["origin"] == "file"
    if isinstance(fleet_store, PostgresStore):
        assert await fleet_store.pool.fetch(versions) == before


async def test_two_requests_spawning_one_fleet_spawn_it_once(
    client: Client, root: dict[str, str]
) -> None:
    first, second = await asyncio.gather(
        client.post("/api/v1/fleets", json=BERLIN, headers=root),
        client.post("/api/v1/fleets", json=BERLIN, headers=root),
    )

    assert sorted([first.status, second.status]) == [200, 201]
    assert await total(client, root, "&fleet=berlin") == 12
