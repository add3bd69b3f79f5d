"""Operations of a component: the ECU self-test (asynchronous, RoutineControl 0x0203), the
programming dependency check (RoutineControl 0xFF01) and the ECU reset (ECUReset). An
execution is the command that ran the operation, read back from the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web
from attrs import frozen

from actors.actor import HALT_REFUSED, HALTED_BEFORE_START, HaltRequest, VehicleActor
from sovd.commands import CHECK_PROGRAMMING_DEPENDENCIES, SELF_TEST
from sovd.entities import Component
from sovd.records import Command, utc_now
from sovd.uds import RESET_TYPES_BY_LABEL
from web.auth.guards import require_role
from web.sovd_api import schemas
from web.sovd_api.common import (
    check_query,
    component_of,
    component_uri,
    negative_response,
    read_body,
    respond,
    run_command,
    start_command,
    vehicle_of,
)
from web.sovd_api.errors import SovdApiError, invalid_request, resource_not_found
from web.sovd_api.locking import ensure_unlocked
from web.sovd_api.schemas import BOOLEAN, GENERIC_ERROR, LINK, STRING, Schema, obj
from web.typedefs import (
    actors_key,
    cluster_key,
    starting_executions_key,
    stopping_executions_key,
    store_key,
)

# Executions listed: those submitted in this window, newest first, at most this many.
log = structlog.get_logger(__name__)

EXECUTIONS_KEPT = timedelta(minutes=10)
EXECUTIONS_LISTED = 50
MAX_TIMEOUT_S = 3600
UNFINISHED = frozenset({"pending", "in_progress"})
STOPPED_UNRUN = frozenset({HALTED_BEFORE_START, HALT_REFUSED})
NOT_STOPPABLE = "cannot be stopped while it runs; wait for it to end"
RESET_TYPES = {label.lower(): label for label in RESET_TYPES_BY_LABEL}

ROUTINE_RESULT = {"enum": ["passed", "failed"]}
SELF_TEST_RESULT = obj(
    {
        "state": {"enum": ["completed", "stopped"]},
        "result": ROUTINE_RESULT,
        "findings": {"type": "array", "items": STRING},
    },
    ("state",),
)
CHECK_RESULT = obj({"state": {"enum": ["completed"]}, "result": ROUTINE_RESULT}, ("state",))
RESET_RESULT = obj({"reset_type": {"enum": list(RESET_TYPES_BY_LABEL)}}, ("reset_type",))


def _routine_result(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {key: payload[key] for key in ("state", "result", "findings") if key in payload}


def _reset_result(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"reset_type": payload["resetType"]}


def _no_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    for name in parameters:
        raise invalid_request(f"parameters.{name}", "unknown parameter; this operation has none")
    return {}


def _reset_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    for name in parameters:
        if name != "value":
            raise invalid_request(f"parameters.{name}", "unknown parameter; known: value")
    value = parameters.get("value", "hardReset")
    label = RESET_TYPES.get(value.lower()) if isinstance(value, str) else None
    if label is None:
        allowed = ", ".join(RESET_TYPES_BY_LABEL)
        raise invalid_request(
            "parameters.value", f"{value!r} is not a reset type; allowed: {allowed}"
        )
    return {"resetType": label}


@frozen
class Operation:
    """One operation and the command that runs it. `target` names the command's params
    that say which ECU and routine it ran on; `parameters` turns the execution's
    `parameters` into the rest of the command's params; `result` reads the final reply."""

    id: str
    name: str
    command_name: str
    asynchronous: bool
    target: Callable[[Component], dict[str, str]]
    parameters: Callable[[Mapping[str, Any]], dict[str, Any]]
    result: Callable[[Mapping[str, Any]], dict[str, Any]]
    result_schema: Schema
    modes: Mapping[str, str] | None = None

    def description(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "proximity_proof_required": False,
            "asynchronous_execution": self.asynchronous,
        }

    def targets(self, command: Command, component: Component) -> bool:
        """Whether the command ran this operation on the component (hex compared as
        numbers: `0x0a` is `0x0A`)."""
        if command.command_name != self.command_name:
            return False
        for name, wanted in self.target(component).items():
            held = command.command_params.get(name)
            try:
                if not isinstance(held, str) or int(held, 16) != int(wanted, 16):
                    return False
            except ValueError:
                return False
        return True


def _routine(routine_id: int) -> Callable[[Component], dict[str, str]]:
    def target(component: Component) -> dict[str, str]:
        return {"ecuAddress": component.ecu_address, "routineId": f"0x{routine_id:04X}"}

    return target


def _ecu(component: Component) -> dict[str, str]:
    return {"ecuAddress": component.ecu_address}


