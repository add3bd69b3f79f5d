"""JSON bodies of the API: requests read strictly (malformed 400, wrong type 415, bad fields
422) through one dialect of sovd.strict, responses written by orjson."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar
from uuid import UUID

import orjson
from aiohttp import web
from attrs import frozen
from cattrs import Converter

from sovd import strict
from web.problems import ApiError, FieldProblem
from web.typedefs import config_key

T = TypeVar("T")

_JSON_KINDS = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}


def _json_kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


JSON_BODY = strict.Dialect(
    names={
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a JSON object",
    },
    given=_json_kind,
    unknown_key="unknown field",
    quote_keys=False,
)
"""How request bodies name their problems; each view module builds its converter from it."""


@frozen
class MaxLength:
    """A constraint (sovd.strict) on the length of a string."""

    characters: int

    def check(self, value: object) -> None:
        if isinstance(value, str) and len(value) > self.characters:
            raise ValueError(f"must be at most {self.characters} characters")


async def read_body(request: web.Request, cls: type[T], converter: Converter) -> T:
    """The body as an instance of `cls`, structured by `converter` (one built from
    JSON_BODY); 400/415 as read_json_object, 422 naming every bad field."""
    return structure_body(await read_json_object(request), cls, converter)


def structure_body(document: dict[str, Any], cls: type[T], converter: Converter) -> T:
    try:
        return converter.structure(document, cls)
    except strict.STRUCTURE_ERRORS as exc:
        problems = strict.problems(exc, JSON_BODY)
        raise ApiError(
            422,
            "validation_failed",
            "The body is not valid.",
            errors=[FieldProblem(path or "(body)", message) for path, message in problems],
        ) from None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400/415/422 otherwise.

    Requiring a JSON content type also keeps cross-site HTML forms from posting here.
    """
    if not _is_json(request.content_type):
        raise ApiError(415, "unsupported_media_type", "The body must be application/json.")
    raw = await _read_body(request)
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ApiError(
            422,
            "validation_failed",
            "The body must be a JSON object.",
            errors=[FieldProblem("(body)", "must be a JSON object")],
        )
    where = nul_at(document)
    if where is not None:
        raise ApiError(
            422,
            "validation_failed",
            "The body is not valid.",
            errors=[FieldProblem(where or "(body)", "must not contain NUL characters")],
        )
    return document


async def _read_body(request: web.Request) -> bytes:
    if request.content.is_eof():  # all of it arrived with the headers: nothing to wait for
        return await request.read()
    try:
        async with asyncio.timeout(request.app[config_key].server.body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            "The body did not arrive in time.",
            headers={"Connection": "close"},
        ) from None


async def read_text(request: web.Request) -> str:
    """The body as UTF-8 text without NUL characters (for `application/toml` documents)."""
    try:
        text = (await _read_body(request)).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_body", "The body is not UTF-8 text.") from None
    if "\x00" in text:
        raise ApiError(
            422,
            "validation_failed",
            "The body is not valid.",
            errors=[FieldProblem("(body)", "must not contain NUL characters")],
        )
    return text


def nul_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (member name or value) holding a NUL character,
    which no store keeps: PostgreSQL text refuses it."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = nul_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`body` as JSON; UUIDs and timestamps (ISO 8601, as isoformat) are written as text."""
    return web.Response(
        body=orjson.dumps(body, default=_as_text),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _as_text(value: object) -> str:
    # orjson writes uuid.UUID itself but not asyncpg's subclass of it, which it hands here.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
