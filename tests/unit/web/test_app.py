"""The app's error shape, request ids, health and metrics, on the embedded default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from db.events import InProcessBus
from db.memory import MemoryStore
from web.app import create_app
from web.config import Config
from web.problems import ApiError, FieldProblem

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    config: Config, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> Client:
    app = create_app(config, store=MemoryStore(), bus=InProcessBus())

    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: password=hunter2")

    async def refuse(request: web.Request) -> web.Response:
        raise ApiError(
            422, "validation_failed", "Bad input.", errors=[FieldProblem("port", "too big")]
        )

    async def context(request: web.Request) -> web.Response:
        bound = structlog.contextvars.get_contextvars()
        structlog.contextvars.bind_contextvars(bound_by_handler=request.query.get("mark", ""))
        return web.json_response(bound)

    app.router.add_get("/test/explode", explode)
    app.router.add_get("/test/context", context)
    app.router.add_post("/test/refuse", refuse)
    return await aiohttp_client(app)


async def test_liveness_and_readiness_on_the_embedded_default(client: Client) -> None:
    for path in ("/healthz", "/health/live"):
        response = await client.get(path)
        assert response.status == 200
    for path in ("/readyz", "/health/ready"):
        response = await client.get(path)
        assert response.status == 200
        body = await response.json()
        assert body["checks"]["store"] == {"kind": "memory", "status": "ok"}
        assert body["checks"]["bus"] == {"kind": "in-process", "status": "ok"}


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    response = await client.get("/no/such/thing", headers={"X-Request-ID": "req-123"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert response.headers["X-Request-ID"] == "req-123"
    body = await response.json()
    assert body == {
        "type": "https://sovd-sim.dev/problems/not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "No resource at this path.",
        "instance": "/no/such/thing",
        "code": "not_found",
        "request_id": "req-123",
    }


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/healthz")
    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert "GET" in response.headers["Allow"]


async def test_crash_is_a_500_problem_without_trace_and_logged_with_request_id(
    client: Client,
) -> None:
    with capture_logs() as logs:
        response = await client.get("/test/explode")
    assert response.status == 500
    body = await response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["X-Request-ID"]
    text = await response.text()
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text
    failures = [e for e in logs if e["event"] == "request_failed"]
    assert len(failures) == 1
    assert failures[0]["request_id"] == body["request_id"]


async def test_log_context_is_the_requests_own_and_ends_with_it(client: Client) -> None:
    first = await client.get("/test/context?mark=first", headers={"X-Request-ID": "req-1"})
    assert await first.json() == {"request_id": "req-1"}
    second = await client.get("/test/context", headers={"X-Request-ID": "req-2"})
    assert await second.json() == {"request_id": "req-2"}


async def test_api_error_carries_field_errors(client: Client) -> None:
    response = await client.post("/test/refuse")
    assert response.status == 422
    body = await response.json()
    assert body["errors"] == [{"field": "port", "message": "too big"}]


async def test_unusable_request_id_is_replaced(client: Client) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-ID"]) == 32


async def test_metrics_parse_as_prometheus_text(client: Client) -> None:
    await client.get("/healthz")
    await client.get("/no/such/thing")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    latency = families["sovd_http_request_duration_seconds"]
    routes = {s.labels["route"] for s in latency.samples if s.name.endswith("_count")}
    assert "/healthz" in routes and "unmatched" in routes
    assert "sovd_commands" in families
    assert "sovd_websocket_connections" in families


async def test_cors_preflight_and_headers_for_allowed_origins_only(
    make_client: Callable[..., Awaitable[Client]], config: Config
) -> None:
    server = attrs.evolve(config.server, cors_origins=("http://dash.example",))
    client = await make_client(server=server)
    preflight = await client.options(
        "/healthz",
        headers={"Origin": "http://dash.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://dash.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"

    simple = await client.get("/healthz", headers={"Origin": "http://dash.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "http://dash.example"
    assert "X-Request-ID" in simple.headers["Access-Control-Expose-Headers"]

    stranger = await client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    refused = await client.options(
        "/healthz",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_error_answers_carry_cors_headers_for_allowed_origins(
    make_client: Callable[..., Awaitable[Client]], config: Config
) -> None:
    server = attrs.evolve(config.server, cors_origins=("http://dash.example",))
    client = await make_client(server=server)
    response = await client.get("/api/v1/auth/me", headers={"Origin": "http://dash.example"})
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == "http://dash.example"
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]
