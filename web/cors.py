"""CORS for browser front ends on another origin: allowed origins come from configuration
(none by default); the same list guards WebSocket `Origin`. Applied by the edge middleware."""

from __future__ import annotations

from aiohttp import web

from web.problems import Problem, render_problem
from web.typedefs import config_key

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSED_HEADERS = "Location, Retry-After, WWW-Authenticate, X-Request-ID, X-Total-Count"
PREFLIGHT_MAX_AGE_S = "600"


def origin_allowed(request: web.Request, origin: str) -> bool:
    allowed = request.app[config_key].server.cors_origins
    return "*" in allowed or origin in allowed


def is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def preflight_answer(request: web.Request, origin: str, request_id: str) -> web.StreamResponse:
    """204 with the allowed methods and headers, or 403 for an origin not on the list."""
    if not origin_allowed(request, origin):
        problem = Problem(403, "origin_not_allowed", f"Origin {origin!r} is not allowed.")
        return render_problem(problem, request, request_id)
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_S
    allow_origin(response, origin)
    return response


def allow_origin(response: web.StreamResponse, origin: str) -> None:
    if not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")