OPERATIONS = {
    op.id: op
    for op in (
        Operation(
            "self-test",
            "ECU self-test (RoutineControl 0x0203)",
            "RoutineControl",
            asynchronous=True,
            target=_routine(SELF_TEST),
            parameters=_no_parameters,
            result=_routine_result,
            result_schema=SELF_TEST_RESULT,
        ),
        Operation(
            "check-programming-dependencies",
            "Check programming dependencies (RoutineControl 0xFF01)",
            "RoutineControl",
            asynchronous=False,
            target=_routine(CHECK_PROGRAMMING_DEPENDENCIES),
            parameters=_no_parameters,
            result=_routine_result,
            result_schema=CHECK_RESULT,
            modes={"session": "programming", "security": "Level_1"},
        ),
        Operation(
            "reset",
            "ECU reset (ECUReset)",
            "ECUReset",
            asynchronous=False,
            target=_ecu,
            parameters=_reset_parameters,
            result=_reset_result,
            result_schema=RESET_RESULT,
        ),
    )
}

OPERATION = obj(
    {
        "id": {"enum": list(OPERATIONS)},
        "name": STRING,
        "proximity_proof_required": BOOLEAN,
        "asynchronous_execution": BOOLEAN,
    },
    ("id", "name", "proximity_proof_required", "asynchronous_execution"),
)
OPERATION_LIST = schemas.items_of(OPERATION)
OPERATION_DETAIL = obj(
    {"item": OPERATION, "modes": {"type": "object", "additionalProperties": STRING}},
    ("item",),
)
EXECUTION_LIST = schemas.items_of(
    obj(
        {"id": STRING, "href": LINK, "status": {"enum": ["running", "completed", "failed"]}},
        ("id", "href", "status"),
    )
)
EXECUTION_LIST["description"] = (
    "The operation's executions on this component submitted in the last 10 minutes (at most "
    "50), newest first, deleted ones left out. Items are objects with the execution's id and "
    "its absolute URL, not the bare id strings of the ISO template."
)
DATA_ERROR = obj({"path": STRING, "error": GENERIC_ERROR}, ("path", "error"))
EXECUTION_STATUSES = ["running", "completed", "failed"]


def _result_schema(operations: tuple[Operation, ...]) -> Schema:
    if len(operations) == 1:
        return operations[0].result_schema
    return {"anyOf": [operation.result_schema for operation in operations]}


def execution_schema(*operations: Operation) -> Schema:
    """An execution of the operation; of any of them when given several."""
    return obj(
        {
            "id": STRING,
            "status": {"enum": EXECUTION_STATUSES},
            "capability": {"enum": ["execute", "stop"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "parameters": _result_schema(operations),
            "error": {"type": "array", "items": DATA_ERROR, "minItems": 1},
        },
        ("id", "status", "capability", "progress"),
    )


def sync_result_schema(*operations: Operation) -> Schema:
    return obj({"parameters": _result_schema(operations)}, ("parameters",))


EXECUTION = execution_schema(*OPERATIONS.values())
SYNC_RESULT = sync_result_schema(*(op for op in OPERATIONS.values() if not op.asynchronous))
STARTED = obj({"id": STRING, "status": {"enum": EXECUTION_STATUSES}}, ("id", "status"))
# POST body (none at all is an empty one); `parameters.value` is the reset's type, and a
# null timeout is none.
START_REQUEST = obj(
    {
        "timeout": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TIMEOUT_S},
        "parameters": obj({"value": {"enum": list(RESET_TYPES_BY_LABEL)}}),
    }
)
CONTROL_REQUEST = obj(
    {
        "capability": {"const": "stop"},
        "timeout": {"description": "Accepted and ignored."},
        "parameters": {"description": "Accepted and ignored."},
    },
    ("capability",),
)


def operation_of(request: web.Request) -> Operation:
    """The path's operation, case-insensitively (`Self_Test` is `self-test`)."""
    ident = request.match_info["operation_id"]
    operation = OPERATIONS.get(ident.lower().replace("_", "-"))
    if operation is None:
        raise resource_not_found(f"operation {ident!r} on this component")
    return operation


def _execution_uri(
    request: web.Request,
    vehicle: VehicleActor,
    component: Component,
    operation: Operation,
    execution_id: str,
) -> str:
    operation_uri = f"{component_uri(request, vehicle, component)}/operations/{operation.id}"
    return f"{operation_uri}/executions/{execution_id}"


async def list_operations(request: web.Request) -> web.Response:
    check_query(request)
    component_of(request)
    items = [operation.description() for operation in OPERATIONS.values()]
    return respond(request, {"items": items}, OPERATION_LIST)


async def get_operation(request: web.Request) -> web.Response:
    check_query(request)
    component_of(request)
    operation = operation_of(request)
    body: dict[str, Any] = {"item": operation.description()}
    if operation.modes is not None:
        body["modes"] = dict(operation.modes)
    return respond(request, body, OPERATION_DETAIL)


async def _start_body(request: web.Request) -> tuple[int | None, Mapping[str, Any]]:
    """`{timeout?, parameters?}`; no body at all is an empty one."""
    body = await read_body(request, ("timeout", "parameters")) if request.body_exists else {}
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 1 <= timeout <= MAX_TIMEOUT_S
    ):
        raise invalid_request("timeout", f"must be a whole number of seconds, 1 to {MAX_TIMEOUT_S}")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise invalid_request("parameters", "must be an object")
    return timeout, parameters


