"""Strict reading of JSON request bodies: malformed 400, wrong type 415, bad fields 422."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from aiohttp import web
from attrs import frozen

from web.problems import ApiError, FieldProblem
from web.typedefs import config_key


@frozen
class StringField:
    max_length: int
    required: bool = True


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


def unknown_fields(document: Mapping[str, Any], known: Collection[str]) -> list[FieldProblem]:
    return [FieldProblem(name, "unknown field") for name in document if name not in known]


async def read_string_fields(
    request: web.Request, fields: Mapping[str, StringField]
) -> dict[str, str]:
    """A JSON object holding only the given non-empty string fields."""
    document = await read_json_object(request)
    problems = unknown_fields(document, fields)
    values: dict[str, str] = {}
    for name, spec in fields.items():
        value = document.get(name)
        if value is None:
            if spec.required:
                problems.append(FieldProblem(name, "is required"))
        elif not isinstance(value, str):
            problems.append(FieldProblem(name, "must be a string"))
        elif not value:
            problems.append(FieldProblem(name, "must not be empty"))
        elif len(value) > spec.max_length:
            problems.append(FieldProblem(name, f"must be at most {spec.max_length} characters"))
        else:
            values[name] = value
    if problems:
        raise ApiError(422, "validation_failed", "The body is not valid.", errors=problems)
    return values
