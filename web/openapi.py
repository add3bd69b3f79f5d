"""The OpenAPI 3.1 description of the HTTP API, and a plain docs page rendered from it.

Command parameter schemas come from the registry, so a new command shows up here with no
edit to this file."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from web.typedefs import actors_key, openapi_document_key

PROBLEM = {"$ref": "#/components/schemas/Problem"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path_id(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }


UUID = {"type": "string", "format": "uuid"}
STAMP = {"type": ["string", "null"], "format": "date-time"}
STATUS = {"enum": ["pending", "in_progress", "completed", "failed", "timed_out"]}
COMMAND = {
    "type": "object",
    "properties": {
        "command_id": UUID,
        "user_id": UUID,
        "vehicle_id": UUID,
        "command_name": {"type": "string"},
        "command_params": {"type": "object"},
        "status": STATUS,
        "error_message": {"type": ["string", "null"]},
        "submitted_at": STAMP,
        "completed_at": STAMP,
    },
}
VEHICLE = {
    "type": "object",
    "properties": {
        "vehicle_id": UUID,
        "vin": {"type": "string", "pattern": "^[A-HJ-NPR-Z0-9]{17}$"},
        "make": {"type": "string"},
        "model": {"type": "string"},
        "year": {"type": "integer"},
        "connection_status": {"enum": ["connected", "disconnected", "intermittent", "error"]},
        "last_seen_at": STAMP,
        "metadata": {"type": "object"},
    },
}
TOKENS = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "token_type": {"const": "bearer"},
        "expires_in": {"type": "integer"},
    },
}
PAGING = [
    _query("limit", {"type": "integer", "minimum": 1}),
    _query("offset", {"type": "integer", "minimum": 0}),
]


def build_document(command_types: list[dict[str, Any]]) -> dict[str, Any]:
    submit_variants = [
        {
            "type": "object",
            "title": t["name"],
            "required": ["vehicle_id", "command_name"],
            "additionalProperties": False,
            "properties": {
                "vehicle_id": UUID,
                "command_name": {"const": t["name"]},
                "command_params": t["parameters"],
            },
        }
        for t in command_types
    ]
    paths: dict[str, Any] = {
        "/api/v1/auth/login": {
            "post": {
                "summary": "Log in",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password"],
                                "additionalProperties": False,
                                "properties": {
                                    "username": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(TOKENS),
                    "401": _problem("Wrong credentials"),
                    "429": _problem("Too many failures; see Retry-After"),
                },
            }
        },
        "/api/v1/auth/refresh": {
            "post": {
                "summary": "Rotate the refresh token",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["refresh_token"],
                                "additionalProperties": False,
                                "properties": {"refresh_token": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {"200": _json(TOKENS), "401": _problem("Invalid or reused token")},
            }
        },
        "/api/v1/auth/logout": {
            "post": {
                "summary": "End the session",
                "security": BEARER,
                "responses": {"200": _json({"type": "object"}), "401": _problem("Not signed in")},
            }
        },
        "/api/v1/auth/me": {
            "get": {
                "summary": "Who am I",
                "security": BEARER,
                "responses": {"200": _json({"type": "object"}), "401": _problem("Not signed in")},
            }
        },
        "/api/v1/commands": {
            "post": {
                "summary": "Submit a command (202 at once; follow stream_url)",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": submit_variants}}},
                },
                "responses": {
                    "202": _json(
                        {
                            "allOf": [
                                COMMAND,
                                {
                                    "type": "object",
                                    "properties": {"stream_url": {"type": "string"}},
                                },
                            ]
                        },
                        "Accepted",
                    ),
                    "403": _problem("Viewers may not submit"),
                    "404": _problem("Unknown vehicle"),
                    "422": _problem("Unknown command or bad parameters"),
                    "429": _problem("The vehicle's mailbox is full; see Retry-After"),
                    "503": _problem("The store is unavailable; see Retry-After"),
                },
            },
            "get": {
                "summary": "List commands, newest first",
                "security": BEARER,
                "parameters": [
                    _query("vehicle_id", UUID),
                    _query("user_id", UUID),
                    _query("status", STATUS),
                    _query("start_date", STAMP),
                    _query("end_date", STAMP),
                    *PAGING,
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "commands": {"type": "array", "items": COMMAND},
                                "limit": {"type": "integer"},
                                "offset": {"type": "integer"},
                                "total": {"type": "integer"},
                            },
                        }
                    ),
                    "422": _problem("Bad query"),
                },
            },
        },
        "/api/v1/commands/{command_id}": {
            "get": {
                "summary": "One command",
                "security": BEARER,
                "parameters": [_path_id("command_id")],
                "responses": {"200": _json(COMMAND), "404": _problem("No such command")},
            }
        },
        "/api/v1/commands/{command_id}/responses": {
            "get": {
                "summary": "A command's reply chunks by sequence_number",
                "security": BEARER,
                "parameters": [_path_id("command_id")],
                "responses": {
                    "200": _json({"type": "array", "items": {"type": "object"}}),
                    "404": _problem("No such command"),
                },
            }
        },
        "/api/v1/command-types": {
            "get": {
                "summary": "The command registry",
                "security": BEARER,
                "responses": {"200": _json({"type": "array", "items": {"type": "object"}})},
            }
        },
        "/api/v1/audit-logs": {
            "get": {
                "summary": "Audit entries (admins)",
                "security": BEARER,
                "parameters": [
                    _query("action", {"type": "string"}),
                    _query("user_id", UUID),
                    *PAGING,
                ],
                "responses": {"200": _json({"type": "object"}), "403": _problem("Admins only")},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: store and bus reachable",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}),
                    "503": _json({"type": "object"}, "Not ready"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {"200": {"description": "text/plain"}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sovd-sim",
            "version": "0.1.0",
            "description": "Simulated vehicle fleets behind a SOVD-style backend. "
            "WebSockets: /ws/responses/{command_id}, /ws/vehicles/{vehicle_id}, "
            "/ws/fleet (token in ?token= or Sec-WebSocket-Protocol: bearer, <token>).",
        },
        "servers": [{"url": "/"}],
        "security": BEARER,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code", "request_id"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "code": {"type": "string"},
                        "request_id": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "field": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                }
            },
        },
    }


async def openapi_ctx(app: web.Application) -> AsyncIterator[None]:
    """Built once the simulation runs, when the registry is known."""
    app[openapi_document_key] = build_document(app[actors_key].registry.describe())
    yield


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[openapi_document_key])


async def docs_page(request: web.Request) -> web.Response:
    document = request.app[openapi_document_key]
    rows = "".join(
        f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(operation.get('summary', ''))}</td></tr>"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>sovd-sim API</title></head>"
        "<body><h1>sovd-sim API</h1><p>Machine-readable: "
        "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a> (OpenAPI 3.1).</p>"
        f"<p>{html.escape(document['info']['description'])}</p>"
        f"<table border='1' cellpadding='4'><tr><th>Method</th><th>Path</th><th>What</th></tr>"
        f"{rows}</table></body></html>"
    )
    return web.Response(text=page, content_type="text/html")
