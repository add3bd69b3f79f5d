"""What a SOVD client checks on every answer: the GenericError shape of errors, and that a
body asked for with `include-schema=true` validates against the schema it carries."""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from yarl import URL

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
