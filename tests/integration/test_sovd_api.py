"""The SOVD surface's discovery, faults and data on both backends: shapes, filters, errors,
access rules, and that every read or change of a vehicle is a command of the one pipeline
POST /api/v1/commands feeds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import ClientResponse, WSMsgType

from db.repositories import Store
from sovd.fleet import VehicleIdentity
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from tests.support.fleets import vehicles_of, without_recorded_fleets
from tests.support.sovd import on_server, sovd_error, without_schema
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]

# One vehicle per fleet. The worn golf's engine stores three faults (statusBytes 0xAF: failed
# and the warning lamp, 0x2F: failed and confirmed, 0x28: confirmed, no longer failing),
# its brakes one pending fault; the other fleets are offline, busy, or another model.
FLEET = """
[profiles.worn-golf]
extends = "vw-golf"
dtcs = [
    { ecu = "0x01", code = "P0300", probability = 1.0, status = 0xAF },
    { ecu = "0x01", code = "P0420", probability = 1.0, status = 0x2F },
    { ecu = "0x01", code = "U0100", probability = 1.0, status = 0x28 },
    { ecu = "0x03", code = "C0035", probability = 1.0, status = 0x24 },
]

[[fleets]]
name = "workshop"
count = 1
profile = "worn-golf"

[[fleets]]
name = "trucks"
count = 1
profile = "ford-f150"

[[fleets]]
name = "offline"
count = 1
profile = "vw-golf"
connectivity = { disconnected = 1.0, when_disconnected = "fail" }

[[fleets]]
name = "busy"
count = 1
profile = "vw-golf"
mailbox_size = 1
latency = { distribution = "uniform", min_ms = 150, max_ms = 150 }
"""
VEHICLES = {vehicle.fleet.name: vehicle for vehicle in vehicles_of(FLEET)}
GOLF = VEHICLES["workshop"]
ECM = "engine-control-module"
BRAKES = "brake-electronics-abs-esc"
ENGINE_FAULTS = ["P0300", "P0420", "U0100"]
# ISO 14229-1 DTC status bits, bit 0 first.
STATUS_BITS = (
    "testFailed",
    "testFailedThisOperationCycle",
    "pendingDTC",
    "confirmedDTC",
    "testNotCompletedSinceLastClear",
    "testFailedSinceLastClear",
    "testNotCompletedThisOperationCycle",
    "warningIndicatorRequested",
)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    async for clean in without_recorded_fleets(backend.store):
        yield clean


@pytest.fixture
async def client(
    make_client: MakeClient, store: Store, backend: Backend, config: Config, tmp_path: Path
) -> Client:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    await seed_users(store, config)
    simulation = attrs.evolve(config.simulation, fleet=str(path))
    return await make_client(store=store, bus=backend.bus, simulation=simulation)


@pytest.fixture
async def alice(client: Client) -> str:
    return await token_for(client, "alice")


def v1(vehicle: VehicleIdentity = GOLF) -> str:
    return f"/vehicles/{vehicle.vehicle_id}/sovd/v1"


def ecm(vehicle: VehicleIdentity = GOLF) -> str:
    return f"{v1(vehicle)}/components/{ECM}"


async def get(client: Client, token: str, path: str) -> Any:
    """GET a path, or a link the server gave (absolute, on this server)."""
    response = await client.get(on_server(client, path), headers=bearer(token))
    assert response.status == 200, f"{path}: {await response.text()}"
    assert response.content_type == "application/json"
    return await response.json()


async def codes(client: Client, token: str, path: str) -> list[str]:
    return [fault["display_code"] for fault in (await get(client, token, path))["items"]]


def command_ids(response: ClientResponse) -> list[str]:
    header = response.headers.get("X-Command-ID")
    return header.split(", ") if header else []


async def run_api_command(
    client: Client, token: str, vehicle: VehicleIdentity, name: str, **params: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A command through POST /api/v1/commands, waited for: the command and its payloads."""
    response = await client.post(
        "/api/v1/commands",
        json={
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": name,
            "command_params": params,
        },
        headers=bearer(token),
    )
    assert response.status == 202, await response.text()
    command_id = (await response.json())["command_id"]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        while (await asyncio.wait_for(ws.receive(), 10)).type == WSMsgType.TEXT:
            pass
    return await stored_command(client, token, command_id)


