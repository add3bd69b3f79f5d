"""REST handlers for commands: parse, authorise, call the service, shape the answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs
from aiohttp import web

from db.repositories import CommandFilter
from sovd import strict
from sovd.records import COMMAND_STATUSES, Command, Response
from web.auth.guards import current_user, ensure_visible, not_found, owner_filter, require_role
from web.auth.views import client_of
from web.bodies import JSON_BODY, json_response, read_body
from web.commands.service import CommandRequest
from web.problems import ApiError, FieldProblem
from web.queries import MAX_OFFSET, QueryReader, page_body
from web.typedefs import actors_key, command_service_key, store_key

MAX_PAGE = 500
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

_wire = strict.converter(JSON_BODY)
_command_document = _wire.get_unstructure_hook(Command)
_response_document = _wire.get_unstructure_hook(Response)


def command_json(command: Command) -> dict[str, Any]:
    """The API's command object; json_response writes its ids and timestamps as text."""
    document: dict[str, Any] = _command_document(command)
    return document


def response_json(response: Response) -> dict[str, Any]:
    document: dict[str, Any] = _response_document(response)
    return document


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiError(
            422,
            "validation_failed",
            "The Idempotency-Key header is not valid.",
            errors=[FieldProblem(IDEMPOTENCY_KEY_HEADER, "must be 1-255 printable characters")],
        )
    return key


def stream_url(request: web.Request, command_id: UUID | str) -> str:
    scheme = "wss" if request.scheme == "https" else "ws"
    return f"{scheme}://{request.host}/ws/responses/{command_id}"


@require_role("engineer", "admin")
async def submit_command(request: web.Request) -> web.Response:
    command_request = await read_body(request, CommandRequest, _wire)
    accepted = await request.app[command_service_key].submit(
        current_user(request), command_request, client_of(request), _idempotency_key(request)
    )
    command = accepted.command
    ids = accepted.ids
    command_id = ids.command_id if ids is not None else str(command.command_id)
    body = command_json(command)
    body["stream_url"] = stream_url(request, command_id)
    headers = {"Location": f"/api/v1/commands/{command_id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(body, status=202, headers=headers)


async def _visible_command(request: web.Request) -> Command:
    try:
        command_id = UUID(request.match_info["command_id"])
    except ValueError:
        raise ApiError(404, "not_found", "No command with this id.") from None
    command = await request.app[store_key].commands.get(command_id)
    if command is None:
        raise not_found("command")
    ensure_visible(current_user(request), command.user_id, "command")
    return command


@require_role("engineer", "admin")
async def get_command(request: web.Request) -> web.Response:
    return json_response(command_json(await _visible_command(request)))


@require_role("engineer", "admin")
async def list_command_responses(request: web.Request) -> web.Response:
    command = await _visible_command(request)
    responses = await request.app[store_key].responses.list_for_command(command.command_id)
    return json_response([response_json(r) for r in responses])


@require_role("engineer", "admin")
async def list_commands(request: web.Request) -> web.Response:
    user = current_user(request)
    reader = QueryReader(
        request.query,
        ("vehicle_id", "status", "user_id", "start_date", "end_date", "limit", "offset"),
    )
    query = CommandFilter(
        vehicle_id=reader.uuid("vehicle_id"),
        status=reader.choice("status", COMMAND_STATUSES),
        user_id=reader.uuid("user_id"),
        start_date=reader.timestamp("start_date"),
        end_date=reader.timestamp("end_date"),
        limit=reader.integer("limit", 50, 1, MAX_PAGE),
        offset=reader.integer("offset", 0, 0, MAX_OFFSET),
    )
    reader.check()
    own = owner_filter(user)
    if own is not None:
        if query.user_id not in (None, own):
            return json_response(
                page_body("commands", [], total=0, limit=query.limit, offset=query.offset)
            )
        query = attrs.evolve(query, user_id=own)
    page = await request.app[store_key].commands.list(query)
    return json_response(
        page_body(
            "commands",
            [command_json(c) for c in page.items],
            total=page.total,
            limit=query.limit,
            offset=query.offset,
        )
    )


async def list_command_types(request: web.Request) -> web.Response:
    return json_response(request.app[actors_key].registry.describe())
