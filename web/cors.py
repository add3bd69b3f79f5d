"""CORS for browser front ends on another origin: allowed origins come from configuration
(none by default); the same list guards WebSocket `Origin`."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from web.middlewares import request_id_of
from web.problems import Problem, render_problem
from web.typedefs import config_key

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSED_HEADERS = "Location, Retry-After, WWW-Authenticate, X-Request-ID, X-Total-Count"
PREFLIGHT_MAX_AGE_S = "600"


def origin_allowed(request: web.Request, origin: str) -> bool:
    allowed = request.app[config_key].server.cors_origins
    return "*" in allowed or origin in allowed


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if origin is None or not origin_allowed(request, origin):
        if preflight:
            problem = Problem(403, "origin_not_allowed", f"Origin {origin!r} is not allowed.")
            return render_problem(problem, request, request_id_of(request))
        return await handler(request)
    if preflight:
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_S
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")
    return response
