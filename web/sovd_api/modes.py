"""Modes of a component: its diagnostic session (DiagnosticSessionControl, read back
through the active-session DID) and its security access (SecurityAccess seed and key)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from actors.actor import VehicleActor
from sovd.dids import ACTIVE_SESSION
from sovd.entities import Component
from sovd.records import utc_now
from sovd.uds import Session
from web.auth.guards import require_role
from web.sovd_api import schemas
from web.sovd_api.common import (
    check_query,
    component_of,
    read_body,
    respond,
    run_command,
    vehicle_of,
)
from web.sovd_api.errors import invalid_request
from web.sovd_api.locking import ensure_unlocked
from web.sovd_api.schemas import STRING, obj

MODES = {"session": "Diagnostic session", "security": "Security access"}
SESSIONS = {
    session.label.lower(): session
    for session in (Session.DEFAULT, Session.PROGRAMMING, Session.EXTENDED)
}
SESSIONS_BY_NUMBER = {f"0x{session:02x}": session for session in SESSIONS.values()}
MAX_MODE_EXPIRATION_S = 86_400
LOCKED = "locked"
_LEVEL = re.compile(r"^level_?(?P<level>[0-9]{1,3})(?P<seed>_?requestseed)?$", re.IGNORECASE)
_HEX_DIGITS = re.compile(r"^[0-9A-Fa-f]+$")
# SecurityAccess requestSeed sub-functions.
SECURITY_LEVELS = range(0x01, 0x7E)

MODE_LIST = schemas.items_of(obj({"id": {"enum": list(MODES)}, "name": STRING}, ("id", "name")))
SESSION_VALUE: schemas.Schema = {"enum": [session.label for session in Session]}
SECURITY_VALUE: schemas.Schema = {"type": "string", "pattern": "^(locked|Level_[0-9]+)$"}
SESSION_MODE = obj(
    {"id": {"const": "session"}, "name": STRING, "value": SESSION_VALUE}, ("id", "name", "value")
)
SECURITY_MODE = obj(
    {"id": {"const": "security"}, "name": STRING, "value": SECURITY_VALUE},
    ("id", "name", "value"),
)
SESSION_SET = obj({"id": {"const": "session"}, "value": SESSION_VALUE}, ("id", "value"))
SECURITY_SET = obj(
    {
        "id": {"const": "security"},
        "value": SECURITY_VALUE,
        "seed": obj(
            {"Request_Seed": {"type": "string", "pattern": "^0x[0-9a-f]{2}( 0x[0-9a-f]{2})*$"}},
            ("Request_Seed",),
        ),
    },
    ("id",),
)

# PUT bodies. Session names and security values are read in any case; null is no value.
SESSION_REQUEST = obj(
    {
        "value": {"enum": [*SESSIONS, *SESSIONS_BY_NUMBER]},
        "mode_expiration": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": MAX_MODE_EXPIRATION_S,
        },
    },
    ("value",),
)
# `0xc5 0x60 0xef 0x3d`, `c560ef3d`: runs of hex bytes, `0x` optional, apart by spaces.
HEX_BYTES: schemas.Schema = {
    "type": "string",
    "pattern": r"^\s*(0[xX])?([0-9A-Fa-f]{2})+(\s+(0[xX])?([0-9A-Fa-f]{2})+)*\s*$",
}
# Levels 1 to 125 (SECURITY_LEVELS).
LEVEL = "Level_([1-9]|[1-9][0-9]|1[01][0-9]|12[0-5])"
SEND_KEY = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {"Send_Key": HEX_BYTES, "SendKey": HEX_BYTES},
    "additionalProperties": False,
}
SECURITY_REQUEST: schemas.Schema = {
    "oneOf": [
        obj({"value": {"type": "string", "pattern": f"^{LEVEL}_RequestSeed$"}}, ("value",)),
        obj(
            {"value": {"type": "string", "pattern": f"^{LEVEL}$"}, "Key": SEND_KEY},
            ("value", "Key"),
        ),
        obj(
            {"value": {"type": "string", "pattern": f"^{LEVEL}$"}, "key": HEX_BYTES},
            ("value", "key"),
        ),
    ]
}


async def list_modes(request: web.Request) -> web.Response:
    check_query(request)
    component_of(request)
    items = [{"id": ident, "name": name} for ident, name in MODES.items()]
    return respond(request, {"items": items}, MODE_LIST)


async def get_session(request: web.Request) -> web.Response:
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    outcome = await run_command(
        request,
        vehicle,
        "ReadDataByID",
        {"ecuAddress": component.ecu_address, "dataId": f"0x{ACTIVE_SESSION:04X}"},
    )
    value = (outcome.final_payload or {})["value"]
    body = {"id": "session", "name": MODES["session"], "value": value}
    return respond(request, body, SESSION_MODE)


def _session(value: Any) -> Session:
    """`default`, `extended`, `programming` in any case, or their numbers `0x01`..`0x03`."""
    wanted = value.lower() if isinstance(value, str) else ""
    session = SESSIONS.get(wanted) or SESSIONS_BY_NUMBER.get(wanted)
    if session is None:
        allowed = ", ".join(s.label for s in SESSIONS.values())
        raise invalid_request("value", f"{value!r} is not a session; allowed: {allowed}")
    return session


def _mode_expiration(body: dict[str, Any]) -> int | None:
    seconds = body.get("mode_expiration")
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise invalid_request("mode_expiration", "must be a whole number of seconds")
    if not 1 <= seconds <= MAX_MODE_EXPIRATION_S:
        raise invalid_request("mode_expiration", f"must be 1 to {MAX_MODE_EXPIRATION_S} seconds")
    return seconds


@require_role("engineer", "admin")
async def set_session(request: web.Request) -> web.Response:
    """`{"value": "extended", "mode_expiration": 600}`: the session lasts that many seconds
    past the component's last request (the UDS S3 timer), then falls back to default."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    body = await read_body(request, ("value", "mode_expiration"))
    if "value" not in body:
        raise invalid_request("value", "is required")
    session = _session(body["value"])
    params: dict[str, Any] = {"ecuAddress": component.ecu_address, "session": session.label}
    expiration = _mode_expiration(body)
    if expiration is not None:
        params["sessionTimeoutS"] = expiration
    await ensure_unlocked(request, vehicle, component)
    outcome = await run_command(request, vehicle, "DiagnosticSessionControl", params)
    value = (outcome.final_payload or {})["session"]
    return respond(request, {"id": "session", "value": value}, SESSION_SET)


