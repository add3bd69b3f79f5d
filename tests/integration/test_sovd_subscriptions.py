"""Cyclic subscriptions on both backends: values streamed as Server-Sent Events, each one a
ReadDataByID command, until the duration ends or the subscription is deleted; limits."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from jsonschema import Draft202012Validator

from tests.support.api import Backend, Client, bearer, seed_users, token_for
from web.config import Config
from web.sovd_api import subscriptions
from web.typedefs import actors_key, subscriptions_key

MakeClient = Callable[..., Awaitable[Client]]
ENGINE = "engine-control-module"
BRAKES = "brake-electronics-abs-esc"
ENGINE_SPEED_DID = "0xF40C"


@pytest.fixture
async def client(make_client: MakeClient, backend: Backend, config: Config) -> Client:
    await seed_users(backend.store, config)
    return await make_client(store=backend.store, bus=backend.bus)


@pytest.fixture
async def tokens(client: Client) -> dict[str, str]:
    return {name: await token_for(client, name) for name in ("alice", "bob", "vera", "root")}


def component_path(client: Client, component: str = ENGINE, index: int = 0) -> str:
    vehicle = client.app[actors_key].vehicles()[index]
    return f"/vehicles/{vehicle.vehicle_id}/sovd/v1/components/{component}"


def absolute(client: Client, path: str) -> str:
    return str(client.make_url(path))


def relative(client: Client, url: str) -> str:
    base = absolute(client, "")
    assert url.startswith(base)
    return "/" + url.removeprefix(base).lstrip("/")


async def get_with_schema(
    client: Client, path: str, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """GET with `include-schema=true`: 200, and the body validates against the closed schema
    it carries; both."""
    response = await client.get(path, params={"include-schema": "true"}, headers=bearer(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    schema: dict[str, Any] = body.pop("schema")
    assert schema["additionalProperties"] is False
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(body)
    return body, schema


async def get_valid(client: Client, path: str, token: str) -> dict[str, Any]:
    return (await get_with_schema(client, path, token))[0]


async def subscribe(
    client: Client,
    token: str,
    resource: str = "data/engine_speed",
    interval: str = "fast",
    duration: int = 60,
    component: str = ENGINE,
    **more: Any,
) -> Any:
    document = {"resource": resource, "interval": interval, "duration": duration, **more}
    return await client.post(
        f"{component_path(client, component)}/cyclic-subscriptions",
        json=document,
        headers=bearer(token),
    )


async def subscribed(client: Client, token: str, **options: Any) -> dict[str, Any]:
    response = await subscribe(client, token, **options)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    collection = f"{component_path(client, options.get('component', ENGINE))}/cyclic-subscriptions"
    assert response.headers["Location"] == absolute(client, f"{collection}/{body['id']}")
    return body


async def next_event(response: Any) -> dict[str, Any] | None:
    """The next `data:` event of the stream, parsed; None once the stream has ended."""
    data = None
    while True:
        line = await asyncio.wait_for(response.content.readline(), 10)
        if not line:
            assert data is None, "the stream ended inside an event"
            return None
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data: "):
            data = json.loads(line[len(b"data: ") :])
        elif not line and data is not None:
            event: dict[str, Any] = data
            return event


async def all_events(response: Any) -> list[dict[str, Any]]:
    events = []
    while (event := await next_event(response)) is not None:
        events.append(event)
    return events


def stamp(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


async def test_a_subscription_streams_values_until_its_duration_ends(
    client: Client, tokens: dict[str, str]
) -> None:
    alice = tokens["alice"]
    engine = component_path(client)
    created = await subscribed(client, alice, duration=1)
    assert created["observed_resource"] == absolute(client, f"{engine}/data/engine_speed")
    here = f"{engine}/cyclic-subscriptions/{created['id']}"
    assert created["event_source"] == absolute(client, f"{here}/events")
    assert (created["protocol"], created["interval"]) == ("sse", "fast")
    assert await get_valid(client, here, alice) == created
    assert await get_valid(client, f"{engine}/cyclic-subscriptions", alice) == {"items": [created]}
    _, data_schema = await get_with_schema(client, f"{engine}/data/engine_speed", alice)
    validator = Draft202012Validator(data_schema)

    async with client.get(relative(client, created["event_source"]), headers=bearer(alice)) as (
        response
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        events = await all_events(response)
    ended_at = datetime.now().astimezone()

    assert len(events) >= 3, events
    for event in events:
        assert set(event) == {"timestamp", "payload"}, event
        validator.validate(event["payload"])
        assert event["payload"]["id"] == "engine_speed"
    times = [stamp(event["timestamp"]) for event in events]
    assert all(b - a >= timedelta(milliseconds=49) for a, b in itertools.pairwise(times))
    assert stamp(created["expires"]) <= ended_at + timedelta(milliseconds=5)
    assert ended_at - stamp(created["expires"]) < timedelta(seconds=3)

    history = await client.get(
        "/api/v1/commands",
        params={"vehicle_id": str(client.app[actors_key].vehicles()[0].vehicle_id), "limit": 200},
        headers=bearer(alice),
    )
    reads = [
        c
        for c in (await history.json())["commands"]
        if c["command_name"] == "ReadDataByID"
        and c["command_params"]["dataId"] == ENGINE_SPEED_DID
        and c["status"] == "completed"
    ]
    # One command per value streamed, plus the one GET above.
    assert len(reads) == len(events) + 1
    response = await client.get(here, headers=bearer(alice))
    assert response.status == 404  # over, and forgotten


async def test_deleting_a_subscription_ends_its_stream(
    client: Client, tokens: dict[str, str]
) -> None:
    alice = tokens["alice"]
    created = await subscribed(client, alice, interval="slow", duration=600)
    here = relative(client, created["event_source"]).removesuffix("/events")
    async with client.get(f"{here}/events", headers=bearer(alice)) as response:
        first = await next_event(response)
        assert first is not None and "payload" in first
        assert (await client.delete(here, headers=bearer(alice))).status == 204
        # At most the read in flight still arrives, then the stream ends.
        rest = await all_events(response)
        assert len(rest) <= 1
    assert (await client.get(here, headers=bearer(alice))).status == 404
    assert (await client.get(f"{here}/events", headers=bearer(alice))).status == 404
    assert (await client.delete(here, headers=bearer(alice))).status == 404


async def test_a_newer_stream_takes_over(client: Client, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    created = await subscribed(client, alice, interval="normal", duration=600)
    events_path = relative(client, created["event_source"])
    async with client.get(events_path, headers=bearer(alice)) as older:
        assert await next_event(older) is not None
        async with client.get(events_path, headers=bearer(alice)) as newer:
            assert await next_event(newer) is not None
            assert len(await all_events(older)) <= 1
            assert await next_event(newer) is not None


async def test_the_token_may_come_in_the_query_of_the_events_url_only(
    make_client: MakeClient, backend: Backend, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")  # before the server starts
    await seed_users(backend.store, config)
    client = await make_client(store=backend.store, bus=backend.bus)
    alice = await token_for(client, "alice")
    created = await subscribed(client, alice, duration=1)
    events_path = relative(client, created["event_source"])
    async with client.get(events_path, params={"token": alice}) as response:
        assert response.status == 200
        assert len(await all_events(response)) >= 1

    here = events_path.removesuffix("/events")
    collection = here.rsplit("/", 1)[0]
    for path, token in ((here, alice), (collection, alice), (events_path, "not-a-jwt")):
        response = await client.get(path, params={"token": token})
        assert response.status == 401, path
        assert (await response.json())["error_code"] == "insufficient-access-rights"
    assert (await client.get(events_path)).status == 401
    assert alice not in caplog.text
    assert "/events?token=***" in caplog.text


async def test_others_neither_see_nor_end_a_subscription(
    client: Client, tokens: dict[str, str]
) -> None:
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    created = await subscribed(client, alice, interval="slow")
    here = relative(client, created["event_source"]).removesuffix("/events")
    for request in (
        client.get(here, headers=bearer(bob)),
        client.get(f"{here}/events", headers=bearer(bob)),
        client.delete(here, headers=bearer(bob)),
    ):
        response = await request
        assert response.status == 404
        assert (await response.json())["vendor_code"] == "resource-not-found"
    listed = await get_valid(client, f"{component_path(client)}/cyclic-subscriptions", bob)
    assert listed == {"items": []}
    # Not under another component or vehicle either.
    wrong_component = here.replace(ENGINE, BRAKES)
    assert (await client.get(wrong_component, headers=bearer(alice))).status == 404
    assert await get_valid(client, here, root) == created
    assert (await client.delete(here, headers=bearer(root))).status == 204


async def test_a_viewer_may_subscribe(client: Client, tokens: dict[str, str]) -> None:
    vera = tokens["vera"]
    created = await subscribed(client, vera, resource="data/vin", interval="slow", duration=1)
    async with client.get(relative(client, created["event_source"]), headers=bearer(vera)) as (
        response
    ):
        events = await all_events(response)
    assert events and all(set(e["payload"]["data"]) == {"vin"} for e in events)


async def test_resources_name_a_data_resource_of_this_component(
    client: Client, tokens: dict[str, str]
) -> None:
    alice = tokens["alice"]
    engine = component_path(client)
    by_path = await subscribed(client, alice, resource=f"{engine}/data/coolant_temperature")
    assert by_path["observed_resource"] == absolute(client, f"{engine}/data/coolant_temperature")
    by_url = await subscribed(client, alice, resource=absolute(client, f"{engine}/data/0xF40C"))
    assert by_url["observed_resource"] == absolute(client, f"{engine}/data/engine_speed")
    by_address = await subscribed(
        client, alice, resource=engine.replace(ENGINE, "0x01") + "/data/vin"
    )
    assert by_address["observed_resource"] == absolute(client, f"{engine}/data/vin")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resource": "data/no_such_value"}, "resource"),
        ({"resource": "data/odometer"}, "resource"),  # the engine ECU has none
        ({"resource": "faults"}, "resource"),
        ({"resource": "data/engine_speed?x=1"}, "resource"),
        ({"resource": "{brakes}/data/vehicle_speed"}, "resource"),
        ({"resource": "{other_vehicle}/data/engine_speed"}, "resource"),
        ({"resource": "http://elsewhere.example{engine}/data/engine_speed"}, "resource"),
        ({"resource": 7}, "resource"),
        ({"interval": "medium"}, "interval"),
        ({"interval": {}}, "interval"),
        ({"interval": ["fast"]}, "interval"),
        ({"duration": 0}, "duration"),
        ({"duration": 3601}, "duration"),
        ({"duration": "60"}, "duration"),
        ({"protocol": "websocket"}, "protocol"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_subscription_requests_create_nothing(
    client: Client, tokens: dict[str, str], change: dict[str, Any], field: str
) -> None:
    alice = tokens["alice"]
    engine = component_path(client)
    names = {
        "engine": engine,
        "brakes": component_path(client, BRAKES),
        "other_vehicle": component_path(client, index=1),
    }
    document: dict[str, Any] = {"resource": "data/engine_speed", "interval": "fast", "duration": 5}
    for key, value in change.items():
        document[key] = value.format(**names) if isinstance(value, str) else value
    response = await client.post(
        f"{engine}/cyclic-subscriptions", json=document, headers=bearer(alice)
    )
    assert response.status == 400, await response.text()
    error = await response.json()
    assert (error["vendor_code"], error["parameters"]["field"]) == ("invalid-request", field)
    assert await get_valid(client, f"{engine}/cyclic-subscriptions", alice) == {"items": []}


async def test_missing_members_are_named(client: Client, tokens: dict[str, str]) -> None:
    engine = component_path(client)
    for missing in ("resource", "interval", "duration"):
        document = {"resource": "data/vin", "interval": "slow", "duration": 5}
        del document[missing]
        response = await client.post(
            f"{engine}/cyclic-subscriptions", json=document, headers=bearer(tokens["alice"])
        )
        assert response.status == 400
        assert (await response.json())["parameters"]["field"] == missing


async def test_subscriptions_are_bounded_per_user_and_per_process(
    client: Client, tokens: dict[str, str]
) -> None:
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    registry = client.app[subscriptions_key]
    assert registry.max_per_user == 10
    first = await subscribed(client, alice, interval="slow", duration=300)
    for _ in range(9):
        await subscribed(client, alice, interval="slow", duration=600)
    over = await subscribe(client, alice, interval="slow", duration=60)
    assert over.status == 429
    assert (await over.json())["vendor_code"] == "too-many-subscriptions"
    assert 290 <= int(over.headers["Retry-After"]) <= 300  # when the first one ends

    registry.max_per_process = 11
    await subscribed(client, bob, interval="slow")
    full = await subscribe(client, root, interval="slow")
    assert full.status == 503
    assert (await full.json())["vendor_code"] == "subscriptions-exhausted"
    assert int(full.headers["Retry-After"]) >= 1

    here = relative(client, first["event_source"]).removesuffix("/events")
    assert (await client.delete(here, headers=bearer(alice))).status == 204
    await subscribed(client, root, interval="slow")


async def test_server_shutdown_ends_open_streams(
    make_client: MakeClient, backend: Backend, config: Config
) -> None:
    await seed_users(backend.store, config)
    client = await make_client(store=backend.store, bus=backend.bus)
    alice = await token_for(client, "alice")
    created = await subscribed(client, alice, interval="slow", duration=600)
    async with client.get(relative(client, created["event_source"]), headers=bearer(alice)) as (
        response
    ):
        assert await next_event(response) is not None
        closing = asyncio.ensure_future(client.server.close())
        assert len(await all_events(response)) <= 1  # the stream ends, not cut
        await asyncio.wait_for(closing, 10)
    assert len(client.app[subscriptions_key]) == 0


async def test_a_slow_vehicle_gets_keepalive_comments(
    make_client: MakeClient,
    backend: Backend,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscriptions, "KEEPALIVE_S", 0.05)
    await seed_users(backend.store, config)
    slow = attrs.evolve(config.simulation, latency_ms=(300, 300))
    client = await make_client(store=backend.store, bus=backend.bus, simulation=slow)
    alice = await token_for(client, "alice")
    created = await subscribed(client, alice, interval="fast", duration=1)
    async with client.get(relative(client, created["event_source"]), headers=bearer(alice)) as (
        response
    ):
        lines = [line.rstrip(b"\r\n") async for line in response.content]
    first_value = next(n for n, line in enumerate(lines) if line.startswith(b"data: "))
    # Sent while the first read was waited for, each a comment line ending an event.
    assert set(lines[:first_value]) == {b":keepalive", b""}
    assert lines[:first_value].count(b":keepalive") >= 3


FLAKY_FLEET = """
[simulation]
seed = 11

[[fleets]]
name = "flaky"
count = 1
profile = "vw-golf"
connectivity = { intermittent = 1.0, intermittent_loss = 0.5 }
"""


async def test_a_failed_read_is_an_error_event_and_the_stream_goes_on(
    make_client: MakeClient, backend: Backend, config: Config, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FLAKY_FLEET)
    await seed_users(backend.store, config)
    simulation = attrs.evolve(config.simulation, fleet=str(path))
    client = await make_client(store=backend.store, bus=backend.bus, simulation=simulation)
    alice = await token_for(client, "alice")
    created = await subscribed(client, alice, resource="data/vin", duration=2)
    async with client.get(relative(client, created["event_source"]), headers=bearer(alice)) as (
        response
    ):
        events = await all_events(response)
    errors = [n for n, event in enumerate(events) if "error" in event]
    assert errors and len(errors) < len(events), events
    assert any("payload" in event for event in events[errors[0] :])  # it went on
    for n in errors:
        assert set(events[n]) == {"timestamp", "error"}
        assert events[n]["error"]["error_code"] == "not-responding"
        assert "command_id" in events[n]["error"]["parameters"]
