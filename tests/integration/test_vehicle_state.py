"""What commands change of a vehicle outlives the process on PostgreSQL: a server started
again on the same store continues from the state the last one left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from db.postgres import PostgresStore
from db.redis_bus import RedisBus
from tests.conftest import MakeClient
from tests.support.api import Client, bearer, seed_users, token_for
from tests.support.fleets import without_recorded_fleets
from web.config import Config
from web.typedefs import actors_key

pytestmark = pytest.mark.integration

FLEET = """
[profiles.worn-golf]
extends = "vw-golf"
dtcs = [
    { ecu = "0x01", code = "P0300", probability = 1.0, status = 0xAF },
    { ecu = "0x01", code = "P0420", probability = 1.0, status = 0x2F },
]

[[fleets]]
name = "workshop"
count = 1
profile = "worn-golf"
"""


@pytest.fixture
async def store(pg_store: PostgresStore) -> AsyncIterator[PostgresStore]:
    async for clean in without_recorded_fleets(pg_store):
        assert isinstance(clean, PostgresStore)
        yield clean


async def run(client: Client, token: str, name: str, **params: Any) -> dict[str, Any]:
    """Submits and follows the command to its end; the last reply payload."""
    vehicle = client.app[actors_key].vehicles()[0]
    body = {
        "vehicle_id": str(vehicle.vehicle_id),
        "command_name": name,
        "command_params": {"ecuAddress": "0x01", **params},
    }
    accepted = await client.post("/api/v1/commands", json=body, headers=bearer(token))
    assert accepted.status == 202, await accepted.text()
    command_id = (await accepted.json())["command_id"]
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        async for _ in ws:
            pass
    command = await (
        await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
    ).json()
    assert command["status"] == "completed", command
    replies = await (
        await client.get(f"/api/v1/commands/{command_id}/responses", headers=bearer(token))
    ).json()
    payload: dict[str, Any] = replies[-1]["response_payload"]
    return payload


async def test_a_restarted_server_continues_from_the_vehicle_state(
    make_client: MakeClient,
    store: PostgresStore,
    redis_bus: RedisBus,
    config: Config,
    tmp_path: Path,
) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    simulation = attrs.evolve(config.simulation, fleet=str(fleet))
    await seed_users(store, config)

    first = await make_client(store=store, bus=redis_bus, simulation=simulation)
    token = await token_for(first, "alice")
    assert (await run(first, token, "ReadDTC"))["dtcCount"] == 2
    await run(first, token, "ClearDTC", dtcCode="P0420")
    await run(first, token, "DiagnosticSessionControl", session="extended")
    await run(first, token, "WriteDataByID", dataId="0xF198", value="WS42")
    await first.close()

    second = await make_client(store=store, bus=redis_bus, simulation=simulation)
    token = await token_for(second, "alice")
    left = await run(second, token, "ReadDTC")
    assert [dtc["dtcCode"] for dtc in left["dtcs"]] == ["P0300"]
    assert (await run(second, token, "ReadDataByID", dataId="0xF198"))["value"] == "WS42"
    assert (await run(second, token, "ReadDataByID", dataId="0xF186"))["value"] == "extended"
