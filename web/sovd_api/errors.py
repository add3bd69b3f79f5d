"""SOVD's error shape, `{error_code, message, vendor_code?, parameters?}`, for every answer
under `/vehicles/`: the API's own errors and domain errors translated into it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from web.problems import Problem

SOVD_PREFIX = "/vehicles/"
JSON = "application/json"


class SovdApiError(Exception):
    """Raised by SOVD handlers; rendered as a SOVD GenericError."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        vendor_code: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.vendor_code = vendor_code
        self.parameters = dict(parameters or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.vendor_code is not None:
            document["vendor_code"] = self.vendor_code
        if self.parameters:
            document["parameters"] = self.parameters
        return document


def vendor_error(
    status: int,
    vendor_code: str,
    message: str,
    parameters: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> SovdApiError:
    return SovdApiError(
        status,
        "vendor-specific",
        message,
        vendor_code=vendor_code,
        parameters=parameters,
        headers=headers,
    )


def entity_not_found(what: str) -> SovdApiError:
    return vendor_error(404, "entity-not-found", f"No {what} on this server.")


def resource_not_found(what: str) -> SovdApiError:
    return vendor_error(404, "resource-not-found", f"No {what} here.")


def invalid_request(field: str, message: str) -> SovdApiError:
    return vendor_error(400, "invalid-request", f"{field}: {message}", {"field": field})


# The API's problem codes in SOVD's words; the status stays as the problem says.
_PROBLEM_CODES: dict[str, tuple[str, str | None]] = {
    "not_authenticated": ("insufficient-access-rights", None),
    "invalid_token": ("insufficient-access-rights", None),
    "forbidden": ("insufficient-access-rights", None),
    "vehicle_not_found": ("vendor-specific", "entity-not-found"),
    "not_found": ("vendor-specific", "resource-not-found"),
    "method_not_allowed": ("vendor-specific", "method-not-allowed"),
    "vehicle_busy": ("vendor-specific", "vehicle-busy"),
    "store_unavailable": ("vendor-specific", "store-unavailable"),
    "bus_unavailable": ("vendor-specific", "bus-unavailable"),
    "stopping": ("vendor-specific", "server-stopping"),
    "unsupported_media_type": ("vendor-specific", "unsupported-media-type"),
    "request_entity_too_large": ("vendor-specific", "payload-too-large"),
    "internal_error": ("sovd-server-failure", None),
}


def from_problem(problem: Problem) -> SovdApiError:
    """An error the rest of the API raised, said the SOVD way."""
    status = problem.status
    error_code, vendor_code = _PROBLEM_CODES.get(problem.code, ("vendor-specific", None))
    parameters: dict[str, Any] = {}
    if status in (400, 422):
        status = 400
        error_code, vendor_code = "vendor-specific", "invalid-request"
        if problem.errors:
            parameters["field"] = problem.errors[0].field
            parameters["errors"] = [
                {"field": e.field, "message": e.message} for e in problem.errors
            ]
    elif vendor_code is None and error_code == "vendor-specific":
        vendor_code = problem.code.replace("_", "-")
    return SovdApiError(
        status,
        error_code,
        problem.detail,
        vendor_code=vendor_code,
        parameters=parameters,
        headers=problem.headers,
    )


def is_sovd_request(request: web.Request) -> bool:
    return request.path.startswith(SOVD_PREFIX)


def render_sovd_error(error: SovdApiError) -> web.Response:
    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type=JSON,
        headers=error.headers,
    )
