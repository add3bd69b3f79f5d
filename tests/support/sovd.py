"""What a SOVD client checks on every answer: the GenericError shape of errors, and that a
body asked for with `include-schema=true` validates against the schema it carries."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from yarl import URL

from tests.support.api import Client, bearer
from web.typedefs import actors_key

GENERIC_ERROR_MEMBERS = {"error_code", "message", "vendor_code", "translation_id", "parameters"}
# ISO 17978-3 error codes (commons/errors.yaml, as CDA and opensovd-core list them).
ERROR_CODES = {
    "error-response",
    "incomplete-request",
    "insufficient-access-rights",
    "invalid-response-content",
    "invalid-signature",
    "lock-broken",
    "not-responding",
    "precondition-not-fulfilled",
    "sovd-server-failure",
    "sovd-server-misconfigured",
    "update-automated-not-supported",
    "update-execution-in-progress",
    "update-preparation-in-progress",
    "update-process-in-progress",
    "vendor-specific",
}


async def sovd_error(
    response: ClientResponse, status: int, error_code: str, vendor_code: str | None = None
) -> dict[str, Any]:
    """The error body, after checking it is a GenericError with these codes."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", response.content_type
    body: dict[str, Any] = await response.json()
    assert set(body) <= GENERIC_ERROR_MEMBERS, body
    assert body["error_code"] in ERROR_CODES, body
    assert body["error_code"] == error_code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body.get("vendor_code") == vendor_code, body
    if body["error_code"] == "vendor-specific":
        assert isinstance(body["vendor_code"], str), body
    assert isinstance(body.get("parameters", {}), dict), body
    return body


def without_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The body less the `schema` it carries, after checking the body validates against it."""
    assert "schema" in body, sorted(body)
    schema = body["schema"]
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", schema
    rest = {name: value for name, value in body.items() if name != "schema"}
    validate(rest, schema)
    return rest


def validate(body: Any, schema: dict[str, Any]) -> None:
    """Validates the body against a JSON Schema, after checking the schema itself."""
    _validator(json.dumps(schema, sort_keys=True)).validate(body)


@functools.cache
def _validator(schema: str) -> Draft202012Validator:
    """One checked validator per distinct schema: checking a schema against the meta-schema
    costs far more than validating a body, and most resources share theirs."""
    document = json.loads(schema)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def on_server(client: TestClient[Any, Any], link: str) -> str:
    """The path of a link, after checking an absolute one points at the test server."""
    url = URL(link)
    if not url.absolute:
        return link
    assert (url.scheme, url.host, url.port) == ("http", client.host, client.port), link
    return url.path_qs


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
    body = without_schema(body)
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
