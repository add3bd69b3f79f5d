"""RFC 9457 problem details: the one error shape of the API."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from aiohttp import web
from attrs import field, frozen

from db.events import BusUnavailable
from db.repositories import StoreUnavailable
from sovd.errors import (
    FleetBusy,
    FleetConflict,
    InvalidParams,
    SystemStopping,
    UnknownCommand,
    UnknownFleet,
    UnknownVehicle,
    VehicleBusy,
)
from sovd.fleet_config import InvalidFleetConfig

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://sovd-sim.dev/problems/"


@frozen
class FieldProblem:
    field: str
    message: str


class ApiError(Exception):
    """Raised by handlers and services; the error middleware renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[FieldProblem] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors = errors or []
        self.headers = dict(headers or {})


@frozen
class Problem:
    status: int
    code: str
    detail: str
    errors: list[FieldProblem] = field(factory=list)
    headers: dict[str, str] = field(factory=dict)

    def body(self, instance: str, request_id: str) -> dict[str, Any]:
        detail = self.detail
        if self.errors:
            # Clients that show only `detail` still learn what to fix.
            first = self.errors[0]
            detail = f"{detail} {first.field}: {first.message}"
            if len(self.errors) > 1:
                detail += f" (and {len(self.errors) - 1} more)"
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": detail,
            "instance": instance,
            "code": self.code,
            "request_id": request_id,
        }
        if self.errors:
            document["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return document


E = TypeVar("E", bound=Exception)
ProblemFactory = Callable[[Any], Problem]


def _retry_later(status: int, code: str, detail: str, retry_after_s: float) -> Problem:
    return Problem(
        status, code, detail, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))}
    )


def _api_error(exc: ApiError) -> Problem:
    return Problem(exc.status, exc.code, exc.detail, exc.errors, exc.headers)


def _invalid_params(exc: InvalidParams) -> Problem:
    return Problem(
        422,
        "invalid_params",
        "The command parameters are not valid.",
        [
            FieldProblem(f"command_params.{e.field}" if e.field else "command_params", e.message)
            for e in exc.errors
        ],
    )


def _unknown_command(exc: UnknownCommand) -> Problem:
    return Problem(
        422,
        "unknown_command",
        f"Unknown command {exc.name!r}; GET /api/v1/command-types lists them.",
        [FieldProblem("command_name", "unknown command")],
    )


def _vehicle_busy(exc: VehicleBusy) -> Problem:
    return _retry_later(
        429,
        "vehicle_busy",
        f"The vehicle has {exc.mailbox_size} commands waiting; retry later.",
        exc.retry_after_s,
    )


def _invalid_fleet_config(exc: InvalidFleetConfig) -> Problem:
    return Problem(
        422,
        "invalid_fleet_config",
        "The fleet config is not valid; nothing was spawned.",
        [FieldProblem(p.path or "(document)", p.message) for p in exc.problems],
    )


def _known(cls: type[E], factory: Callable[[E], Problem]) -> tuple[type[Exception], ProblemFactory]:
    return cls, factory


# Every domain error the API knows how to explain; anything else is a 500.
KNOWN_ERRORS: dict[type[Exception], ProblemFactory] = dict(
    [
        _known(ApiError, _api_error),
        _known(
            StoreUnavailable,
            lambda e: _retry_later(
                503, "store_unavailable", "The store is unavailable; retry shortly.", 2
            ),
        ),
        _known(
            BusUnavailable,
            lambda e: _retry_later(
                503, "bus_unavailable", "The event bus is unavailable; retry shortly.", 2
            ),
        ),
        _known(
            SystemStopping,
            lambda e: _retry_later(503, "stopping", "The simulator is stopping.", 5),
        ),
        _known(
            UnknownVehicle, lambda e: Problem(404, "vehicle_not_found", "No vehicle with this id.")
        ),
        _known(UnknownCommand, _unknown_command),
        _known(InvalidParams, _invalid_params),
        _known(VehicleBusy, _vehicle_busy),
        _known(InvalidFleetConfig, _invalid_fleet_config),
        _known(UnknownFleet, lambda e: Problem(404, "fleet_not_found", "No fleet with this name.")),
        _known(FleetConflict, lambda e: Problem(409, "fleet_conflict", str(e))),
        _known(
            FleetBusy,
            lambda e: Problem(409, "fleet_busy", str(e), headers={"Retry-After": "5"}),
        ),
    ]
)


def problem_for(exc: Exception) -> Problem | None:
    for cls in type(exc).__mro__:
        factory = KNOWN_ERRORS.get(cls)
        if factory is not None:
            return factory(exc)
    return None


def problem_from_http(exc: web.HTTPException) -> Problem:
    code = HTTPStatus(exc.status).phrase.lower().replace(" ", "_")
    detail = {
        404: "No resource at this path.",
        405: f"Method not allowed; allowed: {exc.headers.get('Allow', '')}.",
    }.get(exc.status, exc.text or HTTPStatus(exc.status).description)
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return Problem(exc.status, code, detail, headers=headers)


def render_problem(problem: Problem, request: web.Request, request_id: str) -> web.Response:
    response = web.Response(
        status=problem.status,
        body=orjson.dumps(problem.body(request.path, request_id)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )
    if problem.headers.get("Connection") == "close":
        response.force_close()
    return response
