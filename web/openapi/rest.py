"""The OpenAPI paths and schemas of /api/v1 (auth, commands, vehicles, fleets, audit log),
of the health and metrics endpoints and of this description itself."""

from __future__ import annotations

from typing import Any, get_args

from sovd.fleet_config.schema import fleet_config_schema
from sovd.records import COMMAND_STATUSES, CONNECTION_STATUSES, ROLES
from web.auth.passwords import MAX_PASSWORD_LENGTH
from web.auth.tokens import MAX_TOKEN_LENGTH
from web.auth.views import MAX_AUDIT_PAGE, MAX_USERNAME_LENGTH
from web.commands import views as commands
from web.dashboard.views import CONTENT_TYPES as STATIC_TYPES
from web.openapi.shapes import (
    JSON,
    OPTIONAL_STAMP,
    OPTIONAL_TEXT,
    STAMP,
    TEXT,
    UUID,
    Schema,
    body_problems,
    closed,
    empty,
    json_body,
    operation,
    paging,
    path,
    problem,
    query,
    ref,
    request_body,
)
from web.queries import MAX_OFFSET
from web.vehicles import views as vehicles
from web.vehicles.fleets import Origin

OBJECT: Schema = {"type": "object"}
COMMAND_STATUS: Schema = {"enum": list(COMMAND_STATUSES)}
CONNECTION_STATUS: Schema = {"enum": list(CONNECTION_STATUSES)}
DAY_OR_MOMENT: Schema = {
    "type": "string",
    "anyOf": [{"format": "date-time"}, {"format": "date"}],
    "description": "ISO 8601 date or date-time; without a zone it is UTC.",
}
ECU_ADDRESS: Schema = {"type": "string", "pattern": "^0x[0-9A-F]{2}$"}
VIN: Schema = {"type": "string", "pattern": "^[A-HJ-NPR-Z0-9]{17}$"}

