"""SOVD modes on both backends: the diagnostic session (a command each way, with its
expiration), security access by seed and key, what each unlocks, bad input, roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sovd.commands import security_key
from tests.support.api import Backend, Client, seed_users, token_for
from tests.support.sovd import (
    assert_sovd_error,
    component_path,
    get_valid,
    poll,
    send,
    vehicle_path,
)
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]
NEW_VIN = "WVWZZZ1KZAW999999"


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, config: Config) -> Client:
    await seed_users(backend.store, config)
    return await make_client(store=backend.store, bus=backend.bus)


@pytest.fixture
async def alice(client: Client) -> str:
    return await token_for(client, "alice")


async def put_mode(client: Client, token: str, mode: str, document: Any) -> tuple[int, Any]:
    status, body, _ = await send(
        client, "PUT", f"{component_path(client)}/modes/{mode}", token, document
    )
    return status, body


async def mode_value(client: Client, token: str, mode: str) -> str:
    body = await get_valid(client, f"{component_path(client)}/modes/{mode}", token)
    value: str = body["value"]
    return value


async def unlock(client: Client, token: str, level: int = 1) -> None:
    status, body = await put_mode(
        client, token, "security", {"value": f"Level_{level}_RequestSeed"}
    )
    assert status == 200, body
    seed = bytes(int(byte, 16) for byte in body["seed"]["Request_Seed"].split())
    key = " ".join(f"0x{byte:02x}" for byte in security_key(seed))
    status, body = await put_mode(
        client, token, "security", {"value": f"Level_{level}", "Key": {"Send_Key": key}}
    )
    assert (status, body) == (200, {"id": "security", "value": f"Level_{level}"})


async def test_modes_are_listed_and_start_default_and_locked(client: Client, alice: str) -> None:
    modes = await get_valid(client, f"{component_path(client)}/modes", alice)

    assert modes == {
        "items": [
            {"id": "session", "name": "Diagnostic session"},
            {"id": "security", "name": "Security access"},
        ]
    }
    session = await get_valid(client, f"{component_path(client)}/modes/session", alice)
    assert session == {"id": "session", "name": "Diagnostic session", "value": "default"}
    security = await get_valid(client, f"{component_path(client)}/modes/security", alice)
    assert security == {"id": "security", "name": "Security access", "value": "locked"}
    status, body, _ = await send(client, "GET", f"{component_path(client)}/modes/commctrl", alice)
    assert status == 404
    assert_sovd_error(body, "vendor-specific", "resource-not-found")


async def test_reading_the_session_is_a_command(client: Client, alice: str) -> None:
    status, _, headers = await send(client, "GET", f"{component_path(client)}/modes/session", alice)
    assert status == 200

    (command_id,) = headers["X-Command-ID"].split(", ")
    _, command, _ = await send(client, "GET", f"/api/v1/commands/{command_id}", alice)
    assert command["command_name"] == "ReadDataByID"
    assert command["command_params"] == {"ecuAddress": "0x01", "dataId": "0xF186"}
    assert command["status"] == "completed"


async def test_extended_session_allows_writing_stored_data(client: Client, alice: str) -> None:
    data = f"{component_path(client)}/data/repair_shop_code"
    document = {"data": {"repair_shop_code": "WS12345"}}

    status, body, _ = await send(client, "PUT", data, alice, document)
    assert status == 502
    assert_sovd_error(body, "error-response")
    assert (body["parameters"]["service"], body["parameters"]["nrc"]) == (0x2E, 0x7F)

    assert await put_mode(client, alice, "session", {"value": "EXTENDED"}) == (
        200,
        {"id": "session", "value": "extended"},
    )
    assert await mode_value(client, alice, "session") == "extended"
    status, _, _ = await send(client, "PUT", data, alice, document)
    assert status == 204
    written = await get_valid(client, data, alice)
    assert written["data"] == {"repair_shop_code": "WS12345"}


async def test_programming_session_only_from_extended(client: Client, alice: str) -> None:
    status, body = await put_mode(client, alice, "session", {"value": "programming"})
    assert status == 502
    assert (body["parameters"]["service"], body["parameters"]["nrc"]) == (0x10, 0x7E)

    assert (await put_mode(client, alice, "session", {"value": "0x03"}))[0] == 200
    assert await put_mode(client, alice, "session", {"value": "Programming"}) == (
        200,
        {"id": "session", "value": "programming"},
    )
    assert await mode_value(client, alice, "session") == "programming"


async def test_seed_and_key_unlock_and_allow_writing_the_vin(client: Client, alice: str) -> None:
    assert (await put_mode(client, alice, "session", {"value": "extended"}))[0] == 200
    vin = f"{component_path(client)}/data/vin"
    status, body, _ = await send(client, "PUT", vin, alice, {"data": {"vin": NEW_VIN}})
    assert status == 502
    assert body["parameters"]["nrc"] == 0x33, "securityAccessDenied while locked"

    await unlock(client, alice)

    assert await mode_value(client, alice, "security") == "Level_1"
    status, _, _ = await send(client, "PUT", vin, alice, {"data": {"vin": NEW_VIN}})
    assert status == 204
    assert (await get_valid(client, vin, alice))["data"] == {"vin": NEW_VIN}


async def test_the_key_may_be_sent_as_plain_hex(client: Client, alice: str) -> None:
    assert (await put_mode(client, alice, "session", {"value": "extended"}))[0] == 200
    status, body = await put_mode(client, alice, "security", {"value": "level1_requestseed"})
    assert status == 200
    seed = bytes(int(byte, 16) for byte in body["seed"]["Request_Seed"].split())

    status, body = await put_mode(
        client, alice, "security", {"value": "Level_1", "key": security_key(seed).hex()}
    )

    assert (status, body) == (200, {"id": "security", "value": "Level_1"})
    assert await mode_value(client, alice, "security") == "Level_1"


async def test_security_refusals_are_the_ecus_negative_replies(client: Client, alice: str) -> None:
    status, body = await put_mode(client, alice, "security", {"value": "Level_1_RequestSeed"})
    assert status == 502
    assert body["parameters"]["nrc"] == 0x7F, "no seed in the default session"

    assert (await put_mode(client, alice, "session", {"value": "extended"}))[0] == 200
    key = {"value": "Level_1", "Key": {"Send_Key": "0x00 0x00 0x00 0x01"}}
    status, body = await put_mode(client, alice, "security", key)
    assert status == 502
    assert body["parameters"]["nrc"] == 0x24, "a key before any seed is a sequence error"

    status, body = await put_mode(client, alice, "security", {"value": "Level_1_RequestSeed"})
    assert status == 200
    status, body = await put_mode(client, alice, "security", key)
    assert status == 502
    assert_sovd_error(body, "error-response")
    assert (body["parameters"]["service"], body["parameters"]["nrc"]) == (0x27, 0x35)
    assert body["parameters"]["nrc_name"] == "invalidKey"
    assert await mode_value(client, alice, "security") == "locked"


async def test_mode_expiration_ends_the_session_and_relocks(client: Client, alice: str) -> None:
    assert (await put_mode(client, alice, "session", {"value": "extended"}))[0] == 200
    await unlock(client, alice)

    expiring = {"value": "extended", "mode_expiration": 1}
    assert await put_mode(client, alice, "session", expiring) == (
        200,
        {"id": "session", "value": "extended"},
    )
    assert await mode_value(client, alice, "security") == "Level_1", "same session, still unlocked"

    # Reading security access sends the ECU nothing, so it does not keep the session alive.
    async def relocked() -> bool:
        return await mode_value(client, alice, "security") == "locked"

    await poll(relocked, timeout_s=5.0)
    assert await mode_value(client, alice, "session") == "default"


@pytest.mark.parametrize(
    ("mode", "document", "field"),
    [
        ("session", {"value": "turbo"}, "value"),
        ("session", {}, "value"),
        ("session", {"value": "extended", "mode_expiration": 0}, "mode_expiration"),
        ("session", {"value": "extended", "mode_expiration": "60"}, "mode_expiration"),
        ("session", {"value": "extended", "mode_expiration": True}, "mode_expiration"),
        ("session", {"value": "extended", "lasting": 60}, "lasting"),
        ("security", {"value": "open"}, "value"),
        ("security", {"value": "Level_1"}, "Key"),
        ("security", {"value": "Level_1_RequestSeed", "key": "01020304"}, "key"),
        ("security", {"value": "Level_1", "key": "0x1g"}, "key"),
        ("security", {"value": "Level_1", "Key": {"Key": "01020304"}}, "Key.Key"),
        ("security", {"value": "Level_200_RequestSeed"}, "value"),
    ],
)
async def test_bad_mode_bodies_are_400_and_send_nothing(
    client: Client, alice: str, mode: str, document: dict[str, Any], field: str
) -> None:
    status, body = await put_mode(client, alice, mode, document)

    assert status == 400, body
    assert_sovd_error(body, "vendor-specific", "invalid-request")
    assert body["parameters"]["field"] == field
    _, commands, _ = await send(client, "GET", "/api/v1/commands", alice)
    assert commands["total"] == 0


async def test_a_bad_session_names_the_allowed_values(client: Client, alice: str) -> None:
    _, body = await put_mode(client, alice, "session", {"value": "turbo"})

    assert "'turbo'" in body["message"]
    assert "default, programming, extended" in body["message"]


async def test_viewers_read_modes_but_do_not_change_them(client: Client) -> None:
    vera = await token_for(client, "vera")

    assert await mode_value(client, vera, "session") == "default"
    assert await mode_value(client, vera, "security") == "locked"
    for mode, document in (("session", {"value": "extended"}), ("security", {"value": "x"})):
        status, body = await put_mode(client, vera, mode, document)
        assert status == 403
        assert_sovd_error(body, "insufficient-access-rights")
    assert await mode_value(client, vera, "session") == "default"


async def test_modes_of_an_unknown_component_are_404(client: Client, alice: str) -> None:
    status, body, _ = await send(
        client, "GET", f"{vehicle_path(client)}/components/flux-capacitor/modes/session", alice
    )

    assert status == 404
    assert_sovd_error(body, "vendor-specific", "entity-not-found")