async def stored_command(
    client: Client, token: str, command_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    command = await get(client, token, f"/api/v1/commands/{command_id}")
    responses = await get(client, token, f"/api/v1/commands/{command_id}/responses")
    return command, [r["response_payload"] for r in responses]


async def commands_of(client: Client, token: str, vehicle: VehicleIdentity) -> list[Any]:
    page = await get(client, token, f"/api/v1/commands?vehicle_id={vehicle.vehicle_id}&limit=500")
    commands: list[Any] = page["commands"]
    return commands


async def read_dtc(client: Client, token: str, ecu: str = "0x01") -> list[dict[str, Any]]:
    command, payloads = await run_api_command(client, token, GOLF, "ReadDTC", ecuAddress=ecu)
    assert command["status"] == "completed"
    dtcs: list[dict[str, Any]] = payloads[-1]["dtcs"]
    return dtcs


# Discovery -------------------------------------------------------------------------------


async def test_version_info_is_public_and_everything_else_needs_a_token(client: Client) -> None:
    response = await client.get(f"/vehicles/{GOLF.vehicle_id}/sovd/version-info")
    assert response.status == 200
    info = await response.json()
    assert info == {
        "sovd_info": [
            {
                "version": "1.1.0",
                "base_uri": f"http://{client.host}:{client.port}{v1()}",
                "vendor_info": {"name": "sovd-sim", "version": "0.1.0"},
            }
        ]
    }

    for method, path in [
        ("GET", v1()),
        ("GET", f"{v1()}/components"),
        ("GET", f"{v1()}/areas/powertrain"),
        ("GET", f"{ecm()}/faults"),
        ("DELETE", f"{ecm()}/faults"),
        ("GET", f"{ecm()}/data/vin"),
        ("PUT", f"{ecm()}/data/repair_shop_code"),
        ("GET", f"{v1()}/no-such-thing"),
    ]:
        for headers in ({}, bearer("not-a-token")):
            response = await client.request(method, path, headers=headers)
            await sovd_error(response, 401, "insufficient-access-rights")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_root_links_collections_and_the_components_are_the_profiles_ecus(
    client: Client, alice: str
) -> None:
    for vehicle in (GOLF, VEHICLES["trucks"]):
        base = f"http://{client.host}:{client.port}{v1(vehicle)}"
        root = await get(client, alice, v1(vehicle))
        assert root["id"] == str(vehicle.vehicle_id)
        assert vehicle.vin in root["name"]
        for collection in ("components", "areas", "apps", "functions"):
            assert root[collection] == f"{base}/{collection}"
        assert root["x-sovdsim-vehicle"]["vin"] == vehicle.vin
        assert await get(client, alice, v1(vehicle) + "/") == root
        await check_components(client, alice, vehicle)


async def check_components(client: Client, alice: str, vehicle: VehicleIdentity) -> None:
    listed = (await get(client, alice, f"{v1(vehicle)}/components"))["items"]

    assert [c["name"] for c in listed] == [ecu.name for ecu in vehicle.profile.ecus]
    assert len({c["id"] for c in listed}) == len(listed)
    for reference, ecu in zip(listed, vehicle.profile.ecus, strict=True):
        component = await get(client, alice, reference["href"])
        assert (component["id"], component["name"]) == (reference["id"], reference["name"])
        assert component["variant"]["logical_address"] == f"0x{ecu.address:02X}"
        assert component["variant"]["part_number"] == ecu.part_number
        assert component["variant"]["state"] == "Online"
        for link in ("data", "faults", "operations", "modes", "belongs-to"):
            assert component[link] == f"{reference['href']}/{link}"
        by_address = f"{v1(vehicle)}/components/0x{ecu.address:02x}"
        assert await get(client, alice, by_address) == component
        by_other_case = f"{v1(vehicle)}/components/{reference['id'].upper()}"
        assert await get(client, alice, by_other_case) == component


async def test_areas_and_components_name_each_other_both_ways(client: Client, alice: str) -> None:
    for vehicle in (GOLF, VEHICLES["trucks"]):
        await check_areas(client, alice, vehicle)


async def check_areas(client: Client, alice: str, vehicle: VehicleIdentity) -> None:
    components = (await get(client, alice, f"{v1(vehicle)}/components"))["items"]
    areas = (await get(client, alice, f"{v1(vehicle)}/areas"))["items"]
    contains: dict[str, set[str]] = {}
    for reference in areas:
        area = await get(client, alice, reference["href"])
        assert (area["id"], area["name"]) == (reference["id"], reference["name"])
        members = (await get(client, alice, area["contains"]))["items"]
        assert (await get(client, alice, area["related-components"]))["items"] == members
        assert (await get(client, alice, area["subareas"]))["items"] == []
        contains[reference["href"]] = {c["href"] for c in members}
    belongs: dict[str, set[str]] = {}
    for reference in components:
        component = await get(client, alice, reference["href"])
        owners = (await get(client, alice, component["belongs-to"]))["items"]
        assert len(owners) == 1, owners
        belongs[reference["href"]] = {a["href"] for a in owners}
        for empty in ("subcomponents", "hosts"):
            assert (await get(client, alice, component[empty]))["items"] == []

    pairs_from_areas = {(a, c) for a, members in contains.items() for c in members}
    pairs_from_components = {(a, c) for c, owners in belongs.items() for a in owners}
    assert pairs_from_areas == pairs_from_components
    assert set(belongs) == {c["href"] for c in components}
    assert {area["id"] for area in areas} >= {"powertrain", "chassis", "body"}
    for collection in ("apps", "functions"):
        assert await get(client, alice, f"{v1(vehicle)}/{collection}") == {"items": []}


# Faults ----------------------------------------------------------------------------------


async def test_the_fault_list_is_the_stored_dtcs_with_their_status_bits(
    client: Client, alice: str
) -> None:
    faults = (await get(client, alice, f"{ecm()}/faults"))["items"]
    dtcs = await read_dtc(client, alice)

    assert [f["display_code"] for f in faults] == [d["dtcCode"] for d in dtcs] == ENGINE_FAULTS
    for fault, dtc in zip(faults, dtcs, strict=True):
        status_byte = int(dtc["statusByte"], 16)
        assert fault["code"] == dtc["udsDtc"][2:]
        assert fault["fault_name"] == dtc["description"]
        assert fault["href"] == f"http://{client.host}:{client.port}{ecm()}/faults/{fault['code']}"
        status = fault["status"]
        assert status["mask"] == f"{status_byte:02X}"
        assert set(status) == {*STATUS_BITS, "mask", "aggregatedStatus"}
        assert {name: status[name] == "1" for name in STATUS_BITS} == dtc["status"]
        for bit, name in enumerate(STATUS_BITS):
            assert status[name] == str(status_byte >> bit & 1), name
    by_code = {f["display_code"]: f for f in faults}
    assert [by_code[c]["severity"] for c in ENGINE_FAULTS] == [1, 2, 3]
    assert [by_code[c]["status"]["aggregatedStatus"] for c in ENGINE_FAULTS] == [
        "active",
        "active",
        "passive",
    ]
    assert {f["scope"] for f in faults} == {"Default"}
    assert await codes(client, alice, f"{v1()}/components/{BRAKES}/faults") == ["C0035"]
    assert await codes(client, alice, f"{v1()}/components/data-bus-gateway/faults") == []

    filtered = {
        "status[confirmedDTC]=1": ["P0300", "P0420", "U0100"],
        "status[confirmeddtc]=true": ["P0300", "P0420", "U0100"],
        "status[testFailed]=0": ["U0100"],
        "status[pendingDTC]=1": ["P0300", "P0420"],
        "status[warningIndicatorRequested]=1&status[testFailed]=false": ["P0300", "U0100"],
        "status[mask]=08": ["P0300", "P0420", "U0100"],
        "status[mask]=80": ["P0300"],
        "status[mask]=0x50": [],
        "severity=2": ["P0300", "P0420"],
        "severity=1": ["P0300"],
        "severity=2&status[testFailed]=0": [],
        "scope=default": ["P0300", "P0420", "U0100"],
    }
    for query, wanted in filtered.items():
        assert await codes(client, alice, f"{ecm()}/faults?{query}") == wanted, query


async def test_bad_fault_filters_are_400_naming_the_parameter_and_run_nothing(
    client: Client, alice: str
) -> None:
    bad = {
        "status[confirmedDTC]=2": "status[confirmedDTC]",
        "status[bogus]=1": "status[bogus]",
        "status[confirmedDTC=1": "status[confirmedDTC",
        "status[]=1": "status[]",
        "status[mask]=zz": "status[mask]",
        "status[mask]=123": "status[mask]",
        "severity=0": "severity",
        "severity=high": "severity",
        "scope=Other": "scope",
        "colour=red": "colour",
        "include-schema=maybe": "include-schema",
    }
    for query, field in bad.items():
        response = await client.get(f"{ecm()}/faults?{query}", headers=bearer(alice))
        error = await sovd_error(response, 400, "vendor-specific", "invalid-request")
        assert error["parameters"]["field"] == field, query
        assert field in error["message"]
    for method, path in [
        ("DELETE", f"{ecm()}/faults?scope=Other"),
        ("DELETE", f"{ecm()}/faults?status[testFailed]=1"),
        ("GET", f"{ecm()}/faults/P0420?include-snapshot-data=perhaps"),
        ("GET", f"{ecm()}/data?status[testFailed]=1"),
    ]:
        response = await client.request(method, path, headers=bearer(alice))
        await sovd_error(response, 400, "vendor-specific", "invalid-request")
    assert await commands_of(client, alice, GOLF) == []


async def test_a_fault_by_native_or_display_code_with_its_environment_data(
    client: Client, alice: str
) -> None:
    listed = {f["display_code"]: f for f in (await get(client, alice, f"{ecm()}/faults"))["items"]}

    detail = await get(client, alice, f"{ecm()}/faults/042000")

    assert await get(client, alice, f"{ecm()}/faults/P0420") == detail
    assert await get(client, alice, f"{ecm()}/faults/p0420") == detail
    assert detail["item"] == {k: v for k, v in listed["P0420"].items() if k != "href"}
    extended = detail["environment_data"]["extended_data_records"]["data"]
    assert extended["occurrence_counter"] >= 1
    assert extended["first_occurrence"] <= extended["last_occurrence"]
    (record,) = detail["environment_data"]["snapshots"]["data"].values()
    assert record["DTCSnapshotRecordNumberOfIdentifiers"] == len(record["DTCSnapshotRecord"])
    snapshot = {key: value for entry in record["DTCSnapshotRecord"] for key, value in entry.items()}
    _, (uds_snapshot, uds_extended) = await run_api_command(
        client, alice, GOLF, "ReadDTCDetails", ecuAddress="0x01", dtcCode="P0420"
    )
    assert extended["occurrence_counter"] == uds_extended["extendedData"]["occurrenceCounter"]
    assert list(snapshot.values()) == [
        value["value"] for value in uds_snapshot["snapshot"]["identifiers"]
    ]
    assert "engine_speed" in snapshot and "coolant_temperature" in snapshot
    network = await get(client, alice, f"{ecm()}/faults/C10000")
    assert network["item"]["display_code"] == "U0100"
    bare = await get(
        client,
        alice,
        f"{ecm()}/faults/P0300?include-extended-data=false&include-snapshot-data=0",
    )
    assert bare["environment_data"] == {}
    assert bare["item"]["severity"] == 1

    for code in ("P0101", "042001", "P04", "C0035"):
        response = await client.get(f"{ecm()}/faults/{code}", headers=bearer(alice))
        await sovd_error(response, 404, "vendor-specific", "resource-not-found")


async def test_clearing_through_either_surface_shows_on_the_other(
    client: Client, alice: str
) -> None:
    brakes = f"{v1()}/components/{BRAKES}/faults"
    assert await codes(client, alice, brakes) == ["C0035"]
    command, _ = await run_api_command(client, alice, GOLF, "ClearDTC", ecuAddress="0x03")
    assert command["status"] == "completed"
    assert await codes(client, alice, brakes) == []
    assert await codes(client, alice, f"{ecm()}/faults") == ENGINE_FAULTS

    response = await client.delete(f"{ecm()}/faults/P0420", headers=bearer(alice))
    assert response.status == 204, await response.text()
    assert await response.read() == b""

    assert await codes(client, alice, f"{ecm()}/faults") == ["P0300", "U0100"]
    assert [d["dtcCode"] for d in await read_dtc(client, alice)] == ["P0300", "U0100"]
    again = await client.delete(f"{ecm()}/faults/042000", headers=bearer(alice))
    await sovd_error(again, 404, "vendor-specific", "resource-not-found")

    response = await client.delete(f"{ecm()}/faults", headers=bearer(alice))
    assert response.status == 204, await response.text()

    assert await codes(client, alice, f"{ecm()}/faults") == []
    assert await read_dtc(client, alice) == []
    gone = await client.get(f"{ecm()}/faults/P0300", headers=bearer(alice))
    await sovd_error(gone, 404, "vendor-specific", "resource-not-found")


# Every vehicle access is a command -------------------------------------------------------


async def test_every_sovd_request_that_touches_the_vehicle_is_a_command(
    client: Client, alice: str
) -> None:
    brakes = f"{v1()}/components/{BRAKES}"
    requests = [
        ("GET", f"{ecm()}/faults", "ReadDTC", 200),
        ("GET", f"{ecm()}/faults/P0420", "ReadDTCDetails", 200),
        ("GET", f"{ecm()}/faults/P0101", "ReadDTCDetails", 404),
        ("DELETE", f"{ecm()}/faults/P0420", "ClearDTC", 204),
        ("DELETE", f"{brakes}/faults", "ClearDTC", 204),
        ("GET", f"{brakes}/data/vehicle_speed", "ReadDataByID", 200),
        ("GET", f"{ecm()}/configurations/repair_shop_code", "ReadDataByID", 200),
        ("PUT", f"{ecm()}/data/repair_shop_code", "WriteDataByID", 502),
    ]
    expected: dict[str, tuple[str, str]] = {}
    for method, path, name, status in requests:
        body = {"data": {"repair_shop_code": "WS12345"}} if method == "PUT" else None
        response = await client.request(method, path, json=body, headers=bearer(alice))
        assert response.status == status, await response.text()
        (command_id,) = command_ids(response)
        expected[command_id] = (name, "0x03" if path.startswith(brakes) else "0x01")
    for path in (v1(), f"{v1()}/components", f"{ecm()}/data", f"{ecm()}/data-groups"):
        response = await client.get(path, headers=bearer(alice))
        assert command_ids(response) == []

    stored = await commands_of(client, alice, GOLF)

    assert {
        c["command_id"]: (c["command_name"], c["command_params"]["ecuAddress"]) for c in stored
    } == expected
    assert {c["status"] for c in stored} == {"completed", "failed"}
    failed = sorted(c["command_name"] for c in stored if c["status"] == "failed")
    assert failed == ["ReadDTCDetails", "WriteDataByID"]


async def test_writing_in_the_default_session_is_the_ecus_negative_reply(
    client: Client, alice: str
) -> None:
    response = await client.put(
        f"{ecm()}/data/repair_shop_code",
        json={"data": {"repair_shop_code": "WS12345"}},
        headers=bearer(alice),
    )

    error = await sovd_error(response, 502, "error-response")
    (command_id,) = command_ids(response)
    assert error["parameters"]["nrc"] == 0x7F
    assert error["parameters"]["service"] == 0x2E
    assert error["parameters"]["command_id"] == command_id
    command, payloads = await stored_command(client, alice, command_id)
    assert command["status"] == "failed"
    assert command["command_params"]["value"] == "WS12345"
    assert payloads[-1]["negativeResponse"]["nrc"] == "0x7F"
    assert payloads[-1]["udsResponse"] == "7F2E7F"
    unchanged = await get(client, alice, f"{ecm()}/data/repair_shop_code")
    assert unchanged["data"]["repair_shop_code"] != "WS12345"


# Data ------------------------------------------------------------------------------------


async def test_data_lists_with_categories_and_groups(client: Client, alice: str) -> None:
    items = (await get(client, alice, f"{ecm()}/data"))["items"]
    by_id = {item["id"]: item for item in items}

    assert {"vin", "engine_speed", "repair_shop_code", "system_name"} <= set(by_id)
    assert by_id["vin"]["category"] == "identData"
    assert by_id["vin"]["x-sovdsim-did"] == "F190"
    assert by_id["engine_speed"]["groups"] == ["engine"]
    assert by_id["repair_shop_code"]["category"] == "storedData"
    for item in items:
        assert item["href"] == f"http://{client.host}:{client.port}{ecm()}/data/{item['id']}"
    cluster = (await get(client, alice, f"{v1()}/components/instrument-cluster/data"))["items"]
    assert "odometer" in {i["id"] for i in cluster} and "odometer" not in by_id

    current = (await get(client, alice, f"{ecm()}/data?category=currentData"))["items"]
    assert current and all(i["category"] == "currentData" for i in current)
    assert current == [i for i in items if i["category"] == "currentData"]
    stored = (await get(client, alice, f"{ecm()}/data?categories=identData,storedData"))["items"]
    assert stored == [i for i in items if i["category"] in ("identData", "storedData")]
    engine = (await get(client, alice, f"{ecm()}/data?groups=engine"))["items"]
    assert engine == [i for i in items if i.get("groups") == ["engine"]]

    categories = (await get(client, alice, f"{ecm()}/data-categories"))["items"]
    assert [c["item"] for c in categories] == ["identData", "currentData", "storedData", "sysInfo"]
    groups = (await get(client, alice, f"{ecm()}/data-groups"))["items"]
    assert {g["id"] for g in groups} == {g for i in items for g in i.get("groups", [])}
    assert all(g["category"] == "currentData" for g in groups)
    assert (await get(client, alice, f"{ecm()}/data-groups?categories=identData"))["items"] == []

    for query, field in [("category=liveData", "category"), ("colour=red", "colour")]:
        response = await client.get(f"{ecm()}/data?{query}", headers=bearer(alice))
        error = await sovd_error(response, 400, "vendor-specific", "invalid-request")
        assert error["parameters"]["field"] == field


async def test_reading_data_by_its_name_or_its_did(client: Client, alice: str) -> None:
    vin = await get(client, alice, f"{ecm()}/data/vin")

    assert vin["id"] == "vin"
    assert vin["data"] == {"vin": GOLF.vin}
    vehicle = await get(client, alice, f"/api/v1/vehicles/{GOLF.vehicle_id}")
    assert vehicle["vin"] == GOLF.vin
    for alias in ("F190", "0xF190", "f190", "VIN"):
        assert (await get(client, alice, f"{ecm()}/data/{alias}"))["data"] == vin["data"]
    speed = await get(client, alice, f"{ecm()}/data/engine_speed")
    assert speed["id"] == "engine_speed"
    assert isinstance(speed["data"]["engine_speed"], int | float)
    assert 0 <= speed["data"]["engine_speed"] <= 6500
    assert speed["x-sovdsim"]["unit"] == "rpm"
    dated = await get(client, alice, f"{ecm()}/data/manufacturing_date?include-schema=true")
    assert without_schema(dated)["data"]["manufacturing_date"].startswith("20")
    session = await get(client, alice, f"{ecm()}/data/F186?include-schema=true")
    assert without_schema(session)["data"] == {"active_diagnostic_session": "default"}

    for path in (f"{ecm()}/data/odometer", f"{ecm()}/data/F4A6", f"{ecm()}/data/0x12345"):
        response = await client.get(path, headers=bearer(alice))
        await sovd_error(response, 404, "vendor-specific", "resource-not-found")


async def test_read_only_data_is_405_and_bad_bodies_are_400_or_415_running_nothing(
    client: Client, alice: str
) -> None:
    response = await client.put(
        f"{ecm()}/data/serial_number", json={"data": "X"}, headers=bearer(alice)
    )
    await sovd_error(response, 405, "vendor-specific", "read-only")
    assert response.headers["Allow"] == "GET"

    path = f"{ecm()}/data/repair_shop_code"
    json_type = {"Content-Type": "application/json"}
    bad: list[tuple[bytes, dict[str, str], int, str | None]] = [
        (b"{not json", json_type, 400, None),
        (b"[1, 2]", json_type, 400, "(body)"),
        (b"{}", json_type, 400, "data"),
        (b'{"data": {"repair_shop_code": 5}}', json_type, 400, "data.repair_shop_code"),
        (b'{"data": 5}', json_type, 400, "data.repair_shop_code"),
        (b'{"data": {"vin": "X"}}', json_type, 400, "data"),
        (b'{"data": "WS1", "extra": 1}', json_type, 400, "extra"),
        (b'{"data": "WS1"}', {"Content-Type": "text/plain"}, 415, None),
        (b'{"data": "WS1"}', {}, 415, None),
    ]
    for body, headers, status, field in bad:
        response = await client.put(path, data=body, headers=bearer(alice) | headers)
        vendor = "unsupported-media-type" if status == 415 else "invalid-request"
        error = await sovd_error(response, status, "vendor-specific", vendor)
        assert error.get("parameters", {}).get("field") == field, body
    live = await client.put(f"{ecm()}/data/engine_speed", json={"data": 900}, headers=bearer(alice))
    await sovd_error(live, 405, "vendor-specific", "read-only")
    date = await client.put(
        f"{ecm()}/data/programming_date", json={"data": 20240101}, headers=bearer(alice)
    )
    error = await sovd_error(date, 400, "vendor-specific", "invalid-request")
    assert error["parameters"]["field"] == "data.programming_date"
    assert "string" in error["message"]
    assert await commands_of(client, alice, GOLF) == []


# Errors and access -----------------------------------------------------------------------


async def test_unknown_entities_and_resources_are_404_with_their_vendor_code(
    client: Client, alice: str
) -> None:
    entities = [
        f"/vehicles/{uuid.uuid4()}/sovd/v1/components",
        "/vehicles/not-a-uuid/sovd/v1",
        f"{v1()}/components/flux-capacitor",
        f"{v1()}/components/0x77/faults",
        f"{v1()}/components/flux-capacitor/data/vin",
        f"{v1()}/areas/cockpit",
        f"{v1()}/areas/cockpit/contains",
    ]
    for path in entities:
        response = await client.get(path, headers=bearer(alice))
        await sovd_error(response, 404, "vendor-specific", "entity-not-found")
    public = await client.get(f"/vehicles/{uuid.uuid4()}/sovd/version-info")
    await sovd_error(public, 404, "vendor-specific", "entity-not-found")

    resources = [
        f"{ecm()}/data/warp_factor",
        f"{ecm()}/faults/not-a-code",
        f"{ecm()}/configurations/serial_number",
        f"{ecm()}/no-such-collection",
        f"{v1()}/no-such-collection",
    ]
    for path in resources:
        response = await client.get(path, headers=bearer(alice))
        await sovd_error(response, 404, "vendor-specific", "resource-not-found")
    response = await client.post(f"{ecm()}/faults", json={}, headers=bearer(alice))
    await sovd_error(response, 405, "vendor-specific", "method-not-allowed")
    assert "DELETE" in response.headers["Allow"]
    assert await commands_of(client, alice, GOLF) == []


async def test_viewers_read_but_may_not_clear_faults_or_write_data(client: Client) -> None:
    vera = await token_for(client, "vera")
    root = await token_for(client, "root")

    assert await codes(client, vera, f"{ecm()}/faults") == ENGINE_FAULTS
    assert (await get(client, vera, f"{ecm()}/data/vin"))["data"] == {"vin": GOLF.vin}
    for method, path in [
        ("DELETE", f"{ecm()}/faults"),
        ("DELETE", f"{ecm()}/faults/P0420"),
        ("PUT", f"{ecm()}/data/repair_shop_code"),
        ("PUT", f"{ecm()}/configurations/repair_shop_code"),
    ]:
        body = {"data": "WS1"} if method == "PUT" else None
        response = await client.request(method, path, json=body, headers=bearer(vera))
        await sovd_error(response, 403, "insufficient-access-rights")

    assert await codes(client, vera, f"{ecm()}/faults") == ENGINE_FAULTS
    names = [c["command_name"] for c in await commands_of(client, root, GOLF)]
    assert sorted(names) == ["ReadDTC", "ReadDTC", "ReadDataByID"]


async def test_a_disconnected_vehicle_is_504_and_a_busy_one_429(client: Client, alice: str) -> None:
    offline = VEHICLES["offline"]
    assert offline.connection_status == "disconnected"

    for path in (f"{ecm(offline)}/faults", f"{ecm(offline)}/data/vin"):
        response = await client.get(path, headers=bearer(alice))
        error = await sovd_error(response, 504, "not-responding")
        (command_id,) = command_ids(response)
        assert error["parameters"]["command_id"] == command_id
        assert "disconnected" in error["message"]
        command, _ = await stored_command(client, alice, command_id)
        assert command["status"] == "failed"
    offline_ecm = await get(client, alice, ecm(offline))
    assert offline_ecm["variant"]["state"] == "Offline"

    busy = VEHICLES["busy"]

    answers = await asyncio.gather(
        *(client.get(f"{ecm(busy)}/faults", headers=bearer(alice)) for _ in range(4))
    )

    statuses = sorted(a.status for a in answers)
    assert 429 in statuses and 200 in statuses, statuses
    assert set(statuses) == {200, 429}
    for answer in answers:
        if answer.status == 429:
            await sovd_error(answer, 429, "vendor-specific", "vehicle-busy")
            assert int(answer.headers["Retry-After"]) >= 1
        else:
            assert isinstance((await answer.json())["items"], list)


# Schemas ---------------------------------------------------------------------------------


async def test_include_schema_describes_every_get_body(client: Client, alice: str) -> None:
    paths = [
        f"/vehicles/{GOLF.vehicle_id}/sovd/version-info",
        v1(),
        f"{v1()}/components",
        f"{v1()}/apps",
        f"{v1()}/areas",
        f"{v1()}/areas/powertrain",
        f"{v1()}/areas/powertrain/contains",
        ecm(),
        f"{ecm()}/belongs-to",
        f"{ecm()}/subcomponents",
        f"{ecm()}/faults",
        f"{ecm()}/faults?status[testFailed]=0",
        f"{ecm()}/faults/P0420",
        f"{ecm()}/faults/P0420?include-snapshot-data=false",
        f"{ecm()}/data",
        f"{ecm()}/data?category=currentData",
        f"{ecm()}/data-categories",
        f"{ecm()}/data-groups",
        f"{ecm()}/data/vin",
        f"{ecm()}/data/engine_speed",
        f"{ecm()}/data/programming_date",
        f"{ecm()}/configurations",
        f"{ecm()}/configurations/repair_shop_code",
    ]
    for path in paths:
        joiner = "&" if "?" in path else "?"
        plain = await get(client, alice, path)
        assert "schema" not in plain, path
        assert "schema" not in await get(client, alice, f"{path}{joiner}include-schema=false")
        described = await get(client, alice, f"{path}{joiner}include-schema=true")
        rest = without_schema(described)
        assert set(rest) == set(plain), path