def _already_running(operation: Operation, execution_id: str | None) -> SovdApiError:
    return SovdApiError(
        409,
        "precondition-not-fulfilled",
        f"{operation.id} is already running on this component; stop it or wait for it to end.",
        parameters={"execution_id": execution_id} if execution_id else None,
    )


@require_role("engineer", "admin")
async def start_execution(request: web.Request) -> web.Response:
    """A synchronous operation answers 200 with its result; an asynchronous one 202 with
    the execution's Location, and `timeout` seconds later it is stopped if still running.
    (A synchronous one ends within the command deadline, so `timeout` changes nothing.)"""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    operation = operation_of(request)
    timeout, parameters = await _start_body(request)
    params = operation.target(component) | operation.parameters(parameters)
    await ensure_unlocked(request, vehicle, component)
    if not operation.asynchronous:
        outcome = await run_command(request, vehicle, operation.command_name, params)
        body = {"parameters": operation.result(outcome.final_payload or {})}
        return respond(request, body, sync_result_schema(operation))

    # One start at a time per operation and component in this process: a second POST
    # arriving while the first is being stored sees it as running.
    starting = request.app[starting_executions_key]
    key = (vehicle.vehicle_id, component.id, operation.id)
    if key in starting:
        raise _already_running(operation, None)
    starting.add(key)
    try:
        recent = await _recent(request, vehicle, component, operation)
        running = [c for c in recent if c.status in UNFINISHED]
        if running:
            raise _already_running(operation, str(running[0].command_id))
        execution_id = await start_command(request, vehicle, operation.command_name, params)
    finally:
        starting.discard(key)
    if timeout is not None:
        _stop_after(request.app, vehicle.vehicle_id, operation.command_name, execution_id, timeout)
    location = _execution_uri(request, vehicle, component, operation, execution_id)
    return respond(
        request,
        {"id": execution_id, "status": "running"},
        STARTED,
        status=202,
        headers={"Location": location},
    )


async def _halt(
    app: web.Application, vehicle_id: UUID, command_name: str, command_id: UUID
) -> HaltRequest:
    """Stops a command where it runs: here, or in cluster mode on the node that owns the
    vehicle's partition (then a stoppable command is reported as halting)."""
    actors = app[actors_key]
    node = app.get(cluster_key)
    if node is None or node.runs(vehicle_id):
        return actors.halt(vehicle_id, command_id)
    if actors.registry.get(command_name).stop is None:
        return "not_stoppable"
    await node.request_halt(vehicle_id, command_id)
    return "halting"


def _stop_after(
    app: web.Application, vehicle_id: UUID, command_name: str, command_id: str, seconds: int
) -> None:
    """The execution's `timeout`: it is stopped when still running after that long."""
    stopping: set[asyncio.Task[HaltRequest]] = app[stopping_executions_key]

    def stop() -> None:
        task = asyncio.create_task(_halt(app, vehicle_id, command_name, UUID(command_id)))
        stopping.add(task)
        task.add_done_callback(_stopped)

    def _stopped(task: asyncio.Task[HaltRequest]) -> None:
        stopping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # its fleet was removed meanwhile, or Redis is down: the command runs on until
            # its deadline
            log.warning("execution_timeout_not_applied", error=str(task.exception()))

    asyncio.get_running_loop().call_later(seconds, stop)


async def _recent(
    request: web.Request, vehicle: VehicleActor, component: Component, operation: Operation
) -> list[Command]:
    return await request.app[store_key].commands.list_matching(
        vehicle.vehicle_id,
        operation.command_name,
        operation.target(component),
        utc_now() - EXECUTIONS_KEPT,
        EXECUTIONS_LISTED,
    )


