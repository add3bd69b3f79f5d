"""SOVD operations on both backends: the self-test as an asynchronous execution (progress,
stop, delete, one at a time), the synchronous reset and programming check, executions read
from the store by any server, bad input, roles."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from sovd.commands import security_key
from tests.support.api import Backend, Client, seed_users, token_for
from tests.support.sovd import (
    assert_sovd_error,
    component_path,
    get_valid,
    poll,
    send,
)
from web.config import Config

MakeClient = Callable[..., Awaitable[Client]]
SELF_TEST = "operations/self-test"
BRAKES = "brake-electronics-abs-esc"


@pytest.fixture
async def make_sovd_client(
    make_client: MakeClient, backend: Backend, config: Config
) -> Callable[..., Awaitable[Client]]:
    """A server on the test backend; `time_scale` sets how long a self-test step lasts in
    seconds (the tests' default 0.01 finishes a self-test in 40 ms)."""
    await seed_users(backend.store, config)

    async def make(time_scale: float = 0.01) -> Client:
        simulation = attrs.evolve(config.simulation, time_scale=time_scale)
        return await make_client(store=backend.store, bus=backend.bus, simulation=simulation)

    return make


@pytest.fixture
async def client(make_sovd_client: Callable[..., Awaitable[Client]]) -> Client:
    return await make_sovd_client()


@pytest.fixture
async def slow_client(make_sovd_client: Callable[..., Awaitable[Client]]) -> Client:
    """A self-test step lasts a second: long enough to look at a running execution."""
    return await make_sovd_client(time_scale=1.0)


@pytest.fixture
async def alice(client: Client) -> str:
    return await token_for(client, "alice")


def operation_path(client: Client, operation: str, component: str | None = None) -> str:
    base = component_path(client) if component is None else component_path(client, component)
    return f"{base}/operations/{operation}"


async def start_self_test(client: Client, token: str, document: Any = None) -> tuple[str, Any]:
    status, body, headers = await send(
        client, "POST", f"{operation_path(client, 'self-test')}/executions", token, document
    )
    assert status == 202, body
    assert body["status"] == "running"
    return body["id"], headers


def execution_path(client: Client, execution_id: str, operation: str = "self-test") -> str:
    return f"{operation_path(client, operation)}/executions/{execution_id}"


async def execution(client: Client, token: str, execution_id: str) -> dict[str, Any]:
    return await get_valid(client, execution_path(client, execution_id), token)


async def until_ended(
    client: Client, token: str, execution_id: str, seen: list[int] | None = None
) -> dict[str, Any]:
    """Polls the execution until it is no longer running; `seen` collects its progress."""

    async def ended() -> dict[str, Any] | None:
        body = await execution(client, token, execution_id)
        if seen is not None:
            seen.append(body["progress"])
        return body if body["status"] != "running" else None

    result: dict[str, Any] = await poll(ended)
    return result


async def progress_reached(
    client: Client, token: str, execution_id: str, progress: int
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body = await execution(client, token, execution_id)
        return body if body["progress"] >= progress else None

    result: dict[str, Any] = await poll(reached)
    return result


async def listed(client: Client, token: str, operation: str = "self-test") -> list[str]:
    body = await get_valid(client, f"{operation_path(client, operation)}/executions", token)
    for item in body["items"]:
        assert item["href"] == f"http://{client.host}:{client.port}" + execution_path(
            client, item["id"], operation
        )
    return [item["id"] for item in body["items"]]


async def test_operations_are_listed_with_how_they_run(client: Client, alice: str) -> None:
    body = await get_valid(client, f"{component_path(client)}/operations", alice)

    assert body["items"] == [
        {
            "id": "self-test",
            "name": "ECU self-test (RoutineControl 0x0203)",
            "proximity_proof_required": False,
            "asynchronous_execution": True,
        },
        {
            "id": "check-programming-dependencies",
            "name": "Check programming dependencies (RoutineControl 0xFF01)",
            "proximity_proof_required": False,
            "asynchronous_execution": False,
        },
        {
            "id": "reset",
            "name": "ECU reset (ECUReset)",
            "proximity_proof_required": False,
            "asynchronous_execution": False,
        },
    ]
    for item in body["items"]:
        detail = await get_valid(client, operation_path(client, item["id"]), alice)
        assert detail["item"] == item
    check = await get_valid(client, operation_path(client, "check-programming-dependencies"), alice)
    assert check["modes"] == {"session": "programming", "security": "Level_1"}
    assert (await get_valid(client, operation_path(client, "Self_Test"), alice))["item"][
        "id"
    ] == "self-test"
    status, body, _ = await send(client, "GET", operation_path(client, "flash"), alice)
    assert status == 404
    assert_sovd_error(body, "vendor-specific", "resource-not-found")


async def test_self_test_runs_to_completion(client: Client, alice: str) -> None:
    execution_id, headers = await start_self_test(client, alice, {"timeout": 30, "parameters": {}})

    assert headers["Location"] == f"http://{client.host}:{client.port}" + execution_path(
        client, execution_id
    )
    assert headers["X-Command-ID"] == execution_id
    seen: list[int] = []
    done = await until_ended(client, alice, execution_id, seen)
    assert seen == sorted(seen), "progress only rises"
    assert done["status"] == "completed"
    assert done["capability"] == "execute"
    assert done["progress"] == 100
    assert done["parameters"]["state"] == "completed"
    assert done["parameters"]["result"] in ("passed", "failed")
    assert isinstance(done["parameters"]["findings"], list)
    assert await listed(client, alice) == [execution_id]

    _, page, _ = await send(client, "GET", "/api/v1/commands", alice)
    (command,) = page["commands"]
    assert command["command_id"] == execution_id
    assert command["command_name"] == "RoutineControl"
    assert command["command_params"] == {"ecuAddress": "0x01", "routineId": "0x0203"}
    assert command["status"] == "completed"
    _, chunks, _ = await send(client, "GET", f"/api/v1/commands/{execution_id}/responses", alice)
    assert [c["response_payload"]["progress"] for c in chunks] == [0, 25, 50, 75, 100]


async def test_a_running_self_test_shows_its_progress_rising_and_can_be_stopped(
    slow_client: Client,
) -> None:
    client, alice = slow_client, await token_for(slow_client, "alice")
    execution_id, _ = await start_self_test(client, alice)

    running = await progress_reached(client, alice, execution_id, 25)
    assert running == {
        "id": execution_id,
        "status": "running",
        "capability": "execute",
        "progress": 25,
    }
    status, body, _ = await send(
        client, "PUT", execution_path(client, execution_id), alice, {"capability": "stop"}
    )
    assert (status, body) == (202, {"id": execution_id, "status": "running"})

    stopped = await until_ended(client, alice, execution_id)
    assert stopped["status"] == "completed"
    assert stopped["capability"] == "stop"
    assert stopped["parameters"] == {"state": "stopped"}
    assert 25 <= stopped["progress"] < 100
    _, chunks, _ = await send(client, "GET", f"/api/v1/commands/{execution_id}/responses", alice)
    assert len(chunks) < 5, "fewer progress chunks than a full run"
    assert chunks[-1]["is_final"]
    assert chunks[-1]["response_payload"]["state"] == "stopped"
    assert [c["sequence_number"] for c in chunks] == list(range(1, len(chunks) + 1))

    status, body, _ = await send(
        client, "PUT", execution_path(client, execution_id), alice, {"capability": "stop"}
    )
    assert status == 409
    assert_sovd_error(body, "precondition-not-fulfilled")


async def test_one_self_test_at_a_time_and_delete_removes_it(
    make_sovd_client: Callable[..., Awaitable[Client]],
) -> None:
    # Two servers on one store, both up before anything runs: what one deletes, the other
    # no longer shows.
    client, other = await make_sovd_client(time_scale=1.0), await make_sovd_client()
    alice = await token_for(client, "alice")
    first, _ = await start_self_test(client, alice)

    status, body, _ = await send(
        client, "POST", f"{operation_path(client, 'self-test')}/executions", alice
    )
    assert status == 409
    assert_sovd_error(body, "precondition-not-fulfilled")
    assert body["parameters"]["execution_id"] == first
    assert await listed(client, alice) == [first]
    assert (await execution(other, alice, first))["status"] == "running"

    status, body, _ = await send(client, "DELETE", execution_path(client, first), alice)
    assert (status, body) == (204, None)

    for server in (client, other):
        status, body, _ = await send(server, "GET", execution_path(server, first), alice)
        assert status == 404
        assert_sovd_error(body, "vendor-specific", "resource-not-found")
        assert await listed(server, alice) == []
    status, _, _ = await send(client, "DELETE", execution_path(client, first), alice)
    assert status == 404
    _, command, _ = await send(client, "GET", f"/api/v1/commands/{first}", alice)
    assert command["command_id"] == first, "the command stays on record"

    second, _ = await start_self_test(client, alice)
    assert await listed(client, alice) == [second]
    status, _, _ = await send(client, "DELETE", execution_path(client, second), alice)
    assert status == 204


async def test_timeout_stops_a_self_test(slow_client: Client) -> None:
    client, alice = slow_client, await token_for(slow_client, "alice")
    execution_id, _ = await start_self_test(client, alice, {"timeout": 1})

    stopped = await until_ended(client, alice, execution_id)

    assert (stopped["status"], stopped["capability"]) == ("completed", "stop")
    assert stopped["progress"] < 100


async def test_a_self_test_on_another_component_runs_beside(slow_client: Client) -> None:
    client, alice = slow_client, await token_for(slow_client, "alice")
    engine, _ = await start_self_test(client, alice)

    status, body, _ = await send(
        client, "POST", f"{operation_path(client, 'self-test', BRAKES)}/executions", alice
    )

    assert status == 202, body
    brakes = body["id"]
    status, _, _ = await send(client, "GET", execution_path(client, brakes), alice)
    assert status == 404, "an execution belongs to its component"
    for path in (
        execution_path(client, engine),
        f"{operation_path(client, 'self-test', BRAKES)}/executions/{brakes}",
    ):
        assert (await send(client, "DELETE", path, alice))[0] == 204


async def test_reset_returns_the_ecu_to_the_default_session(client: Client, alice: str) -> None:
    modes = f"{component_path(client)}/modes/session"
    assert (await send(client, "PUT", modes, alice, {"value": "extended"}))[0] == 200

    status, body, headers = await send(
        client,
        "POST",
        f"{operation_path(client, 'reset')}/executions",
        alice,
        {"parameters": {"value": "SOFTRESET"}},
    )

    assert (status, body) == (200, {"parameters": {"reset_type": "softReset"}})
    assert (await get_valid(client, modes, alice))["value"] == "default"
    (command_id,) = headers["X-Command-ID"].split(", ")
    assert await listed(client, alice, "reset") == [command_id]
    done = await get_valid(client, execution_path(client, command_id, "reset"), alice)
    assert done == {
        "id": command_id,
        "status": "completed",
        "capability": "execute",
        "progress": 100,
        "parameters": {"reset_type": "softReset"},
    }
    status, body, _ = await send(
        client, "PUT", execution_path(client, command_id, "reset"), alice, {"capability": "stop"}
    )
    assert status == 409


async def test_reset_is_a_hard_reset_by_default(client: Client, alice: str) -> None:
    status, body, _ = await send(
        client, "POST", f"{operation_path(client, 'reset')}/executions", alice
    )

    assert (status, body) == (200, {"parameters": {"reset_type": "hardReset"}})


async def test_a_reset_type_that_does_not_exist_is_named(client: Client, alice: str) -> None:
    status, body, _ = await send(
        client,
        "POST",
        f"{operation_path(client, 'reset')}/executions",
        alice,
        {"parameters": {"value": "powerCycle"}},
    )

    assert status == 400
    assert_sovd_error(body, "vendor-specific", "invalid-request")
    assert body["parameters"]["field"] == "parameters.value"
    assert "'powerCycle'" in body["message"]
    assert "hardReset, keyOffOnReset, softReset" in body["message"]


async def test_programming_dependencies_need_programming_session_and_security(
    client: Client, alice: str
) -> None:
    path = f"{operation_path(client, 'check-programming-dependencies')}/executions"
    status, body, _ = await send(client, "POST", path, alice)
    assert status == 502
    assert (body["parameters"]["service"], body["parameters"]["nrc"]) == (0x31, 0x31)

    modes = f"{component_path(client)}/modes"
    for session in ("extended", "programming"):
        assert (await send(client, "PUT", f"{modes}/session", alice, {"value": session}))[0] == 200
    _, seeded, _ = await send(
        client, "PUT", f"{modes}/security", alice, {"value": "Level_1_RequestSeed"}
    )
    seed = bytes(int(b, 16) for b in seeded["seed"]["Request_Seed"].split())
    status, _, _ = await send(
        client,
        "PUT",
        f"{modes}/security",
        alice,
        {"value": "Level_1", "key": security_key(seed).hex()},
    )
    assert status == 200

    status, body, _ = await send(client, "POST", path, alice, {})
    assert (status, body) == (200, {"parameters": {"state": "completed", "result": "passed"}})


async def test_executions_are_found_only_where_they_ran(client: Client, alice: str) -> None:
    execution_id, _ = await start_self_test(client, alice)
    await until_ended(client, alice, execution_id)
    _, _, headers = await send(client, "GET", f"{component_path(client)}/modes/session", alice)
    read_id = headers["X-Command-ID"]

    for path in (
        execution_path(client, str(uuid.uuid4())),
        execution_path(client, "not-an-id"),
        execution_path(client, read_id),
        execution_path(client, execution_id, "reset"),
        execution_path(client, execution_id, "check-programming-dependencies"),
        f"{operation_path(client, 'self-test', BRAKES)}/executions/{execution_id}",
    ):
        for method in ("GET", "DELETE"):
            status, body, _ = await send(client, method, path, alice)
            assert status == 404, (method, path)
            assert_sovd_error(body, "vendor-specific", "resource-not-found")
    assert (await execution(client, alice, execution_id))["status"] == "completed"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"timeout": 30, "proximity_response": "x"}, "proximity_response"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"parameters": []}, "parameters"),
        ({"parameters": {"depth": "full"}}, "parameters.depth"),
    ],
)
async def test_bad_start_bodies_are_400_and_start_nothing(
    client: Client, alice: str, document: dict[str, Any], field: str
) -> None:
    status, body, _ = await send(
        client, "POST", f"{operation_path(client, 'self-test')}/executions", alice, document
    )

    assert status == 400, body
    assert_sovd_error(body, "vendor-specific", "invalid-request")
    assert body["parameters"]["field"] == field
    assert await listed(client, alice) == []


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"capability": "freeze"}, "capability"),
        ({"capability": "execute"}, "capability"),
        ({}, "capability"),
        ({"capability": "stop", "force": True}, "force"),
    ],
)
async def test_only_stop_is_a_capability(
    client: Client, alice: str, document: dict[str, Any], field: str
) -> None:
    execution_id, _ = await start_self_test(client, alice)

    status, body, _ = await send(
        client, "PUT", execution_path(client, execution_id), alice, document
    )

    assert status == 400, body
    assert_sovd_error(body, "vendor-specific", "invalid-request")
    assert body["parameters"]["field"] == field


async def test_viewers_read_executions_but_do_not_run_or_stop_them(
    client: Client, alice: str
) -> None:
    vera = await token_for(client, "vera")
    execution_id, _ = await start_self_test(client, alice)
    await until_ended(client, alice, execution_id)

    assert (await execution(client, vera, execution_id))["status"] == "completed"
    assert await listed(client, vera) == [execution_id]
    await get_valid(client, f"{component_path(client)}/operations", vera)
    for method, path, document in (
        ("POST", f"{operation_path(client, 'self-test')}/executions", None),
        ("POST", f"{operation_path(client, 'reset')}/executions", None),
        ("PUT", execution_path(client, execution_id), {"capability": "stop"}),
        ("DELETE", execution_path(client, execution_id), None),
    ):
        status, body, _ = await send(client, method, path, vera, document)
        assert status == 403, (method, path)
        assert_sovd_error(body, "insufficient-access-rights")
    assert await listed(client, alice) == [execution_id]
