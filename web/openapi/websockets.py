"""The WebSocket endpoints in the OpenAPI document. OpenAPI has no WebSocket operation, so
each is a GET whose 101 answer is the upgrade, with two extensions: `x-websocket-messages`
(the schema of every message the server sends) and `x-websocket-close-codes`."""

from __future__ import annotations

from typing import Any

from sovd.records import COMMAND_STATUSES, TERMINAL_STATUSES
from web.auth.websocket import BEARER_PROTOCOL
from web.openapi.shapes import (
    OPTIONAL_STAMP,
    OPTIONAL_TEXT,
    UUID,
    Schema,
    closed,
    empty,
    operation,
    path,
    problem,
    query,
    ref,
)

FAILED = [status for status in TERMINAL_STATUSES if status != "completed"]
SCHEMAS: dict[str, Schema] = {
    "WsStatus": closed(
        {
            "event": {"const": "status"},
            "command_id": UUID,
            "vehicle_id": UUID,
            "command_name": OPTIONAL_TEXT,
            "status": {"enum": [s for s in COMMAND_STATUSES if s not in FAILED]},
            "completed_at": OPTIONAL_STAMP,
        }
    ),
    "WsError": closed(
        {
            "event": {"const": "error"},
            "command_id": UUID,
            "vehicle_id": UUID,
            "command_name": OPTIONAL_TEXT,
            "status": {"enum": FAILED},
            "completed_at": OPTIONAL_STAMP,
            "error_message": OPTIONAL_TEXT,
        }
    ),
    "WsResponse": closed(
        {
            "event": {"const": "response"},
            "command_id": UUID,
            "vehicle_id": UUID,
            "response_id": UUID,
            "response_payload": {"type": "object"},
            "sequence_number": {"type": "integer", "minimum": 1},
            "is_final": {"type": "boolean"},
        }
    ),
    "WsResync": closed(
        {
            "event": {"const": "resync"},
            "reason": {"type": "string"},
        }
    ),
    "WsBatch": {
        "type": "array",
        "maxItems": 500,
        "items": {
            "oneOf": [
                {"$ref": "#/components/schemas/WsStatus"},
                {"$ref": "#/components/schemas/WsResponse"},
                {"$ref": "#/components/schemas/WsError"},
                {"$ref": "#/components/schemas/WsResync"},
            ]
        },
    },
}
CLOSE_CODES = {
    "1000": "The command reached its terminal status; everything was sent.",
    "1001": "The server is shutting down.",
    "1008": "Refused: no token, a bad or revoked one, a role or command the user may not "
    "see, an unknown vehicle, or an Origin not on the allow-list. The reason says which.",
    "1011": "An unexpected server failure ended the stream; reconnect.",
    "1013": "Reconnect later: the client read too slowly and events were dropped (reconnect "
    "to catch up from storage), or the store or event bus became unavailable.",
}
AUTH = (
    "Authenticated after the upgrade, with the access token in `?token=` or as the "
    f"subprotocol pair `Sec-WebSocket-Protocol: {BEARER_PROTOCOL}, <token>` (the answer "
    f"then names `{BEARER_PROTOCOL}`). A refusal is an upgrade that closes at once with 1008."
)
HANDSHAKE = [
    query("token", {"type": "string"}, "The access token (or use Sec-WebSocket-Protocol)."),
    {
        "name": "Sec-WebSocket-Protocol",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": f"^{BEARER_PROTOCOL}, *\\S+$"},
        "description": f"`{BEARER_PROTOCOL}, <access token>`.",
    },
]
STATUS_FILTER = query(
    "status",
    {
        "type": "string",
        "pattern": f"^({'|'.join(COMMAND_STATUSES)})(, *({'|'.join(COMMAND_STATUSES)}))*$",
    },
    "Comma-separated command statuses: only events of those are sent.",
)
WEBSOCKET_SECURITY: list[dict[str, list[str]]] = [{"websocketToken": []}, {"websocketProtocol": []}]
SECURITY_SCHEMES = {
    "websocketToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The access token, for WebSocket clients that cannot send headers.",
    },
    "websocketProtocol": {
        "type": "apiKey",
        "in": "header",
        "name": "Sec-WebSocket-Protocol",
        "description": f"`{BEARER_PROTOCOL}, <access token>`.",
    },
}


def _websocket(
    operation_id: str,
    summary: str,
    messages: list[str],
    parameters: list[dict[str, Any]],
    refusals: dict[str, Any],
) -> dict[str, Any]:
    built = operation(
        operation_id,
        summary,
        {
            "101": empty("Switching Protocols: the WebSocket is open"),
            "400": problem("Not a WebSocket handshake, or a NUL in the request target"),
            **refusals,
        },
        tag="websocket",
        public=True,
        parameters=parameters + HANDSHAKE,
        description=AUTH,
    )
    built["security"] = WEBSOCKET_SECURITY
    built["x-websocket-messages"] = {"oneOf": [ref(name) for name in messages]}
    built["x-websocket-close-codes"] = CLOSE_CODES
    return built


def websocket_paths() -> dict[str, Any]:
    bad_status = {"422": problem("An unknown status in ?status=")}
    return {
        "/ws/responses/{command_id}": {
            "get": _websocket(
                "command_stream",
                "One command's status and replies: what is stored first, then live, with no "
                "gap or duplicate; closes with 1000 after the terminal event (engineers, "
                "admins; an engineer only its own commands)",
                ["WsStatus", "WsResponse", "WsError"],
                [path("command_id", UUID)],
                {"404": problem("A malformed command id")},
            )
        },
        "/ws/vehicles/{vehicle_id}": {
            "get": _websocket(
                "vehicle_feed",
                "Every command and status change of one vehicle, live (any role)",
                ["WsStatus", "WsResponse", "WsError", "WsResync"],
                [path("vehicle_id", UUID), STATUS_FILTER],
                {"404": problem("A malformed vehicle id"), **bad_status},
            )
        },
        "/ws/fleet": {
            "get": _websocket(
                "fleet_feed",
                "Every vehicle's activity, live (admins); with ?batch=true each frame is a "
                "JSON array of the events queued since the last one (at most 500)",
                ["WsStatus", "WsResponse", "WsError", "WsResync", "WsBatch"],
                [
                    STATUS_FILTER,
                    {
                        "name": "batch",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["true", "false"]},
                        "description": "Frames carry arrays of events instead of one event",
                    },
                ],
                {"422": problem("An unknown status in ?status=, or batch not true or false")},
            )
        },
    }
