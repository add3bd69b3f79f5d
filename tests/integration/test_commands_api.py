"""The commands API beyond the happy path, on both backends: validation that creates
nothing, access rules, listing, idempotency, a full mailbox, a store outage, recovery."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import attrs
import pytest
from aiohttp import WSMsgType

from db.events import InProcessBus
from db.postgres import PostgresStore, create_pool
from db.repositories import CommandFilter, Store
from sovd.records import Command
from tests.support.api import Backend, Client, bearer, seed_users, token_for
from tests.support.proxy import CuttableProxy
from web.config import Config
from web.typedefs import actors_key, pipeline_key

MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, config: Config) -> Client:
    await seed_users(backend.store, config)
    return await make_client(store=backend.store, bus=backend.bus)


def body(client: Client, index: int = 0, name: str = "ReadDTC", **params: Any) -> dict[str, Any]:
    vehicle = client.app[actors_key].vehicles()[index]
    return {
        "vehicle_id": str(vehicle.vehicle_id),
        "command_name": name,
        "command_params": {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}", **params},
    }


async def submit(client: Client, token: str, document: Any, **headers: str) -> Any:
    return await client.post("/api/v1/commands", json=document, headers=bearer(token) | headers)


async def wait_terminal(client: Client, token: str, command_id: str) -> dict[str, Any]:
    async with client.ws_connect(f"/ws/responses/{command_id}?token={token}") as ws:
        while (await asyncio.wait_for(ws.receive(), 10)).type == WSMsgType.TEXT:
            pass
    command: dict[str, Any] = await (
        await client.get(f"/api/v1/commands/{command_id}", headers=bearer(token))
    ).json()
    return command


@pytest.mark.parametrize(
    ("mutate", "status", "code", "field"),
    [
        (lambda b: b | {"vehicle_id": str(uuid.uuid4())}, 404, "vehicle_not_found", None),
        (lambda b: b | {"vehicle_id": "not-a-uuid"}, 422, "validation_failed", "vehicle_id"),
        (lambda b: b | {"command_name": "FlashECU"}, 422, "unknown_command", "command_name"),
        (
            lambda b: b | {"command_params": {"ecuAddress": "16"}},
            422,
            "invalid_params",
            "command_params.ecuAddress",
        ),
        (
            lambda b: b | {"command_params": {"ecuAddress": "0xEE"}},
            422,
            "invalid_params",
            "command_params.ecuAddress",
        ),
        (lambda b: b | {"extra": 1}, 422, "validation_failed", "extra"),
        (lambda b: {"command_name": "ReadDTC"}, 422, "validation_failed", "vehicle_id"),
        (lambda b: b | {"command_params": []}, 422, "validation_failed", "command_params"),
    ],
)
async def test_bad_input_gets_a_precise_error_and_creates_nothing(
    client: Client, store: Store, mutate: Any, status: int, code: str, field: str | None
) -> None:
    token = await token_for(client, "alice")
    response = await submit(client, token, mutate(body(client)))
    assert response.status == status, await response.text()
    problem = await response.json()
    assert problem["code"] == code
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]
        # The one-line detail names the first problem for clients that show only it.
        first = problem["errors"][0]
        assert f"{first['field']}: {first['message']}" in problem["detail"]
    assert (await store.commands.list(CommandFilter())).total == 0


async def test_malformed_json_is_400_and_creates_nothing(client: Client, store: Store) -> None:
    token = await token_for(client, "alice")
    response = await client.post(
        "/api/v1/commands",
        data=b"{not json",
        headers=bearer(token) | {"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await store.commands.list(CommandFilter())).total == 0


async def test_viewers_may_not_submit_or_read_commands(client: Client, store: Store) -> None:
    token = await token_for(client, "vera")
    assert (await submit(client, token, body(client))).status == 403
    assert (await client.get("/api/v1/commands", headers=bearer(token))).status == 403
    assert (await store.commands.list(CommandFilter())).total == 0


async def test_engineers_see_their_own_commands_admins_see_all(client: Client) -> None:
    alice, bob, root = [await token_for(client, n) for n in ("alice", "bob", "root")]
    alice_ids = []
    for index in range(3):
        response = await submit(client, alice, body(client, index))
        alice_ids.append((await response.json())["command_id"])
    bob_id = (await (await submit(client, bob, body(client, 4))).json())["command_id"]

    mine = await (await client.get("/api/v1/commands", headers=bearer(alice))).json()
    assert mine["total"] == 3
    assert [c["command_id"] for c in mine["commands"]] == alice_ids[::-1]
    assert (await client.get(f"/api/v1/commands/{bob_id}", headers=bearer(alice))).status == 404
    assert (
        await client.get(f"/api/v1/commands/{bob_id}/responses", headers=bearer(alice))
    ).status == 404
    async with client.ws_connect(f"/ws/responses/{bob_id}?token={alice}") as ws:
        await ws.receive()
    assert ws.close_code == 1008

    everything = await (await client.get("/api/v1/commands", headers=bearer(root))).json()
    assert everything["total"] == 4
    page = await (
        await client.get("/api/v1/commands?limit=2&offset=1", headers=bearer(root))
    ).json()
    assert (page["limit"], page["offset"], len(page["commands"])) == (2, 1, 2)
    assert [c["command_id"] for c in page["commands"]] == [alice_ids[2], alice_ids[1]]
    vehicle_id = body(client, 4)["vehicle_id"]
    by_vehicle = await (
        await client.get(f"/api/v1/commands?vehicle_id={vehicle_id}", headers=bearer(root))
    ).json()
    assert [c["command_id"] for c in by_vehicle["commands"]] == [bob_id]


async def test_list_filters_by_status_and_dates_and_rejects_bad_queries(client: Client) -> None:
    token = await token_for(client, "alice")
    failing = body(client, 0, "ReadDataByID", dataId="0x1234")
    command_id = (await (await submit(client, token, failing)).json())["command_id"]
    assert (await wait_terminal(client, token, command_id))["status"] == "failed"
    failed = await (
        await client.get("/api/v1/commands?status=failed", headers=bearer(token))
    ).json()
    assert [c["command_id"] for c in failed["commands"]] == [command_id]
    future = await (
        await client.get("/api/v1/commands?start_date=2999-01-01", headers=bearer(token))
    ).json()
    assert future["total"] == 0
    bad = await client.get(
        "/api/v1/commands?status=done&limit=0&start_date=yesterday&colour=red",
        headers=bearer(token),
    )
    assert bad.status == 422
    fields = {e["field"] for e in (await bad.json())["errors"]}
    assert fields == {"status", "limit", "start_date", "colour"}


async def test_a_command_leaves_its_submission_and_completion_in_the_audit_log(
    client: Client,
) -> None:
    alice, root = await token_for(client, "alice"), await token_for(client, "root")
    document = body(client)
    submitted = await submit(client, alice, document, **{"User-Agent": "audit-test/2.0"})
    command_id = (await submitted.json())["command_id"]
    command = await wait_terminal(client, alice, command_id)
    assert command["status"] == "completed"

    listed = await client.get(
        f"/api/v1/audit-logs?user_id={command['user_id']}", headers=bearer(root)
    )
    assert listed.status == 200
    entries = {e["action"]: e for e in (await listed.json())["audit_logs"]}
    assert {"command_submitted", "command_completed"} <= set(entries)
    for action in ("command_submitted", "command_completed"):
        entry = entries[action]
        assert (entry["command_id"], entry["entity_id"]) == (command_id, command_id)
        assert entry["vehicle_id"] == document["vehicle_id"]
        assert entry["entity_type"] == "command"
    done = entries["command_completed"]
    assert done["details"] == {
        "status": "completed",
        "error_message": None,
        "command_name": "ReadDTC",
    }
    assert datetime.fromisoformat(done["timestamp"]) == datetime.fromisoformat(
        command["completed_at"]
    )
    assert entries["command_submitted"]["user_agent"] == "audit-test/2.0"


async def test_command_types_describe_the_registry(client: Client) -> None:
    token = await token_for(client, "vera")
    types = await (await client.get("/api/v1/command-types", headers=bearer(token))).json()
    by_name = {t["name"]: t for t in types}
    assert {"ReadDTC", "ClearDTC", "ReadDataByID", "RoutineControl"} <= by_name.keys()
    read = by_name["ReadDataByID"]
    assert read["parameters"]["properties"]["dataId"]["pattern"] == "^0x[0-9A-Fa-f]{4}$"
    assert read["idempotent"] is True
    assert by_name["RoutineControl"]["streaming"] is True


async def test_idempotency_key_gives_one_command(client: Client, store: Store) -> None:
    token = await token_for(client, "alice")
    document = body(client)
    first = await submit(client, token, document, **{"Idempotency-Key": "k-1"})
    again = await submit(client, token, document, **{"Idempotency-Key": "k-1"})
    assert first.status == again.status == 202
    assert (await first.json())["command_id"] == (await again.json())["command_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await submit(client, token, body(client, 1), **{"Idempotency-Key": "k-1"})
    assert other.status == 422
    assert (await other.json())["code"] == "idempotency_key_reused"
    assert (await store.commands.list(CommandFilter())).total == 1


async def test_full_mailbox_is_429_with_retry_after_and_every_202_finishes(
    make_client: MakeClient, store: Store, config: Config
) -> None:
    await seed_users(store, config)
    slow = attrs.evolve(config.simulation, mailbox_size=1, latency_ms=(150, 150))
    client = await make_client(store=store, bus=InProcessBus(), simulation=slow)
    token = await token_for(client, "alice")
    answers = [await submit(client, token, body(client)) for _ in range(4)]
    statuses = [a.status for a in answers]
    assert 429 in statuses, statuses
    busy = answers[statuses.index(429)]
    assert int(busy.headers["Retry-After"]) >= 1
    assert (await busy.json())["code"] == "vehicle_busy"
    accepted = [(await a.json())["command_id"] for a in answers if a.status == 202]
    for command_id in accepted:
        assert (await wait_terminal(client, token, command_id))["status"] == "completed"
    assert (await store.commands.list(CommandFilter())).total == len(accepted)


@pytest.mark.integration
async def test_store_outage_is_503_with_retry_after(
    make_client: MakeClient, pg_store: PostgresStore, pg_dsn: str, config: Config
) -> None:
    await seed_users(pg_store, config)
    parts = urlsplit(pg_dsn)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = pg_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    store = PostgresStore(await create_pool(proxied, min_size=1, max_size=2))
    client = await make_client(store=store, bus=InProcessBus())
    token = await token_for(client, "alice")
    try:
        await proxy.cut()
        response = await submit(client, token, body(client))
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert (await response.json())["code"] == "store_unavailable"
        await proxy.restore()
    finally:
        await client.close()
        await store.close()
        if proxy._server is not None:
            await proxy.cut()
    assert (await pg_store.commands.list(CommandFilter(status="pending"))).total == 0


@pytest.mark.integration
@pytest.mark.parametrize("name", ["ClearDTC", "ReadDTC"])
async def test_a_command_refused_while_the_store_stalls_changes_nothing(
    make_client: MakeClient,
    pg_store: PostgresStore,
    pg_dsn: str,
    config: Config,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command is queued while its row is being stored. When that write stalls past the
    accept timeout, the client hears 503: a ClearDTC then never runs (the vehicle keeps its
    fault) and, its row being written after all, ends failed; a ReadDTC may have run, and is
    recorded whole."""
    monkeypatch.setattr("web.commands.service.ACCEPT_TIMEOUT_S", 0.3)
    await seed_users(pg_store, config)
    client = await make_client(store=pg_store, bus=InProcessBus())
    token = await token_for(client, "alice")
    actors = client.app[actors_key]
    vehicle = actors.vehicles()[0]
    ecu = vehicle.profile.ecus[0].address
    actors.store_fault(vehicle.vehicle_id, ecu, "P0420")
    blocker = await asyncpg.connect(pg_dsn)
    try:
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("LOCK TABLE commands IN ACCESS EXCLUSIVE MODE")
        response = await submit(client, token, body(client, name=name))
        assert response.status == 503
        await actors.drain()
        state = actors.get(vehicle.vehicle_id).state
        assert state is not None
        assert state.ecu(ecu).stored_dtcs(), "the refused command changed the vehicle"
        await locked.rollback()
        await client.app[pipeline_key].committed()
    finally:
        await blocker.close()
        await client.close()
    stored = (await pg_store.commands.list(CommandFilter())).items
    assert [c.command_name for c in stored] == [name]
    responses = await pg_store.responses.list_for_command(stored[0].command_id)
    if name == "ClearDTC":
        assert stored[0].status == "failed"
        assert stored[0].error_message == "not accepted: the store was unavailable"
        assert responses == []
    else:
        assert stored[0].status == "completed" and len(responses) == 1


async def test_commands_left_unfinished_by_a_previous_process_reach_a_terminal_state(
    make_client: MakeClient, store: Store, config: Config
) -> None:
    users = await seed_users(store, config)
    before = await make_client(store=store, bus=InProcessBus())
    vehicle = before.app[actors_key].vehicles()[0]
    queued = Command(
        uuid.uuid4(),
        users["alice"],
        vehicle.vehicle_id,
        "ReadDTC",
        {"ecuAddress": f"0x{vehicle.profile.ecus[0].address:02X}"},
        "pending",
        datetime.now(UTC),
    )
    running = attrs.evolve(queued, command_id=uuid.uuid4(), status="in_progress")
    for command in (queued, running):  # as a process killed mid-way leaves them
        await store.commands.add(command)
    await before.close()

    after = await make_client(store=store, bus=InProcessBus())
    token = await token_for(after, "alice")
    resumed = await wait_terminal(after, token, str(queued.command_id))
    interrupted = await wait_terminal(after, token, str(running.command_id))
    assert resumed["status"] == "completed"
    assert interrupted["status"] == "failed"
    assert "interrupted" in interrupted["error_message"]
