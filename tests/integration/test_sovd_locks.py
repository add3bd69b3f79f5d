"""SOVD locks on both backends: one owner per entity, writes of other users refused while a
lock on the component or its vehicle holds, expiry by time, owner-only changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import WSMsgType
from jsonschema import Draft202012Validator

from db.repositories import CommandFilter, Store
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from web.config import Config
from web.typedefs import actors_key

MakeClient = Callable[..., Awaitable[Client]]
ENGINE = "engine-control-module"
BRAKES = "brake-electronics-abs-esc"


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, config: Config) -> Client:
    await seed_users(backend.store, config)
    return await make_client(store=backend.store, bus=backend.bus)


@pytest.fixture
async def tokens(client: Client) -> dict[str, str]:
    return {name: await token_for(client, name) for name in ("alice", "bob", "vera", "root")}


def root_of(client: Client, index: int = 0) -> str:
    vehicle = client.app[actors_key].vehicles()[index]
    return f"/vehicles/{vehicle.vehicle_id}/sovd/v1"


def component_path(client: Client, component: str = ENGINE) -> str:
    return f"{root_of(client)}/components/{component}"


def absolute(client: Client, path: str) -> str:
    return str(client.make_url(path))


async def get_valid(client: Client, path: str, token: str) -> dict[str, Any]:
    """GET with `include-schema=true`: 200, and the body validates against the closed schema
    it carries."""
    response = await client.get(path, params={"include-schema": "true"}, headers=bearer(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    schema = body.pop("schema")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(body)
    return body


async def expect_error(response: Any, status: int, code: str, vendor: str | None = None) -> Any:
    assert response.status == status, await response.text()
    error = await response.json()
    assert error["error_code"] == code
    if vendor is not None:
        assert error["vendor_code"] == vendor
    return error


async def lock(client: Client, token: str, path: str, seconds: int = 60, **more: Any) -> Any:
    return await client.post(
        f"{path}/locks", json={"lock_expiration": seconds, **more}, headers=bearer(token)
    )


async def acquire(client: Client, token: str, path: str, seconds: int = 60) -> dict[str, Any]:
    response = await lock(client, token, path, seconds)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    assert response.headers["Location"] == absolute(client, f"{path}/locks/{body['id']}")
    return body


def expiration(body: dict[str, Any]) -> datetime:
    stamp = body["lock_expiration"]
    assert stamp.endswith("Z")
    return datetime.fromisoformat(stamp)


async def write_shop_code(client: Client, token: str, value: str = "SHOP42") -> Any:
    return await client.put(
        f"{component_path(client)}/data/repair_shop_code",
        json={"data": {"repair_shop_code": value}},
        headers=bearer(token),
    )


async def clear_faults(client: Client, token: str, component: str = ENGINE) -> Any:
    return await client.delete(f"{component_path(client, component)}/faults", headers=bearer(token))


async def enter_extended_session(client: Client, token: str) -> None:
    """Through the commands API: writing data needs the extended session."""
    vehicle = client.app[actors_key].vehicles()[0]
    ecu = next(e for e in vehicle.profile.ecus if e.name == "Engine Control Module")
    response = await client.post(
        "/api/v1/commands",
        json={
            "vehicle_id": str(vehicle.vehicle_id),
            "command_name": "DiagnosticSessionControl",
            "command_params": {"ecuAddress": ecu.ecu_address, "session": "extended"},
        },
        headers=bearer(token),
    )
    assert response.status == 202, await response.text()
    command_id = (await response.json())["command_id"]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        while (await asyncio.wait_for(ws.receive(), 10)).type == WSMsgType.TEXT:
            pass
    command = await (
        await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
    ).json()
    assert command["status"] == "completed", command


async def commands_of(store: Store, name: str) -> int:
    user = await store.users.get_by_username(name)
    assert user is not None
    return (await store.commands.list(CommandFilter(user_id=user.user_id))).total


async def test_a_lock_keeps_other_engineers_from_writing(
    client: Client, store: Store, tokens: dict[str, str]
) -> None:
    alice, bob, vera = tokens["alice"], tokens["bob"], tokens["vera"]
    engine = component_path(client)
    held = await acquire(client, alice, engine)
    assert held["owned"] is True
    assert timedelta(seconds=55) < expiration(held) - datetime.now(UTC) <= timedelta(seconds=61)

    refused = await expect_error(await lock(client, bob, engine), 409, "precondition-not-fulfilled")
    assert refused["parameters"]["locked_entity"] == absolute(client, engine)
    for attempt in (write_shop_code(client, bob), clear_faults(client, bob)):
        error = await expect_error(await attempt, 409, "precondition-not-fulfilled")
        assert error["parameters"]["locked_entity"] == absolute(client, engine)
    assert await commands_of(store, "bob") == 0  # refused before any command ran
    # Another component is not locked.
    assert (await clear_faults(client, bob, BRAKES)).status == 204

    listed = await get_valid(client, f"{engine}/locks", vera)
    assert listed == {"items": [held | {"owned": False}]}
    mine = await get_valid(client, f"{engine}/locks", alice)
    assert mine == {"items": [held | {"owned": True}]}
    one = await get_valid(client, f"{engine}/locks/{held['id']}", bob)
    assert one == held | {"owned": False}
    assert (await lock(client, vera, engine)).status == 403

    await enter_extended_session(client, alice)
    response = await write_shop_code(client, alice)
    assert response.status == 204, await response.text()
    assert (await clear_faults(client, alice)).status == 204
    written = await client.get(f"{engine}/data/repair_shop_code", headers=bearer(bob))
    assert (await written.json())["data"] == {"repair_shop_code": "SHOP42"}


async def test_an_expired_lock_is_gone(client: Client, tokens: dict[str, str]) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    engine = component_path(client)
    held = await acquire(client, alice, engine, seconds=1)
    assert (await clear_faults(client, bob)).status == 409

    async def lock_gone() -> bool:
        response = await client.get(f"{engine}/locks/{held['id']}", headers=bearer(bob))
        return response.status == 404

    deadline = asyncio.get_running_loop().time() + 10
    while not await lock_gone():
        assert asyncio.get_running_loop().time() < deadline, "the lock did not expire"
        await asyncio.sleep(0.05)
    assert await get_valid(client, f"{engine}/locks", bob) == {"items": []}
    assert (await clear_faults(client, bob)).status == 204
    taken = await acquire(client, bob, engine)
    assert taken["id"] != held["id"]
    assert (await clear_faults(client, alice)).status == 409


async def test_a_vehicle_lock_blocks_writes_to_every_component(
    client: Client, tokens: dict[str, str]
) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    root = root_of(client)
    held = await acquire(client, alice, root)
    for component in (ENGINE, BRAKES):
        error = await expect_error(
            await clear_faults(client, bob, component), 409, "precondition-not-fulfilled"
        )
        assert error["parameters"]["locked_entity"] == absolute(client, root)
    error = await expect_error(
        await write_shop_code(client, bob), 409, "precondition-not-fulfilled"
    )
    assert error["parameters"]["locked_entity"] == absolute(client, root)
    assert (await clear_faults(client, alice, BRAKES)).status == 204

    assert await get_valid(client, f"{root}/locks", bob) == {"items": [held | {"owned": False}]}
    assert await get_valid(client, f"{component_path(client)}/locks", bob) == {"items": []}
    # The lock is the vehicle's: not found under a component, nor on another vehicle.
    elsewhere = (
        f"{component_path(client)}/locks/{held['id']}",
        f"{root_of(client, 1)}/locks/{held['id']}",
    )
    for path in elsewhere:
        response = await client.get(path, headers=bearer(alice))
        await expect_error(response, 404, "vendor-specific", "resource-not-found")
    # Bob may still lock a component of another vehicle.
    await acquire(client, bob, f"{root_of(client, 1)}/components/{ENGINE}")


async def test_only_the_owner_changes_its_lock(client: Client, tokens: dict[str, str]) -> None:
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    engine = component_path(client)
    held = await acquire(client, alice, engine, seconds=30)
    here = f"{engine}/locks/{held['id']}"

    extend = {"lock_expiration": 600}
    refused = await client.put(here, json=extend, headers=bearer(bob))
    await expect_error(refused, 409, "insufficient-access-rights")
    await expect_error(
        await client.delete(here, headers=bearer(bob)), 409, "insufficient-access-rights"
    )
    assert (await client.delete(here, headers=bearer(tokens["vera"]))).status == 403

    assert (await client.put(here, json=extend, headers=bearer(alice))).status == 204
    extended = await get_valid(client, here, alice)
    assert extended["id"] == held["id"] and extended["owned"] is True
    assert expiration(extended) - expiration(held) >= timedelta(seconds=500)

    again = await acquire(client, alice, engine, seconds=120)
    assert again["id"] == held["id"]
    assert expiration(again) < expiration(extended)  # asking again sets a new expiration

    assert (await client.delete(here, headers=bearer(alice))).status == 204
    await expect_error(await client.get(here, headers=bearer(alice)), 404, "vendor-specific")
    await expect_error(await client.delete(here, headers=bearer(alice)), 404, "vendor-specific")
    await expect_error(
        await client.put(here, json=extend, headers=bearer(alice)), 404, "vendor-specific"
    )

    # An admin may release anyone's lock.
    held = await acquire(client, bob, engine)
    here = f"{engine}/locks/{held['id']}"
    assert (await client.delete(here, headers=bearer(root))).status == 204
    assert await get_valid(client, f"{engine}/locks", bob) == {"items": []}


async def test_only_an_admin_breaks_a_lock(client: Client, tokens: dict[str, str]) -> None:
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    engine = component_path(client)
    held = await acquire(client, alice, engine)
    refused = await lock(client, bob, engine, break_lock=True)
    error = await expect_error(refused, 409, "precondition-not-fulfilled")
    assert "admin" in error["message"]

    broken = await lock(client, root, engine, break_lock=True)
    assert broken.status == 201, await broken.text()
    new = await broken.json()
    assert new["id"] != held["id"]
    gone = await client.get(f"{engine}/locks/{held['id']}", headers=bearer(alice))
    await expect_error(gone, 404, "vendor-specific", "resource-not-found")
    await expect_error(await clear_faults(client, alice), 409, "precondition-not-fulfilled")
    assert (await clear_faults(client, root)).status == 204


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, "lock_expiration"),
        ({"lock_expiration": 0}, "lock_expiration"),
        ({"lock_expiration": 3601}, "lock_expiration"),
        ({"lock_expiration": "60"}, "lock_expiration"),
        ({"lock_expiration": 1.5}, "lock_expiration"),
        ({"lock_expiration": True}, "lock_expiration"),
        ({"lock_expiration": 60, "break_lock": "yes"}, "break_lock"),
        ({"lock_expiration": 60, "scopes": ["control"]}, "scopes"),
    ],
)
async def test_bad_lock_requests_change_nothing(
    client: Client, tokens: dict[str, str], document: dict[str, Any], field: str
) -> None:
    engine = component_path(client)
    response = await client.post(f"{engine}/locks", json=document, headers=bearer(tokens["alice"]))
    error = await expect_error(response, 400, "vendor-specific", "invalid-request")
    assert error["parameters"]["field"] == field
    assert await get_valid(client, f"{engine}/locks", tokens["alice"]) == {"items": []}


async def test_unknown_locks_and_entities(client: Client, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    engine = component_path(client)
    held = await acquire(client, alice, engine)
    bad_put = await client.put(
        f"{engine}/locks/{held['id']}", json={"lock_expiration": 0}, headers=bearer(alice)
    )
    await expect_error(bad_put, 400, "vendor-specific", "invalid-request")
    for ident in ("not-a-uuid", "6f1c8b5e-0000-4000-8000-000000000000"):
        response = await client.get(f"{engine}/locks/{ident}", headers=bearer(alice))
        await expect_error(response, 404, "vendor-specific", "resource-not-found")
    nowhere = f"{root_of(client)}/components/no-such-ecu/locks"
    response = await client.post(nowhere, json={"lock_expiration": 5}, headers=bearer(alice))
    await expect_error(response, 404, "vendor-specific", "entity-not-found")
    unauthenticated = await client.get(f"{engine}/locks")
    await expect_error(unauthenticated, 401, "insufficient-access-rights")
