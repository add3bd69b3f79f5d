"""Command parameters on the wire: their strict converter (sovd.strict) and JSON Schema.

Parameter models are frozen attrs classes with snake_case fields; on the wire the keys are
camelCase (`ecu_address` <-> `ecuAddress`). Structuring never coerces: `"16"` is not an
int, `1` is not a string, unknown keys are errors. Constraints ride on `Annotated` types
so one declaration drives validation and the schema.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
from attrs import frozen

from sovd import strict
from sovd.errors import FieldError, InvalidParams

T = TypeVar("T")


@frozen
class Pattern:
    regex: str

    def check(self, value: object) -> None:
        if isinstance(value, str) and not re.fullmatch(self.regex, value):
            raise ValueError(f"does not match {self.regex}")


@frozen
class Range:
    minimum: int
    maximum: int

    def check(self, value: object) -> None:
        if isinstance(value, int) and not self.minimum <= value <= self.maximum:
            raise ValueError(f"must be between {self.minimum} and {self.maximum}")


@frozen
class Doc:
    text: str


EcuAddress = Annotated[
    str, Pattern(r"^0x[0-9A-Fa-f]{2}$"), Doc("ECU address, one byte in hex, e.g. 0x10")
]
DataId = Annotated[
    str, Pattern(r"^0x[0-9A-Fa-f]{4}$"), Doc("Data identifier, two bytes in hex, e.g. 0xF190")
]
DtcCode = Annotated[str, Pattern(r"^[PCBU][0-9A-F]{4}$"), Doc("SAE J2012 code, e.g. P0420")]
ByteMask = Annotated[str, Pattern(r"^0x[0-9A-Fa-f]{2}$")]
RoutineId = Annotated[
    str, Pattern(r"^0x[0-9A-Fa-f]{4}$"), Doc("Routine identifier, two bytes in hex")
]
HexData = Annotated[str, Pattern(r"^0x(?:[0-9A-Fa-f]{2})+$")]
Scalar = str | int | float

_JSON_NAMES = {
    str: "string",
    int: "int",
    float: "float",
    bool: "bool",
    type(None): "null",
    list: "array",
    dict: "object",
}


def _json_type(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


DIALECT = strict.Dialect(
    names={
        str: "string",
        int: "int",
        float: "number",
        bool: "bool",
        list: "array",
        dict: "object",
        Scalar: "string or number",
    },
    given=_json_type,
    key=camel_case,
    required="required",
    unknown_key="unexpected key",
    show_rejected_choice=False,
    quote_keys=False,
)
converter = strict.converter(DIALECT)


def structure_params(cls: type[T], raw: object) -> T:
    """`raw` (decoded JSON) -> an instance of `cls`, or InvalidParams naming every problem."""
    try:
        return converter.structure({} if raw is None else raw, cls)
    except strict.STRUCTURE_ERRORS as exc:
        problems = strict.problems(exc, DIALECT)
        raise InvalidParams([FieldError(path, message) for path, message in problems]) from None


def unstructure_params(params: object) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(params)
    return result


def params_schema(cls: type) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the wire form of a parameter class."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for attribute in attrs.fields(cls):
        name = camel_case(attribute.name)
        properties[name] = _type_schema(attribute.type)
        if attribute.default is attrs.NOTHING:
            required.append(name)
        elif attribute.default is not None:
            properties[name]["default"] = attribute.default
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


_SCHEMA_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metadata = get_args(tp)
        schema = _type_schema(base)
        for item in metadata:
            if isinstance(item, Pattern):
                schema["pattern"] = item.regex
            elif isinstance(item, Range):
                schema["minimum"] = item.minimum
                schema["maximum"] = item.maximum
            elif isinstance(item, Doc):
                schema["description"] = item.text
        return schema
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(tp) if arg is not type(None)]
        if len(members) == 1:
            return _type_schema(members[0])
        if all(arg in _SCHEMA_TYPES for arg in members):
            names = [_SCHEMA_TYPES[arg] for arg in members]
            if "number" in names and "integer" in names:
                names.remove("integer")
            return {"type": names}
        return {"anyOf": [_type_schema(arg) for arg in members]}
    if tp in _SCHEMA_TYPES:
        return {"type": _SCHEMA_TYPES[tp]}
    raise TypeError(f"no JSON Schema for parameter type {tp!r}")
