"""Building blocks of the OpenAPI document: references, parameters, responses and the
headers and error bodies they share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from web.problems import PROBLEM_CONTENT_TYPE

Schema = dict[str, Any]
Operation = dict[str, Any]
Responses = dict[str, Any]

JSON = "application/json"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
PUBLIC: list[dict[str, list[str]]] = []


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def header_ref(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}


PROBLEM = ref("Problem")
GENERIC_ERROR = ref("GenericError")
UUID: Schema = {"type": "string", "format": "uuid"}
STAMP: Schema = {"type": "string", "format": "date-time"}
OPTIONAL_STAMP: Schema = {"type": ["string", "null"], "format": "date-time"}
TEXT: Schema = {"type": "string"}
OPTIONAL_TEXT: Schema = {"type": ["string", "null"]}


def closed(properties: Mapping[str, Schema], required: Iterable[str] | None = None) -> Schema:
    """An object with these members and no others; all required unless told."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def query(
    name: str, schema: Schema, description: str = "", *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def path(name: str, schema: Schema | None = None, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema or TEXT,
        "description": description,
    }


def paging(max_limit: int, default: int, max_offset: int) -> list[dict[str, Any]]:
    return [
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default},
            "Page size.",
        ),
        query(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": max_offset, "default": 0},
            "Items to skip.",
        ),
    ]


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {name: header_ref(name) for name in names}


def json_body(
    schema: Schema,
    description: str = "OK",
    *,
    headers: Iterable[str] = (),
    links: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": schema}},
    }
    if headers:
        response["headers"] = _headers(headers)
    if links:
        response["links"] = dict(links)
    return response


def empty(description: str, *, headers: Iterable[str] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = _headers(headers)
    return response


def problem(description: str, *, headers: Iterable[str] = ()) -> dict[str, Any]:
    """An error of the API: RFC 9457 problem details."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}},
    }
    if headers:
        response["headers"] = _headers(headers)
    return response


def sovd_error(description: str, *, headers: Iterable[str] = ()) -> dict[str, Any]:
    """An error of the SOVD surface: its GenericError, as application/json."""
    return json_body(GENERIC_ERROR, description, headers=headers)


OVERLOADED = (
    "The server has too many open connections, or the store or event bus is unavailable, "
    "or the server is stopping; retry after Retry-After seconds"
)
NUL_IN_TARGET = "The request target holds a NUL character (%00)"
NOT_SIGNED_IN = "No bearer access token, or one that is invalid, expired or revoked"


def response_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{name}"}


def parameter_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{name}"}


def operation(
    operation_id: str,
    summary: str,
    responses: Responses,
    *,
    tag: str,
    public: bool = False,
    parameters: Iterable[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    description: str = "",
) -> Operation:
    """One operation of the API (problem+json errors). Every one may answer 503 (the
    connection bound, an unavailable store, a stopping server); a protected one 401."""
    answers = dict(responses)
    if not public:
        answers.setdefault("401", response_ref("NotSignedIn"))
    answers.setdefault("503", response_ref("Unavailable"))
    if parameters:
        answers.setdefault("400", response_ref("NulInTarget"))
    built: Operation = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": PUBLIC if public else BEARER,
    }
    if description:
        built["description"] = description
    if parameters:
        built["parameters"] = list(parameters)
    if body is not None:
        built["requestBody"] = body
    built["responses"] = dict(sorted(answers.items()))
    return built


def body_problems(unprocessable: str) -> Responses:
    """What every handler that reads a JSON body may answer about it."""
    return {
        "400": response_ref("MalformedBody"),
        "408": response_ref("BodyTimeout"),
        "413": response_ref("BodyTooLarge"),
        "415": response_ref("NotJson"),
        "422": problem(unprocessable),
    }


RESPONSES: dict[str, Any] = {
    "NotSignedIn": problem(NOT_SIGNED_IN, headers=["WWW-Authenticate"]),
    "Unavailable": problem(OVERLOADED, headers=["Retry-After"]),
    "NulInTarget": problem(NUL_IN_TARGET),
    "MalformedBody": problem("The body is not valid JSON, or the request target holds a NUL"),
    "BodyTimeout": problem("The body did not arrive in time"),
    "BodyTooLarge": problem("The body is larger than 1 MiB"),
    "NotJson": problem("The body is not application/json"),
}


def request_body(schema: Schema, *, required: bool = True, example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {JSON: media}}


HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's id: the client's own X-Request-ID when it sent a usable "
        "one (1-128 of A-Z a-z 0-9 . _ : -), else a new one. Logs name it.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Location": {
        "description": "Where the new resource is.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "WWW-Authenticate": {
        "description": '`Bearer`, with `error="invalid_token"` for a token that was refused.',
        "required": True,
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "How many items match, on all pages.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "X-Command-ID": {
        "description": "The ids of the commands this request ran on the vehicle, comma "
        "separated; GET /api/v1/commands/{command_id} shows each.",
        "required": False,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the Idempotency-Key was seen before: the answer is the "
        "first request's command, and no new one was made.",
        "required": False,
        "schema": {"const": "true"},
    },
    "Allow": {
        "description": "The methods the resource takes.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`no-store`: tokens must not be cached.",
        "required": True,
        "schema": {"const": "no-store"},
    },
}


def with_request_id(responses: Iterable[dict[str, Any]]) -> None:
    """Every answer carries X-Request-ID (also WebSocket upgrades and event streams)."""
    for response in responses:
        if "$ref" not in response:
            response.setdefault("headers", {})["X-Request-ID"] = header_ref("X-Request-ID")
