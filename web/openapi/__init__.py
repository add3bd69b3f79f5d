"""The OpenAPI 3.1 description of every route, and a plain docs page rendered from it.

Built once at start-up: command parameter schemas come from the registry and SOVD bodies
from the SOVD modules, so neither is written twice."""

from __future__ import annotations

import copy
import html
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from web.openapi.rest import (
    auth_paths,
    command_paths,
    operations_paths,
    rest_schemas,
    vehicle_paths,
)
from web.openapi.shapes import BEARER, HEADERS, RESPONSES, with_request_id
from web.openapi.sovd import PARAMETERS as SOVD_PARAMETERS
from web.openapi.sovd import RESPONSES as SOVD_RESPONSES
from web.openapi.sovd import SUBSCRIPTION_TOKEN, sovd_paths, sovd_schemas
from web.openapi.websockets import SCHEMAS as WEBSOCKET_SCHEMAS
from web.openapi.websockets import SECURITY_SCHEMES as WEBSOCKET_SECURITY
from web.openapi.websockets import websocket_paths
from web.typedefs import actors_key, openapi_document_key

__all__ = ["build_document", "docs_page", "openapi_ctx", "openapi_json"]

DESCRIPTION = (
    "Simulated vehicle fleets behind a SOVD-style diagnostics backend. Errors of /api/v1 are "
    "RFC 9457 problem details (application/problem+json); errors under /vehicles/ are SOVD "
    "GenericError bodies (application/json). Every answer carries X-Request-ID. Besides the "
    "statuses listed per operation, any path answers 405 (with Allow) to a method it does "
    "not take, 404 when nothing is routed there, 400 to a request HTTP cannot parse, and "
    "500 (problem details with a request_id, never a trace) to a server fault. Values are "
    "read strictly: an integer is written without a fraction (60, not 60.0), a NUL (%00) "
    "anywhere in the request target answers 400, and an empty query parameter counts as not "
    "given. A CORS "
    "preflight (OPTIONS with Origin) is answered 204, or 403 for an origin not allowed. "
    "WebSockets (tag websocket) are GET operations whose 101 answer is the upgrade; "
    "`x-websocket-messages` holds the schema of what they send and "
    "`x-websocket-close-codes` how they close."
)
TAGS = [
    {"name": "auth", "description": "Log in, tokens, the audit log"},
    {"name": "commands", "description": "Diagnostic commands and their replies"},
    {"name": "vehicles", "description": "The simulated vehicles"},
    {"name": "fleets", "description": "Spawning and removing fleets (admins)"},
    {"name": "websocket", "description": "Live streams of commands and vehicles"},
    {"name": "sovd", "description": "Every vehicle as a standard SOVD server"},
    {"name": "operations", "description": "Health, metrics, the cluster and this description"},
    {"name": "dashboard", "description": "The live fleet dashboard and what it charts"},
]
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "code", "request_id"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "additionalProperties": False,
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def build_document(command_types: list[dict[str, Any]]) -> dict[str, Any]:
    paths = {
        **auth_paths(),
        **command_paths(command_types),
        **vehicle_paths(),
        **websocket_paths(),
        **operations_paths(),
        **sovd_paths(),
    }
    document: dict[str, Any] = copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {"title": "sovd-sim", "version": "0.1.0", "description": DESCRIPTION},
            "servers": [{"url": "/"}],
            "security": BEARER,
            "tags": TAGS,
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "subscriptionToken": SUBSCRIPTION_TOKEN,
                    **WEBSOCKET_SECURITY,
                },
                "headers": HEADERS,
                "parameters": SOVD_PARAMETERS,
                "responses": RESPONSES | SOVD_RESPONSES,
                "schemas": {
                    "Problem": PROBLEM,
                    **rest_schemas(),
                    **WEBSOCKET_SCHEMAS,
                    **sovd_schemas(),
                },
            },
        }
    )
    with_request_id(
        [
            *document["components"]["responses"].values(),
            *(
                response
                for operations in document["paths"].values()
                for operation in operations.values()
                for response in operation["responses"].values()
            ),
        ]
    )
    return document


async def openapi_ctx(app: web.Application) -> AsyncIterator[None]:
    """Built once the simulation runs, when the registry is known."""
    app[openapi_document_key] = build_document(app[actors_key].registry.describe())
    yield


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[openapi_document_key])


def _row(path: str, method: str, operation: dict[str, Any]) -> str:
    needs_token = "no" if operation.get("security") == [] else "yes"
    statuses = ", ".join(operation["responses"])
    return (
        f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(operation.get('summary', ''))}</td><td>{needs_token}</td>"
        f"<td>{statuses}</td></tr>"
    )


async def docs_page(request: web.Request) -> web.Response:
    document = request.app[openapi_document_key]
    sections = []
    for tag in document["tags"]:
        rows = "".join(
            _row(path, method, operation)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if tag["name"] in operation.get("tags", ())
        )
        sections.append(
            f"<h2>{html.escape(tag['name'])}</h2><p>{html.escape(tag['description'])}</p>"
            "<table border='1' cellpadding='4'><tr><th>Method</th><th>Path</th><th>What</th>"
            f"<th>Token</th><th>Statuses</th></tr>{rows}</table>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>sovd-sim API</title></head>"
        "<body><h1>sovd-sim API</h1><p>Machine-readable: "
        "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a> (OpenAPI 3.1).</p>"
        f"<p>{html.escape(document['info']['description'])}</p>{''.join(sections)}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")