async def get_security(request: web.Request) -> web.Response:
    """Read from the vehicle's actor, without a command: UDS has no request that reads the
    security access state without changing it (a requestSeed answers a zero seed when the
    level is unlocked, but it replaces a seed the client is about to answer and counts
    towards the lockout delay). A session whose timer has run out reads as locked, as the
    ECU's next request would find it."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    body = {
        "id": "security",
        "name": MODES["security"],
        "value": _security_value(vehicle, component),
    }
    return respond(request, body, SECURITY_MODE)


def _security_value(vehicle: VehicleActor, component: Component) -> str:
    state = vehicle.state
    if state is None:  # never contacted: every ECU starts locked
        return LOCKED
    level = state.ecus[component.ecu.address].unlocked_level_at(utc_now())
    return LOCKED if level is None else f"Level_{level}"


def _key(body: dict[str, Any]) -> str | None:
    """The key as `0x...` hex: `{"Key": {"Send_Key": "0xc5 0x60 0xef 0x3d"}}` (also
    `SendKey`), or `{"key": "c560ef3d"}`; spaces and `0x` prefixes are optional."""
    if "Key" in body and "key" in body:
        raise invalid_request("key", "give Key or key, not both")
    if "Key" in body:
        holder = body["Key"]
        if not isinstance(holder, dict) or len(holder) != 1:
            raise invalid_request("Key", 'must be {"Send_Key": "0x.. 0x.."}')
        ((name, text),) = holder.items()
        if name not in ("Send_Key", "SendKey"):
            raise invalid_request(f"Key.{name}", "unknown member; known: Send_Key")
        field = f"Key.{name}"
    elif "key" in body:
        text, field = body["key"], "key"
    else:
        return None
    if not isinstance(text, str):
        raise invalid_request(field, "must be a string of hex bytes")
    return f"0x{_hex_bytes(text, field)}"


def _hex_bytes(text: str, field: str) -> str:
    digits = []
    for token in text.split():
        token = token[2:] if token[:2].lower() == "0x" else token
        if not _HEX_DIGITS.match(token) or len(token) % 2:
            raise invalid_request(field, f"{token!r} is not a run of hex bytes")
        digits.append(token.upper())
    if not digits:
        raise invalid_request(field, "must hold at least one byte")
    return "".join(digits)


@require_role("engineer", "admin")
async def set_security(request: web.Request) -> web.Response:
    """Seed and key, two requests: `{"value": "Level_1_RequestSeed"}` answers the seed,
    `{"value": "Level_1", "Key": {"Send_Key": "0x.. 0x.. 0x.. 0x.."}}` unlocks the level."""
    check_query(request)
    vehicle = vehicle_of(request)
    component = component_of(request, vehicle)
    body = await read_body(request, ("value", "Key", "key"))
    value = body.get("value")
    match = _LEVEL.match(value) if isinstance(value, str) else None
    if match is None:
        raise invalid_request(
            "value", f"{value!r} is not a security value; use Level_<n>_RequestSeed or Level_<n>"
        )
    level = int(match["level"])
    if level not in SECURITY_LEVELS:
        raise invalid_request("value", f"level {level} does not exist; levels are 1 to 125")
    key = _key(body)
    if match["seed"] and key is not None:
        raise invalid_request("key", "a seed request carries no key")
    if not match["seed"] and key is None:
        raise invalid_request("Key", f"Level_{level} needs the key for the seed")
    params: dict[str, Any] = {"ecuAddress": component.ecu_address, "level": level}
    if key is not None:
        params["key"] = key
    await ensure_unlocked(request, vehicle, component)
    outcome = await run_command(request, vehicle, "SecurityAccess", params)
    if key is None:
        seed = bytes.fromhex((outcome.final_payload or {})["seed"][2:])
        spaced = " ".join(f"0x{byte:02x}" for byte in seed)
        return respond(request, {"id": "security", "seed": {"Request_Seed": spaced}}, SECURITY_SET)
    return respond(request, {"id": "security", "value": f"Level_{level}"}, SECURITY_SET)
