"""What every SOVD handler needs: the vehicle and component a path names, the links it
answers with, strict query and body reading, and running a command to its end."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from actors.actor import VehicleActor
from sovd.entities import Component, VehicleEntities, entities_of
from sovd.errors import UnknownVehicle
from web.auth.guards import current_user
from web.auth.views import client_of
from web.bodies import read_json_object
from web.commands.pipeline import Outcome
from web.commands.service import CommandRequest
from web.sovd_api.errors import SovdApiError, entity_not_found, invalid_request
from web.typedefs import actors_key, command_ids_key, command_service_key

# The route templates of every vehicle's SOVD server (web.routes, web.openapi).
SOVD_PATH = "/vehicles/{vehicle_id}/sovd"
V1_PATH = SOVD_PATH + "/v1"
COMPONENT_PATH = V1_PATH + "/components/{component_id}"
SOVD_VERSION = "1.1.0"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Query parameters every GET accepts: the schema switch, and tags, which we do not use.
COMMON_QUERY = ("include-schema", "tags")


def vehicle_of(request: web.Request) -> VehicleActor:
    """The vehicle the path names; 404 entity-not-found for an unknown or malformed id."""
    try:
        vehicle_id = UUID(request.match_info["vehicle_id"])
        return request.app[actors_key].get(vehicle_id)
    except (ValueError, UnknownVehicle):
        raise entity_not_found("vehicle with this id") from None


def entities(vehicle: VehicleActor) -> VehicleEntities:
    return entities_of(vehicle.identity.profile)


def component_of(request: web.Request, vehicle: VehicleActor | None = None) -> Component:
    vehicle = vehicle or vehicle_of(request)
    ident = request.match_info["component_id"]
    component = entities(vehicle).component(ident)
    if component is None:
        raise entity_not_found(f"component {ident!r}")
    return component


def root_uri(request: web.Request, vehicle: VehicleActor) -> str:
    """The vehicle's SOVD root (its `base_uri`), absolute, as the client reached us."""
    return f"{request.scheme}://{request.host}/vehicles/{vehicle.vehicle_id}/sovd"


def base_uri(request: web.Request, vehicle: VehicleActor) -> str:
    return f"{root_uri(request, vehicle)}/v1"


def component_uri(request: web.Request, vehicle: VehicleActor, component: Component) -> str:
    return f"{base_uri(request, vehicle)}/components/{component.id}"


def check_query(
    request: web.Request, allowed: Collection[str] = (), *, prefixes: tuple[str, ...] = ()
) -> bool:
    """Refuses query parameters the resource does not know (`prefixes` admits families such
    as `status[...]`); True when the client asked for the body's JSON Schema
    (`include-schema=true`)."""
    for name in request.query:
        if name not in allowed and name not in COMMON_QUERY and not name.startswith(prefixes):
            raise invalid_request(name, "unknown query parameter")
    return flag(request.query, "include-schema", default=False)


def flag(query: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise invalid_request(name, "must be true or false")


def respond(
    request: web.Request,
    body: dict[str, Any],
    schema: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A SOVD JSON answer; with `include-schema=true` it carries `schema`, a JSON Schema the
    body (without `schema`) validates against."""
    if schema is not None and flag(request.query, "include-schema", default=False):
        body = body | {"schema": {"$schema": SCHEMA_DIALECT} | schema}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


async def read_body(request: web.Request, known: Collection[str]) -> dict[str, Any]:
    """A JSON object with only the known members; 400 invalid-request naming the first
    problem otherwise (415 for another content type)."""
    document = await read_json_object(request)
    for name in document:
        if name not in known:
            raise invalid_request(name, "unknown member")
    return document


async def run_command(
    request: web.Request, vehicle: VehicleActor, command_name: str, params: dict[str, Any]
) -> Outcome:
    """Submits the command for the signed-in user, like POST /api/v1/commands, and waits
    until its terminal status is stored. A negative UDS answer is 502 `error-response`; no
    answer at all (timeout, lost link) is 504 `not-responding`."""
    service = request.app[command_service_key]
    accepted = await service.submit(
        current_user(request),
        CommandRequest(vehicle.vehicle_id, command_name, params),
        client_of(request),
        await_outcome=True,
    )
    command_id = str(accepted.command.command_id)
    request.setdefault(command_ids_key, []).append(command_id)
    if accepted.outcome is None:
        raise RuntimeError("the command service gave no outcome to wait for")
    outcome = await accepted.outcome
    if outcome.status != "completed":
        raise outcome_error(outcome, command_id)
    return outcome


async def start_command(
    request: web.Request, vehicle: VehicleActor, command_name: str, params: dict[str, Any]
) -> str:
    """Submits the command without waiting for it; returns its id."""
    service = request.app[command_service_key]
    accepted = await service.submit(
        current_user(request),
        CommandRequest(vehicle.vehicle_id, command_name, params),
        client_of(request),
    )
    command_id = str(accepted.command.command_id)
    request.setdefault(command_ids_key, []).append(command_id)
    return command_id


def negative_response(payload: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if payload is None:
        return None
    negative = payload.get("negativeResponse")
    return negative if isinstance(negative, Mapping) else None


def outcome_error(outcome: Outcome, command_id: str) -> SovdApiError:
    negative = negative_response(outcome.final_payload)
    if negative is not None:
        return nrc_error(negative, command_id)
    return SovdApiError(
        504,
        "not-responding",
        outcome.error_message or "The vehicle did not answer.",
        parameters={"command_id": command_id},
    )


def nrc_error(negative: Mapping[str, Any], command_id: str) -> SovdApiError:
    return SovdApiError(
        502,
        "error-response",
        f"The ECU answered {negative['serviceName']} negatively: "
        f"NRC {negative['nrc']} {negative['nrcName']}.",
        parameters={
            "service": int(negative["service"], 16),
            "nrc": int(negative["nrc"], 16),
            "nrc_name": negative["nrcName"],
            "service_name": negative["serviceName"],
            "command_id": command_id,
        },
    )
