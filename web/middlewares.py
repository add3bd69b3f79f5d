"""The edge middleware: request id, CORS, errors as problem+json and request metrics.

They are one layer because every middleware layer costs a coroutine and a wrapper per
request, on every request."""

from __future__ import annotations

import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from sovd.records import new_id
from web.cors import allow_origin, is_preflight, origin_allowed, preflight_answer
from web.problems import (
    ApiError,
    FieldProblem,
    Problem,
    problem_for,
    problem_from_http,
    render_problem,
)
from web.sovd_api.errors import SovdApiError, from_problem, is_sovd_request, render_sovd_error
from web.typedefs import command_ids_key, metrics_key, request_id_key

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
COMMAND_ID_HEADER = "X-Command-ID"
# What the request metrics count when the client left before its answer (nginx's 499).
CLIENT_CLOSED_REQUEST = 499
ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: web.Request) -> str:
    return str(request.get(request_id_key, ""))


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: also reaches WebSocket upgrades and streamed answers. A SOVD
    request that ran commands names them too, so a client can find them in the history."""
    request_id = request.get(request_id_key)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    command_ids = request.get(command_ids_key)
    if command_ids:
        response.headers[COMMAND_ID_HEADER] = ", ".join(command_ids)


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = sent if sent and ACCEPTABLE_REQUEST_ID.match(sent) else new_id().hex
    request[request_id_key] = request_id
    # Each request runs in a task of its own, on a copy of the connection's context, so what
    # is bound here (and by the handlers) ends with the request and never reaches another.
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        origin = request.headers.get("Origin")
        if origin is not None and is_preflight(request):
            response = preflight_answer(request, origin, request_id)
        else:
            try:
                refuse_nul_in_target(request)
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _render(request, problem_from_http(exc), request_id)
            except SovdApiError as exc:
                response = render_sovd_error(exc)
            except ConnectionResetError:
                # The client hung up (say, in the middle of its body): nothing to answer, and
                # not the server's failure.
                log.info("client_disconnected", method=request.method, path=request.path)
                response = web.Response(status=CLIENT_CLOSED_REQUEST)
            except Exception as exc:
                response = _render(request, _problem_for(request, exc), request_id)
            if origin is not None and origin_allowed(request, origin):
                allow_origin(response, origin)
        status = response.status
        return response
    finally:
        request.app[metrics_key].observe_request(
            request.method, _route_template(request), status, time.perf_counter() - started
        )
        structlog.contextvars.unbind_contextvars("request_id")


def refuse_nul_in_target(request: web.Request) -> None:
    """A NUL character in the path or the query (`%00`) is refused before any handler sees
    it: no store or log takes it."""
    if "%00" not in request.raw_path:
        return
    names = [name for name, value in request.query.items() if "\x00" in name + value]
    raise ApiError(
        400,
        "bad_request",
        "The request target contains a NUL character.",
        errors=[FieldProblem(name, "must not contain NUL characters") for name in names]
        or [FieldProblem("(path)", "must not contain NUL characters")],
    )


def _render(request: web.Request, problem: Problem, request_id: str) -> web.Response:
    """problem+json, or SOVD's error shape under the SOVD paths."""
    if is_sovd_request(request):
        return render_sovd_error(from_problem(problem))
    return render_problem(problem, request, request_id)


def _problem_for(request: web.Request, exc: Exception) -> Problem:
    known = problem_for(exc)
    if known is None:
        log.exception(
            "request_failed",
            method=request.method,
            path=request.path,
            request_id=request_id_of(request),
        )
        return Problem(500, "internal_error", "An unexpected error occurred.")
    if known.status >= 500:
        log.warning("request_unavailable", path=request.path, error=str(exc))
    return known
