"""REST handlers for commands: parse, authorise, call the service, shape the answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs
import orjson
from aiohttp import web

from db.repositories import CommandFilter
from sovd.records import COMMAND_STATUSES, Command, Response
from web.auth.guards import current_user, ensure_visible, not_found, owner_filter, require_role
from web.auth.views import client_of
from web.bodies import read_json_object, unknown_fields
from web.commands.pipeline import Tracked, iso
from web.commands.service import CommandRequest
from web.problems import ApiError, FieldProblem
from web.queries import MAX_OFFSET, QueryReader, page_body
from web.typedefs import actors_key, command_service_key, store_key

MAX_PAGE = 500
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def command_json(command: Command, ids: Tracked | None = None) -> dict[str, Any]:
    """The API's command object; `ids` spares turning ids the pipeline already holds as text
    into text again."""
    return {
        "command_id": ids.command_id if ids is not None else str(command.command_id),
        "user_id": str(command.user_id),
        "vehicle_id": ids.vehicle_id if ids is not None else str(command.vehicle_id),
        "command_name": command.command_name,
        "command_params": command.command_params,
        "status": command.status,
        "error_message": command.error_message,
        "submitted_at": iso(command.submitted_at),
        "completed_at": iso(command.completed_at),
    }


def response_json(response: Response) -> dict[str, Any]:
    return {
        "response_id": str(response.response_id),
        "command_id": str(response.command_id),
        "response_payload": response.response_payload,
        "sequence_number": response.sequence_number,
        "is_final": response.is_final,
        "received_at": iso(response.received_at),
    }


def _command_request(document: dict[str, Any]) -> CommandRequest:
    problems = unknown_fields(document, ("vehicle_id", "command_name", "command_params"))
    vehicle_id: UUID | None = None
    raw_vehicle = document.get("vehicle_id")
    if raw_vehicle is None:
        problems.append(FieldProblem("vehicle_id", "is required"))
    elif not isinstance(raw_vehicle, str):
        problems.append(FieldProblem("vehicle_id", "must be a string"))
    else:
        try:
            vehicle_id = UUID(raw_vehicle)
        except ValueError:
            problems.append(FieldProblem("vehicle_id", "must be a UUID"))
    name = document.get("command_name")
    if name is None:
        problems.append(FieldProblem("command_name", "is required"))
    elif not isinstance(name, str) or not name:
        problems.append(FieldProblem("command_name", "must be a non-empty string"))
    params = document.get("command_params", {})
    if not isinstance(params, dict):
        problems.append(FieldProblem("command_params", "must be a JSON object"))
    if problems or vehicle_id is None or not isinstance(name, str):
        raise ApiError(422, "validation_failed", "The body is not valid.", errors=problems)
    return CommandRequest(vehicle_id, name, params)


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
    command_request = _command_request(await read_json_object(request))
    accepted = await request.app[command_service_key].submit(
        current_user(request), command_request, client_of(request), _idempotency_key(request)
    )
    command = accepted.command
    ids = accepted.ids
    command_id = ids.command_id if ids is not None else str(command.command_id)
    body = command_json(command, ids) | {"stream_url": stream_url(request, command_id)}
    headers = {"Location": f"/api/v1/commands/{command_id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(
        body=orjson.dumps(body), status=202, headers=headers, content_type="application/json"
    )


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
    return web.json_response(command_json(await _visible_command(request)))


@require_role("engineer", "admin")
async def list_command_responses(request: web.Request) -> web.Response:
    command = await _visible_command(request)
    responses = await request.app[store_key].responses.list_for_command(command.command_id)
    return web.json_response([response_json(r) for r in responses])


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
            return web.json_response(
                page_body("commands", [], total=0, limit=query.limit, offset=query.offset)
            )
        query = attrs.evolve(query, user_id=own)
    page = await request.app[store_key].commands.list(query)
    return web.json_response(
        page_body(
            "commands",
            [command_json(c) for c in page.items],
            total=page.total,
            limit=query.limit,
            offset=query.offset,
        )
    )


async def list_command_types(request: web.Request) -> web.Response:
    return web.json_response(request.app[actors_key].registry.describe())
