"""RFC 9457 problem details: the one error shape of the API."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from attrs import field, frozen

from db.events import BusUnavailable
from db.repositories import StoreUnavailable
from sovd.errors import InvalidParams, SystemStopping, UnknownCommand, UnknownVehicle, VehicleBusy

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
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "code": self.code,
            "request_id": request_id,
        }
        if self.errors:
            document["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return document


ProblemFactory = Callable[[Exception], Problem]


def _invalid_params(exc: Exception) -> Problem:
    assert isinstance(exc, InvalidParams)
    return Problem(
        422,
        "invalid_params",
        "The command parameters are not valid.",
        [
            FieldProblem(f"command_params.{e.field}" if e.field else "command_params", e.message)
            for e in exc.errors
        ],
    )


def _vehicle_busy(exc: Exception) -> Problem:
    assert isinstance(exc, VehicleBusy)
    return Problem(
        429,
        "vehicle_busy",
        f"The vehicle has {exc.mailbox_size} commands waiting; retry later.",
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
    )


# Domain errors the API knows how to explain; later layers register theirs at import time.
KNOWN_ERRORS: dict[type[Exception], ProblemFactory] = {
    ApiError: lambda e: Problem(e.status, e.code, e.detail, e.errors, e.headers),  # type: ignore[attr-defined]
    StoreUnavailable: lambda e: Problem(
        503,
        "store_unavailable",
        "The store is unavailable; retry shortly.",
        headers={"Retry-After": "2"},
    ),
    UnknownVehicle: lambda e: Problem(404, "vehicle_not_found", "No vehicle with this id."),
    UnknownCommand: lambda e: Problem(
        422,
        "unknown_command",
        f"Unknown command {e.name!r}; GET /api/v1/command-types lists them.",  # type: ignore[attr-defined]
        [FieldProblem("command_name", "unknown command")],
    ),
    InvalidParams: _invalid_params,
    VehicleBusy: _vehicle_busy,
    SystemStopping: lambda e: Problem(
        503, "stopping", "The simulator is stopping.", headers={"Retry-After": "5"}
    ),
    BusUnavailable: lambda e: Problem(
        503,
        "bus_unavailable",
        "The event bus is unavailable; retry shortly.",
        headers={"Retry-After": "2"},
    ),
}


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
    return web.Response(
        status=problem.status,
        body=orjson.dumps(problem.body(request.path, request_id)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )
