"""The vehicles API (SPEC §3 "Vehicles") on both stores, on a fleet from a fleet config."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import WSMsgType

from db.repositories import Store
from sovd.fleet import ecu_identities
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from tests.support.fleets import vehicles_of, without_recorded_fleets
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]

FLEET = """
[simulation]
seed = 5

[[fleets]]
name = "golfs"
count = 30
profile = "vw-golf"
connectivity = { intermittent = 0.2, disconnected = 0.2 }

[[fleets]]
name = "trucks"
count = 20
profile = "ford-f150"
"""
VEHICLES = vehicles_of(FLEET)
FIELDS = {
    "vehicle_id",
    "vin",
    "make",
    "model",
    "year",
    "connection_status",
    "last_seen_at",
    "metadata",
}


@pytest.fixture
async def fleet_store(backend: Backend) -> AsyncIterator[Store]:
    async for clean in without_recorded_fleets(backend.store):
        yield clean


@pytest.fixture
async def client(
    make_client: MakeClient, fleet_store: Store, backend: Backend, config: Config, tmp_path: Path
) -> Client:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    await seed_users(fleet_store, config)
    simulation = attrs.evolve(config.simulation, fleet=str(path))
    return await make_client(store=fleet_store, bus=backend.bus, simulation=simulation)


@pytest.fixture
async def token(client: Client) -> str:
    return await token_for(client, "vera")


async def get(client: Client, token: str, path: str) -> Any:
    response = await client.get(path, headers=bearer(token))
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_list_holds_the_fleet_in_vin_order_with_a_total(
    client: Client, token: str
) -> None:
    response = await client.get("/api/v1/vehicles?limit=1000", headers=bearer(token))

    assert response.status == 200
    assert response.headers["X-Total-Count"] == "50"
    listed = await response.json()
    assert [v["vin"] for v in listed] == sorted(v.vin for v in VEHICLES)
    assert all(set(v) == FIELDS for v in listed)
    by_id = {str(v.vehicle_id): v for v in VEHICLES}
    for item in listed:
        vehicle = by_id[item["vehicle_id"]]
        assert (item["vin"], item["make"], item["model"], item["year"]) == (
            vehicle.vin,
            vehicle.make,
            vehicle.model,
            vehicle.year,
        )
        assert item["connection_status"] == vehicle.connection_status
        assert item["metadata"] == {"fleet": vehicle.fleet.name, "profile": vehicle.profile.name}


async def test_pages_cover_the_list_once_and_default_to_100(client: Client, token: str) -> None:
    everything = await get(client, token, "/api/v1/vehicles")
    pages: list[dict[str, Any]] = []
    for offset in range(0, 56, 7):
        response = await client.get(
            f"/api/v1/vehicles?limit=7&offset={offset}", headers=bearer(token)
        )
        assert response.headers["X-Total-Count"] == "50"
        pages.extend(await response.json())

    assert len(everything) == 50
    assert pages == everything


async def test_status_search_and_fleet_filters(client: Client, token: str) -> None:
    for status in ("connected", "intermittent", "disconnected"):
        response = await client.get(
            f"/api/v1/vehicles?status={status}&limit=1000", headers=bearer(token)
        )
        expected = sorted(v.vin for v in VEHICLES if v.connection_status == status)
        listed = await response.json()
        assert [v["vin"] for v in listed] == expected
        assert response.headers["X-Total-Count"] == str(len(expected))
    assert 0 < len([v for v in VEHICLES if v.connection_status == "disconnected"]) < 30

    part = VEHICLES[3].vin[-7:]
    found = await get(client, token, f"/api/v1/vehicles?search={part.lower()}")
    assert [v["vin"] for v in found] == sorted(v.vin for v in VEHICLES if part in v.vin)

    trucks = await client.get("/api/v1/vehicles?fleet=trucks&limit=5", headers=bearer(token))
    assert trucks.headers["X-Total-Count"] == "20"
    assert {v["make"] for v in await trucks.json()} == {"Ford"}


async def test_the_load_tester_picks_connected_vehicles(client: Client, token: str) -> None:
    listed = await get(client, token, "/api/v1/vehicles?status=connected&limit=1000")

    assert {v["vehicle_id"] for v in listed} == {
        str(v.vehicle_id) for v in VEHICLES if v.connection_status == "connected"
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
        ("status=offline", "status"),
        ("search=" + "X" * 18, "search"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_queries_are_refused(client: Client, token: str, query: str, field: str) -> None:
    response = await client.get(f"/api/v1/vehicles?{query}", headers=bearer(token))

    assert response.status == 422
    problem = await response.json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_every_role_reads_vehicles_and_strangers_none(client: Client) -> None:
    vehicle_id = VEHICLES[0].vehicle_id
    for name in ("vera", "alice", "root"):
        token = await token_for(client, name)
        for path in ("", f"/{vehicle_id}", f"/{vehicle_id}/status"):
            response = await client.get(f"/api/v1/vehicles{path}", headers=bearer(token))
            assert response.status == 200, (name, path)

    assert (await client.get("/api/v1/vehicles")).status == 401


async def test_one_vehicle_with_its_ecus(client: Client, token: str) -> None:
    vehicle = VEHICLES[-1]

    body = await get(client, token, f"/api/v1/vehicles/{vehicle.vehicle_id}")

    assert body["vin"] == vehicle.vin
    assert body["fleet"] == "trucks"
    ecus = ecu_identities(vehicle)
    assert [e["ecu_address"] for e in body["ecus"]] == [e.ecu_address for e in ecus]
    first = body["ecus"][0]
    assert first == first | {
        "ecu_address": "0x10",
        "name": "Powertrain Control Module",
        "part_number": ecus[0].part_number,
        "serial_number": ecus[0].serial_number,
        "software_version": ecus[0].software_version,
        "supplier": "Continental",
        "manufacturing_date": ecus[0].manufacturing_date.isoformat(),
    }
    assert {"0xF190", "0xF40C"} <= set(first["data_ids"])


@pytest.mark.parametrize("vehicle_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
async def test_an_unknown_vehicle_is_a_404_problem(
    client: Client, token: str, vehicle_id: str
) -> None:
    for path in (f"/api/v1/vehicles/{vehicle_id}", f"/api/v1/vehicles/{vehicle_id}/status"):
        response = await client.get(path, headers=bearer(token))
        assert response.status == 404
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "vehicle_not_found"


async def submit_and_wait(client: Client, vehicle_id: str) -> dict[str, Any]:
    token = await token_for(client, "alice")
    submitted = await client.post(
        "/api/v1/commands",
        json={
            "vehicle_id": vehicle_id,
            "command_name": "ReadDTC",
            "command_params": {"ecuAddress": "0x01"},
        },
        headers=bearer(token),
    )
    assert submitted.status == 202, await submitted.text()
    command_id = (await submitted.json())["command_id"]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        while (await asyncio.wait_for(ws.receive(), 10)).type == WSMsgType.TEXT:
            pass
    command: dict[str, Any] = await (
        await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
    ).json()
    return command


async def test_status_shows_the_live_actor(client: Client, token: str) -> None:
    golf = next(
        v for v in VEHICLES if v.connection_status == "connected" and v.fleet.name == "golfs"
    )
    path = f"/api/v1/vehicles/{golf.vehicle_id}/status"

    idle = await get(client, token, path)
    assert idle["connection_status"] == "connected"
    assert idle["actor"] == {
        "state": "idle",
        "mailbox_depth": 0,
        "in_flight_command_id": None,
        "session": {ecu.ecu_address: "default" for ecu in golf.profile.ecus},
    }
    assert idle["health"]["status"] in ("ok", "warning", "fault")

    command = await submit_and_wait(client, str(golf.vehicle_id))
    assert command["status"] == "completed"

    active = await get(client, token, path)
    assert active["actor"]["state"] == "active"
    assert active["last_seen_at"] >= idle["last_seen_at"]
    assert active["health"] == idle["health"]


async def test_a_command_to_a_disconnected_vehicle_fails_with_a_clear_message(
    client: Client, token: str
) -> None:
    offline = next(v for v in VEHICLES if v.connection_status == "disconnected")

    status = await get(client, token, f"/api/v1/vehicles/{offline.vehicle_id}/status")
    command = await submit_and_wait(client, str(offline.vehicle_id))

    online = next(v for v in VEHICLES if v.connection_status == "connected")
    spawned = await get(client, token, f"/api/v1/vehicles/{online.vehicle_id}")
    assert status["connection_status"] == "disconnected"
    assert status["health"]["status"] == "unreachable"
    offline_for = datetime.fromisoformat(spawned["last_seen_at"]) - datetime.fromisoformat(
        status["last_seen_at"]
    )
    assert timedelta(hours=1) <= offline_for <= timedelta(hours=72)
    assert command["status"] == "failed"
    assert command["error_message"] == (
        f"vehicle {offline.vin} is disconnected: the command could not be delivered"
    )


async def test_without_a_fleet_file_the_demo_fleet_is_served(
    make_client: MakeClient, fleet_store: Store, config: Config
) -> None:
    await seed_users(fleet_store, config)
    client = await make_client(store=fleet_store)
    token = await token_for(client, "vera")

    response = await client.get("/api/v1/vehicles", headers=bearer(token))

    assert response.headers["X-Total-Count"] == "10"
    assert {v["metadata"]["fleet"] for v in await response.json()} == {
        "demo-golf",
        "demo-f150",
        "demo-malibu",
    }