COMMAND = closed(
    {
        "command_id": UUID,
        "user_id": UUID,
        "vehicle_id": UUID,
        "command_name": TEXT,
        "command_params": OBJECT,
        "status": COMMAND_STATUS,
        "error_message": OPTIONAL_TEXT,
        "submitted_at": STAMP,
        "completed_at": OPTIONAL_STAMP,
    }
)
ACCEPTED_COMMAND = closed(
    COMMAND["properties"]
    | {
        "stream_url": {
            "type": "string",
            "format": "uri",
            "description": "ws://.../ws/responses/{command_id}: the command's replies, live.",
        }
    }
)
COMMAND_RESPONSE = closed(
    {
        "response_id": UUID,
        "command_id": UUID,
        "response_payload": OBJECT,
        "sequence_number": {"type": "integer", "minimum": 1},
        "is_final": {"type": "boolean"},
        "received_at": STAMP,
    }
)
COMMAND_TYPE = closed(
    {
        "name": TEXT,
        "description": TEXT,
        "parameters": {"type": "object", "description": "JSON Schema of command_params."},
        "idempotent": {"type": "boolean"},
        "streaming": {"type": "boolean"},
        "stoppable": {"type": "boolean"},
    }
)
VEHICLE_PROPERTIES: dict[str, Schema] = {
    "vehicle_id": UUID,
    "vin": VIN,
    "make": TEXT,
    "model": TEXT,
    "year": {"type": "integer"},
    "connection_status": CONNECTION_STATUS,
    "last_seen_at": OPTIONAL_STAMP,
    "metadata": OBJECT,
}
ECU = closed(
    {
        "ecu_address": ECU_ADDRESS,
        "name": TEXT,
        "part_number": TEXT,
        "serial_number": TEXT,
        "software_version": TEXT,
        "hardware_number": TEXT,
        "supplier": TEXT,
        "system_name": TEXT,
        "manufacturing_date": {"type": "string", "format": "date"},
        "data_ids": {"type": "array", "items": {"type": "string", "pattern": "^0x[0-9A-F]{4}$"}},
    }
)
VEHICLE_DETAIL = closed(
    VEHICLE_PROPERTIES
    | {
        "fleet": TEXT,
        "ecus": {
            "type": "array",
            "items": ECU,
            "description": "Empty when the vehicle's fleet does not run in this process.",
        },
    }
)
HEALTH = closed(
    {
        "status": {"enum": ["ok", "warning", "fault", "unreachable"]},
        "stored_dtcs": {"type": "integer", "minimum": 0},
        "warning_lamp": {"type": "boolean"},
        "ecus_with_faults": {"type": "array", "items": ECU_ADDRESS},
    }
)
ACTOR = closed(
    {
        "state": {"enum": ["idle", "active"]},
        "mailbox_depth": {"type": "integer", "minimum": 0},
        "in_flight_command_id": {"type": ["string", "null"], "format": "uuid"},
        "session": {"type": "object", "additionalProperties": TEXT},
    }
)
VEHICLE_STATUS = closed(
    {
        "vehicle_id": UUID,
        "connection_status": CONNECTION_STATUS,
        "last_seen_at": OPTIONAL_STAMP,
        "health": {"anyOf": [HEALTH, {"type": "null"}]},
        "actor": {"anyOf": [ACTOR, {"type": "null"}]},
    }
)
TOKENS = closed(
    {
        "access_token": TEXT,
        "refresh_token": TEXT,
        "token_type": {"const": "bearer"},
        "expires_in": {"type": "integer", "description": "Seconds the access token lasts."},
    }
)
PROFILE = closed(
    {"user_id": UUID, "username": TEXT, "role": {"enum": list(ROLES)}, "email": OPTIONAL_TEXT}
)
OPTIONAL_UUID: Schema = {"type": ["string", "null"], "format": "uuid"}
AUDIT_ENTRY = closed(
    {
        "log_id": UUID,
        "user_id": OPTIONAL_UUID,
        "vehicle_id": OPTIONAL_UUID,
        "command_id": OPTIONAL_UUID,
        "action": TEXT,
        "entity_type": TEXT,
        "entity_id": OPTIONAL_UUID,
        "details": OBJECT,
        "ip_address": OPTIONAL_TEXT,
        "user_agent": OPTIONAL_TEXT,
        "timestamp": STAMP,
    }
)
OPTIONAL_NUMBER: Schema = {"type": ["number", "null"]}
FLEET_SETTINGS = {
    "profile": TEXT,
    "make": TEXT,
    "model": TEXT,
    "seed": {"type": "integer"},
    "vin_prefix": OPTIONAL_TEXT,
    "latency": {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "distribution": {"enum": ["uniform", "normal", "lognormal"]},
                    "min_ms": {"type": "number"},
                    "max_ms": {"type": "number"},
                    "mean_ms": {"type": "number"},
                    "stddev_ms": {"type": "number"},
                    "median_ms": {"type": "number"},
                    "sigma": OPTIONAL_NUMBER,
                },
                "required": ["distribution", "min_ms", "max_ms"],
                "additionalProperties": False,
            },
            {"type": "null"},
        ]
    },
    "failure_modes": closed(
        {
            name: {"type": "number", "minimum": 0, "maximum": 1}
            for name in ("negative_response", "response_pending", "timeout", "connection_drop")
        }
    ),
    "connectivity": closed(
        {
            "intermittent": {"type": "number"},
            "disconnected": {"type": "number"},
            "intermittent_loss": {"type": "number"},
            "when_disconnected": {"enum": ["fail", "wait"]},
        }
    ),
    "command_deadline_s": OPTIONAL_NUMBER,
    "mailbox_size": {"type": ["integer", "null"]},
}
FLEET_HEAD = {
    "name": TEXT,
    "count": {"type": "integer", "minimum": 0},
    "recorded": {"type": "boolean", "description": "Kept by the store for the next start."},
    "origin": {"enum": list(get_args(Origin))},
    "spawned_at": STAMP,
}
RUNNING_FLEET = closed(
    FLEET_HEAD
    | FLEET_SETTINGS
    | {
        "running": {"const": True},
        "vehicles_by_connection": {
            "type": "object",
            "description": "The fleet's vehicles by connection status",
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
    }
)
RECORDED_FLEET = closed(
    FLEET_HEAD | {"running": {"const": False}, "origin": {"const": "store"}, "note": TEXT}
)
SPAWNED = closed(
    {
        "fleets": {
            "type": "array",
            "items": closed(
                RUNNING_FLEET["properties"]
                | {"created": {"type": "boolean", "description": "False: it ran already."}}
            ),
        },
        "vehicles": {"type": "integer", "description": "Vehicles the request added."},
    }
)
CHECK = closed({"kind": TEXT, "status": TEXT})
READINESS = closed(
    {
        "status": {"enum": ["ready", "not_ready", "draining"]},
        "checks": closed({"store": CHECK, "bus": CHECK}),
        "cluster": {
            "type": "object",
            "description": "Cluster mode: whether this node runs its share of the partitions",
        },
    },
    required=("status", "checks"),
)
COMMAND_EXAMPLE = {
    "vehicle_id": "6f1f3c0e-8a51-4d0f-9a7e-2b7c5d1e4a90",
    "command_name": "ReadDTC",
    "command_params": {"ecuAddress": "0x01"},
}
FLEET_EXAMPLE = {
    "fleets": [{"name": "openapi-example", "count": 2, "profile": "vw-golf", "seed": 7}]
}


def page_of(name: str, item: Schema) -> Schema:
    return closed(
        {
            name: {"type": "array", "items": item},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "total": {"type": "integer"},
        }
    )


def rest_schemas() -> dict[str, Schema]:
    return {
        "Command": COMMAND,
        "AcceptedCommand": ACCEPTED_COMMAND,
        "CommandPage": page_of("commands", ref("Command")),
        "CommandResponse": COMMAND_RESPONSE,
        "CommandType": COMMAND_TYPE,
        "Vehicle": closed(VEHICLE_PROPERTIES),
        "VehicleDetail": VEHICLE_DETAIL,
        "VehicleStatus": VEHICLE_STATUS,
        "Tokens": TOKENS,
        "Profile": PROFILE,
        "AuditPage": page_of("audit_logs", AUDIT_ENTRY),
        "FleetConfig": fleet_config_schema(),
        "Fleet": {"oneOf": [RUNNING_FLEET, RECORDED_FLEET]},
        "SpawnedFleets": SPAWNED,
        "Readiness": READINESS,
    }


def _submit_variants(command_types: list[dict[str, Any]]) -> list[Schema]:
    """One body per registered command: its name and its parameters' schema."""
    variants = []
    for described in command_types:
        params = described["parameters"]
        variants.append(
            {
                "type": "object",
                "title": described["name"],
                "required": ["vehicle_id", "command_name"]
                + (["command_params"] if params.get("required") else []),
                "additionalProperties": False,
                "properties": {
                    "vehicle_id": UUID,
                    "command_name": {"const": described["name"]},
                    "command_params": params,
                },
            }
        )
    return variants


def auth_paths() -> dict[str, Any]:
    login_body = closed(
        {
            "username": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_USERNAME_LENGTH,
            },
            "password": {"type": "string", "minLength": 1, "maxLength": MAX_PASSWORD_LENGTH},
        }
    )
    refresh_body = closed(
        {"refresh_token": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_LENGTH}}
    )
    tokens = json_body(ref("Tokens"), headers=["Cache-Control"])
    return {
        "/api/v1/auth/login": {
            "post": operation(
                "login",
                "Log in",
                {
                    "200": tokens,
                    **body_problems("Missing, empty, too long or unknown fields"),
                    "401": problem("Wrong username or password (the same answer for both)"),
                    "429": problem(
                        "Too many failed logins from this address or for this account",
                        headers=["Retry-After"],
                    ),
                },
                tag="auth",
                public=True,
                body=request_body(login_body),
            )
        },
        "/api/v1/auth/refresh": {
            "post": operation(
                "refresh",
                "Trade a refresh token for a new pair (the refresh token rotates)",
                {
                    "200": tokens,
                    **body_problems("Missing, empty, too long or unknown fields"),
                    "401": problem(
                        "Invalid, expired or revoked refresh token; presenting a rotated "
                        "one after its successor was used revokes the whole login"
                    ),
                },
                tag="auth",
                public=True,
                body=request_body(refresh_body),
            )
        },
        "/api/v1/auth/logout": {
            "post": operation(
                "logout",
                "End the session: its refresh tokens and this access token stop working",
                {"200": json_body(closed({"message": TEXT}))},
                tag="auth",
            )
        },
        "/api/v1/auth/me": {
            "get": operation(
                "me", "Who the token belongs to", {"200": json_body(ref("Profile"))}, tag="auth"
            )
        },
        "/api/v1/audit-logs": {
            "get": operation(
                "list_audit_logs",
                "Audit entries, newest first (admins)",
                {
                    "200": json_body(ref("AuditPage")),
                    "403": problem("Admins only"),
                    "422": problem("Unknown or malformed query parameters"),
                },
                tag="auth",
                parameters=[
                    query(
                        "action",
                        {"type": "string", "maxLength": 64},
                        "e.g. user_login, command_submitted",
                    ),
                    query("user_id", UUID),
                    *paging(MAX_AUDIT_PAGE, 100, MAX_OFFSET),
                ],
            )
        },
    }


