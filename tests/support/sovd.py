"""Helpers for tests of the SOVD surface: paths, JSON requests, and every GET body checked
against the JSON Schema the server ships with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft202012Validator

from tests.support.api import Client, bearer
from web.typedefs import actors_key

# The first demo vehicle is a Golf; its engine ECU (0x01) has security levels 1 and 0x11.
ENGINE = "engine-control-module"


def vehicle_path(client: Client, index: int = 0) -> str:
    vehicle = client.app[actors_key].vehicles()[index]
    return f"/vehicles/{vehicle.vehicle_id}/sovd/v1"


def component_path(client: Client, component: str = ENGINE, index: int = 0) -> str:
    return f"{vehicle_path(client, index)}/components/{component}"


async def get_valid(client: Client, path: str, token: str) -> dict[str, Any]:
    """GETs `path` with `include-schema=true`: 200, and a body that validates against its
    `schema` (itself a valid 2020-12 schema); returns the body without `schema`."""
    response = await client.get(path, params={"include-schema": "true"}, headers=bearer(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    schema = body.pop("schema")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(body)
    plain = await client.get(path, headers=bearer(token))
    assert "schema" not in await plain.json()
    return body


async def send(
    client: Client, method: str, path: str, token: str, document: Any = None
) -> tuple[int, Any, Any]:
    """A request with an optional JSON body: (status, body or None, headers)."""
    response = await client.request(method, path, json=document, headers=bearer(token))
    text = await response.text()
    body = await response.json() if text else None
    return response.status, body, response.headers


def assert_sovd_error(body: Any, error_code: str, vendor_code: str | None = None) -> None:
    assert body["error_code"] == error_code, body
    if vendor_code is not None:
        assert body["vendor_code"] == vendor_code, body
    assert body["message"]


async def poll(
    condition: Callable[[], Awaitable[Any]],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.01,
) -> Any:
    """Checks `condition` until it returns something truthy (returned); fails the test
    after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = await condition()
            if result:
                return result
            await asyncio.sleep(interval_s)
