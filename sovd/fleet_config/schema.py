"""The JSON Schema of a fleet config document, made from the wire model with the limits
the checks apply, so `POST /api/v1/fleets` is described by what the parser reads."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from sovd.fleet import MAX_FLEET_SIZE
from sovd.fleet_config import checks
from sovd.fleet_config.wire import (
    ConnectivityDoc,
    FailureModesDoc,
    FleetConfigDoc,
    FleetDoc,
    Hex,
    LatencyDoc,
    ProfileDoc,
    SimulationDoc,
)

Schema = dict[str, Any]

PROBABILITY: Schema = {"minimum": 0, "maximum": 1}
VIN_PARTS = "^[A-HJ-NPR-Z0-9]"  # checks.VIN_TEXT
MODEL_YEAR: Schema = {"type": "integer", "minimum": 2010, "maximum": 2039}
NAME: Schema = {"pattern": f"^{checks.NAME.pattern}$"}
# What the checks refuse beyond the types, keyed by class and attribute. Rules that tie
# several values together (min_ms <= max_ms, probabilities adding up to at most 1) are not
# said here: they answer 422 with the key path.
LIMITS: dict[tuple[type, str], Schema] = {
    (FleetConfigDoc, "fleets"): {"minItems": 1},
    (FleetDoc, "name"): NAME,
    (FleetDoc, "count"): {"minimum": 0, "maximum": MAX_FLEET_SIZE},
    (FleetDoc, "vin_prefix"): {"pattern": VIN_PARTS + "{3,8}$"},
    (FleetDoc, "wmi"): {"pattern": VIN_PARTS + "{3}$"},
    (FleetDoc, "mailbox_size"): {"minimum": 1},
    (FleetDoc, "command_deadline_s"): {"exclusiveMinimum": 0},
    (SimulationDoc, "mailbox_size"): {"minimum": 1},
    (SimulationDoc, "command_deadline_s"): {"exclusiveMinimum": 0},
    (LatencyDoc, "min_ms"): {"minimum": 0},
    (ProfileDoc, "make"): {"minLength": 1},
    (ProfileDoc, "model"): {"minLength": 1},
    (ProfileDoc, "years"): {"prefixItems": [MODEL_YEAR, MODEL_YEAR]},
    (ProfileDoc, "wmi"): {"pattern": VIN_PARTS + "{3}$"},
    (ProfileDoc, "vds"): {"pattern": VIN_PARTS + "{5}$"},
    (ProfileDoc, "plant_code"): {"pattern": VIN_PARTS + "{1}$"},
    (FailureModesDoc, "pending_delay_s"): {"minimum": 0},
    **{
        (FailureModesDoc, rate): PROBABILITY
        for rate in ("negative_response", "response_pending", "timeout", "connection_drop")
    },
    **{
        (ConnectivityDoc, share): PROBABILITY
        for share in ("intermittent", "disconnected", "intermittent_loss")
    },
}
_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
}


def fleet_config_schema() -> Schema:
    """The schema of a whole document: `{simulation?, profiles?, fleets}`."""
    return _of_class(FleetConfigDoc)


def _of_class(cls: type) -> Schema:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for attribute in attrs.fields(cls):
        schema = _of_type(hints[attribute.name])
        properties[attribute.name] = _limited(schema, LIMITS.get((cls, attribute.name), {}))
        if attribute.default is attrs.NOTHING:
            required.append(attribute.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _limited(schema: Schema, limits: Schema) -> Schema:
    """The limits apply to the value, not to the null that leaves it out."""
    if "anyOf" in schema and schema["anyOf"][-1] == {"type": "null"}:
        value, null = schema["anyOf"]
        return {"anyOf": [value | limits, null]}
    return schema | limits


def _of_type(tp: Any) -> Schema:
    """str, int and bool are only themselves; float also takes integers (never booleans)."""
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp == Hex:
        return {"type": ["string", "integer"]}
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        if len(members) == 1:
            return {"anyOf": [_of_type(members[0]), {"type": "null"}]}
        return {"anyOf": [_of_type(member) for member in members]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _of_type(args[0])}
        return {
            "type": "array",
            "prefixItems": [_of_type(arg) for arg in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin is dict:
        return {"type": "object", "additionalProperties": _of_type(args[1])}
    if attrs.has(tp):
        return _of_class(tp)
    raise TypeError(f"no JSON Schema for {tp!r}")