def command_paths(command_types: list[dict[str, Any]]) -> dict[str, Any]:
    command_id = path("command_id", UUID, "A malformed id answers 404 like an unknown one.")
    engineers_only = problem("Viewers may not work with commands")
    no_command = problem("No such command, or one of another user (unless admin)")
    links = {
        "GetCommand": {
            "operationId": "get_command",
            "parameters": {"command_id": "$response.body#/command_id"},
        },
        "ListCommandResponses": {
            "operationId": "list_command_responses",
            "parameters": {"command_id": "$response.body#/command_id"},
        },
    }
    return {
        "/api/v1/commands": {
            "post": operation(
                "submit_command",
                "Submit a command (202 at once; follow stream_url or poll the command)",
                {
                    "202": json_body(
                        ref("AcceptedCommand"),
                        "Accepted: the command is stored and queued",
                        headers=["Location", "Idempotent-Replayed"],
                        links=links,
                    ),
                    **body_problems(
                        "Missing or malformed fields, unknown command, parameters that do "
                        "not fit it or the vehicle (an ECU it lacks), a bad Idempotency-Key, "
                        "or one reused with another body"
                    ),
                    "403": engineers_only,
                    "404": problem("No vehicle with this id"),
                    "429": problem(
                        "The vehicle's mailbox is full; retry after Retry-After seconds",
                        headers=["Retry-After"],
                    ),
                },
                tag="commands",
                parameters=[
                    {
                        "name": commands.IDEMPOTENCY_KEY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Same key and body: the same answer, no second "
                        "command. Same key, other body: 422.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                ],
                body=request_body(
                    {"oneOf": _submit_variants(command_types)}, example=COMMAND_EXAMPLE
                ),
            ),
            "get": operation(
                "list_commands",
                "Commands, newest first (an engineer sees only its own)",
                {
                    "200": json_body(ref("CommandPage")),
                    "403": engineers_only,
                    "422": problem("Unknown or malformed query parameters"),
                },
                tag="commands",
                parameters=[
                    query("vehicle_id", UUID),
                    query("status", COMMAND_STATUS),
                    query("user_id", UUID),
                    query("start_date", DAY_OR_MOMENT, "Submitted at or after."),
                    query("end_date", DAY_OR_MOMENT, "Submitted at or before."),
                    *paging(commands.MAX_PAGE, 50, MAX_OFFSET),
                ],
            ),
        },
        "/api/v1/commands/{command_id}": {
            "get": operation(
                "get_command",
                "One command",
                {"200": json_body(ref("Command")), "403": engineers_only, "404": no_command},
                tag="commands",
                parameters=[command_id],
            )
        },
        "/api/v1/commands/{command_id}/responses": {
            "get": operation(
                "list_command_responses",
                "A command's reply chunks, by sequence_number",
                {
                    "200": json_body({"type": "array", "items": ref("CommandResponse")}),
                    "403": engineers_only,
                    "404": no_command,
                },
                tag="commands",
                parameters=[command_id],
            )
        },
        "/api/v1/command-types": {
            "get": operation(
                "list_command_types",
                "The command registry: names, descriptions, parameter schemas",
                {"200": json_body({"type": "array", "items": ref("CommandType")})},
                tag="commands",
            )
        },
    }


def vehicle_paths() -> dict[str, Any]:
    vehicle_id = path("vehicle_id", UUID, "A malformed id answers 404 like an unknown one.")
    no_vehicle = problem("No vehicle with this id")
    admins_only = problem("Admins only")
    return {
        "/api/v1/vehicles": {
            "get": operation(
                "list_vehicles",
                "Vehicles in a stable order (any role)",
                {
                    "200": json_body(
                        {"type": "array", "items": ref("Vehicle")}, headers=["X-Total-Count"]
                    ),
                    "422": problem("Unknown or malformed query parameters"),
                },
                tag="vehicles",
                parameters=[
                    query("status", CONNECTION_STATUS),
                    query("search", {"type": "string", "maxLength": 17}, "A part of the VIN."),
                    query("fleet", {"type": "string", "maxLength": 63}, "A fleet's name."),
                    *paging(vehicles.MAX_PAGE, 100, MAX_OFFSET),
                ],
            )
        },
        "/api/v1/vehicles/{vehicle_id}": {
            "get": operation(
                "get_vehicle",
                "One vehicle with its ECUs",
                {"200": json_body(ref("VehicleDetail")), "404": no_vehicle},
                tag="vehicles",
                parameters=[vehicle_id],
            )
        },
        "/api/v1/vehicles/{vehicle_id}/status": {
            "get": operation(
                "get_vehicle_status",
                "Connection, fault-memory health and the vehicle actor's state",
                {"200": json_body(ref("VehicleStatus")), "404": no_vehicle},
                tag="vehicles",
                parameters=[vehicle_id],
            )
        },
        "/api/v1/fleets": {
            "get": operation(
                "list_fleets",
                "Running fleets, and those the store keeps for the next start (admins)",
                {"200": json_body({"type": "array", "items": ref("Fleet")}), "403": admins_only},
                tag="fleets",
            ),
            "post": operation(
                "spawn_fleets",
                "Spawn the fleets of a fleet config (its JSON form), all or nothing (admins)",
                {
                    "200": json_body(ref("SpawnedFleets"), "Every fleet was running already"),
                    "201": json_body(ref("SpawnedFleets"), "At least one fleet was spawned"),
                    **body_problems("The fleet config is not valid; every problem is named"),
                    "403": admins_only,
                    "409": problem(
                        "A fleet of this name runs with other settings, or a VIN belongs to "
                        "another vehicle"
                    ),
                },
                tag="fleets",
                body=request_body(ref("FleetConfig"), example=FLEET_EXAMPLE),
            ),
        },
        "/api/v1/fleets/{name}": {
            "delete": operation(
                "delete_fleet",
                "Stop a fleet and delete its vehicles and their history (admins)",
                {
                    "204": empty("Deleted"),
                    "403": admins_only,
                    "404": problem("No fleet with this name"),
                    "409": problem(
                        "Commands of the fleet are still running", headers=["Retry-After"]
                    ),
                },
                tag="fleets",
                parameters=[path("name", {"type": "string"}, "The fleet's name.")],
            )
        },
    }


def operations_paths() -> dict[str, Any]:
    alive = json_body(closed({"status": {"const": "ok"}}), "The process is alive")
    readiness = {
        "200": json_body(ref("Readiness"), "Store and bus reachable"),
        "503": {
            "description": "The store or bus is unreachable, or the server is draining "
            "(readiness body); or the connection bound was reached (problem, Retry-After)",
            "content": {
                JSON: {"schema": ref("Readiness")},
                "application/problem+json": {"schema": ref("Problem")},
            },
        },
    }
    metrics = {
        "description": "Prometheus text exposition",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    paths: dict[str, Any] = {}
    for route, name in (("/healthz", "healthz"), ("/health/live", "health_live")):
        paths[route] = {
            "get": operation(name, "Liveness", {"200": alive}, tag="operations", public=True)
        }
    for route, name in (("/readyz", "readyz"), ("/health/ready", "health_ready")):
        paths[route] = {
            "get": operation(
                name, "Readiness: store and bus reachable", readiness, tag="operations", public=True
            )
        }
    paths["/metrics"] = {
        "get": operation(
            "metrics",
            "Prometheus metrics",
            {"200": metrics},
            tag="operations",
            public=True,
        )
    }
    paths["/api/v1/openapi.json"] = {
        "get": operation(
            "openapi_json",
            "This description (OpenAPI 3.1)",
            {"200": json_body({"type": "object"})},
            tag="operations",
            public=True,
        )
    }
    html = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    for route, name in (("/", "dashboard_root"), ("/dashboard/", "dashboard")):
        paths[route] = {
            "get": operation(
                name, "The live fleet dashboard (sign in on the page)", {"200": html},
                tag="dashboard", public=True,
            )
        }  # fmt: skip
    paths["/dashboard"] = {
        "get": operation(
            "dashboard_redirect",
            "To /dashboard/",
            {
                "308": empty("Permanent redirect", headers=["Location"])
                | {"content": {"text/plain": {"schema": {"type": "string"}}}}
            },
            tag="dashboard",
            public=True,
        )
    }
    for route, operation_id, summary in (
        (
            "/dashboard/static/{name}",
            "dashboard_file",
            "The dashboard's scripts, styles and images",
        ),
        ("/dashboard/static/js/{name}", "dashboard_script", "The dashboard's JavaScript modules"),
    ):
        paths[route] = {
            "get": operation(
                operation_id,
                summary,
                {
                    "200": {
                        "description": "The file",
                        "content": {kind: {"schema": {}} for kind in STATIC_TYPES.values()},
                    },
                    "404": problem("No such file"),
                },
                tag="dashboard",
                public=True,
                parameters=[path("name", {"type": "string"})],
            )
        }
    paths["/api/v1/stats"] = {
        "get": operation(
            "fleet_stats",
            "The last minutes of commands second by second, the actors' load and the "
            "fleets by connectivity (any role; what the dashboard charts)",
            {"200": json_body({"type": "object"})},
            tag="dashboard",
        )
    }
    paths["/api/v1/cluster"] = {
        "get": operation(
            "get_cluster",
            "Cluster mode: the nodes, which partition each owns, lease expiry and backlog "
            "(admins); {enabled: false} on a single process",
            {"200": json_body({"type": "object"}), "403": problem("Admins only")},
            tag="operations",
        )
    }
    paths["/api/v1/docs"] = {
        "get": operation(
            "docs_page",
            "Every endpoint on one HTML page",
            {
                "200": {
                    "description": "HTML",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
            tag="operations",
            public=True,
        )
    }
    return paths