async def list_executions(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    operation = operation_of(request)
    items = [
        {
            "id": str(command.command_id),
            "href": _execution_uri(request, vehicle, component, operation, str(command.command_id)),
            "status": execution_status(command),
        }
        for command in await _recent(request, vehicle, component, operation)
    ]
    return respond(request, {"items": items}, EXECUTION_LIST)


async def _execution(
    request: web.Request, vehicle: VehicleActor, component: Component, operation: Operation
) -> Command:
    """The path's execution: a command of this vehicle that ran the operation on the
    component and was not deleted; 404 resource-not-found otherwise."""
    ident = request.match_info["execution_id"]
    not_found = resource_not_found(f"execution {ident!r} of {operation.id}")
    try:
        command_id = UUID(ident)
    except ValueError:
        raise not_found from None
    store = request.app[store_key]
    command = await store.commands.get(command_id)
    if (
        command is None
        or command.vehicle_id != vehicle.vehicle_id
        or not operation.targets(command, component)
        or await store.commands.is_dismissed(command_id)
    ):
        raise not_found
    return command


async def get_execution(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    operation = operation_of(request)
    command = await _execution(request, vehicle, component, operation)
    responses = await request.app[store_key].responses.list_for_command(command.command_id)
    payloads = [response.response_payload for response in responses]
    return respond(
        request, execution_json(operation, command, payloads), execution_schema(operation)
    )


def execution_status(command: Command) -> str:
    if command.status in UNFINISHED:
        return "running"
    return "completed" if command.status == "completed" else "failed"


def execution_json(
    operation: Operation, command: Command, payloads: list[dict[str, Any]]
) -> dict[str, Any]:
    """An execution's state from its stored command and reply chunks."""
    final = payloads[-1] if payloads else None
    stopped = (final is not None and final.get("state") == "stopped") or (
        command.error_message in STOPPED_UNRUN
    )
    progress = max((p["progress"] for p in payloads if "progress" in p), default=0)
    body: dict[str, Any] = {
        "id": str(command.command_id),
        "capability": "stop" if stopped else "execute",
    }
    if command.status in UNFINISHED:
        body |= {"status": "running", "progress": progress}
    elif command.status == "completed":
        body |= {
            "status": "completed",
            "progress": progress if stopped else 100,
            "parameters": operation.result(final or {}),
        }
    else:
        body |= {
            "status": "failed",
            "progress": progress,
            "error": [_execution_error(command, final)],
        }
    return body


def _execution_error(command: Command, final: Mapping[str, Any] | None) -> dict[str, Any]:
    # A timed-out command may end on a responsePending (0x78): that is no refusal.
    negative = negative_response(final) if command.status == "failed" else None
    error: dict[str, Any]
    if negative is not None:
        error = {
            "error_code": "error-response",
            "message": command.error_message or "negative response",
            "parameters": {
                "service": int(negative["service"], 16),
                "nrc": int(negative["nrc"], 16),
                "nrc_name": negative["nrcName"],
                "service_name": negative["serviceName"],
            },
        }
    elif command.error_message in STOPPED_UNRUN:
        error = {
            "error_code": "vendor-specific",
            "vendor_code": "stopped",
            "message": command.error_message,
        }
    else:
        error = {
            "error_code": "not-responding",
            "message": command.error_message or "The vehicle did not answer.",
        }
    return {"path": "/", "error": error}


def _not_running(operation: Operation, why: str) -> SovdApiError:
    return SovdApiError(
        409, "precondition-not-fulfilled", f"This execution of {operation.id} {why}."
    )


async def _stop(request: web.Request, command: Command) -> HaltRequest:
    """Asks the vehicle's actor to stop the command; `unknown` when it has ended."""
    if command.status not in UNFINISHED:
        return "unknown"
    return await _halt(request.app, command.vehicle_id, command.command_name, command.command_id)


@require_role("engineer", "admin")
async def control_execution(request: web.Request) -> web.Response:
    """PUT `{capability: "stop"}`: the only capability an execution offers."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    operation = operation_of(request)
    body = await read_body(request, ("capability", "timeout", "parameters"))
    capability = body.get("capability")
    if capability != "stop":
        if capability is None:
            raise invalid_request("capability", "is required")
        raise invalid_request("capability", f"{capability!r} is not supported; allowed: stop")
    command = await _execution(request, vehicle, component, operation)
    await ensure_unlocked(request, vehicle, component)
    halted = await _stop(request, command)
    if halted == "unknown":
        raise _not_running(operation, "has ended; there is nothing to stop")
    if halted == "not_stoppable":
        raise _not_running(operation, NOT_STOPPABLE)
    body = {"id": str(command.command_id), "status": "running"}
    return respond(request, body, STARTED, status=202)


@require_role("engineer", "admin")
async def delete_execution(request: web.Request) -> web.Response:
    """Stops the execution if it runs, then removes it from the operation's executions
    (its command stays on record)."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    operation = operation_of(request)
    command = await _execution(request, vehicle, component, operation)
    await ensure_unlocked(request, vehicle, component)
    if await _stop(request, command) == "not_stoppable":
        raise _not_running(operation, NOT_STOPPABLE)
    if not await request.app[store_key].commands.dismiss(command.command_id, utc_now()):
        raise resource_not_found(f"execution {command.command_id} of {operation.id}")
    return web.Response(status=204)
