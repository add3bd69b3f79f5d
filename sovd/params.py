"""Command parameters on the wire: one strict cattrs converter and the JSON Schema.

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
from cattrs import ClassValidationError, Converter
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

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


def _is_scalar(tp: Any) -> bool:
    return bool(tp == Scalar)


def _structure_scalar(value: object, _: object) -> object:
    if type(value) not in (str, int, float):
        raise TypeError(f"expected string or number, got {_json_type(value)}")
    return value


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _literal_hook(tp: Any) -> Any:
    allowed = get_args(tp)
    listed = ", ".join(repr(a) for a in allowed)

    def structure(value: object, _: object) -> object:
        for candidate in allowed:
            if type(candidate) is type(value) and candidate == value:
                return value
        raise ValueError(f"must be one of {listed}")

    return structure


def _is_constrained(tp: Any) -> bool:
    return get_origin(tp) is Annotated


def _constrained_hook(tp: Any) -> Any:
    base, *metadata = get_args(tp)
    checks = [m for m in metadata if isinstance(m, Pattern | Range)]
    inner = converter.get_structure_hook(base)

    def structure(value: object, _: object) -> object:
        result = inner(value, base)
        for check in checks:
            check.check(result)
        return result

    return structure


def _params_structure_hook(cls: type) -> Any:
    renames: dict[str, Any] = {
        a.name: override(rename=camel_case(a.name)) for a in attrs.fields(cls)
    }
    return make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **renames)


def _params_unstructure_hook(cls: type) -> Any:
    renames: dict[str, Any] = {
        a.name: override(rename=camel_case(a.name)) for a in attrs.fields(cls)
    }
    return make_dict_unstructure_fn(cls, converter, **renames)


converter = Converter(forbid_extra_keys=True, detailed_validation=True)
converter.register_structure_hook(str, strict.exact(str, "string", _json_type))
converter.register_structure_hook(int, strict.exact(int, "int", _json_type))
converter.register_structure_hook(bool, strict.exact(bool, "bool", _json_type))
converter.register_structure_hook(float, strict.number("number", _json_type))
converter.register_structure_hook_func(_is_scalar, _structure_scalar)
converter.register_structure_hook_factory(_is_literal, _literal_hook)
converter.register_structure_hook_factory(_is_constrained, _constrained_hook)
converter.register_structure_hook_factory(attrs.has, _params_structure_hook)
converter.register_unstructure_hook_factory(attrs.has, _params_unstructure_hook)


def structure_params(cls: type[T], raw: object) -> T:
    """`raw` (decoded JSON) -> an instance of `cls`, or InvalidParams naming every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParams([FieldError("", f"expected object, got {_json_type(raw)}")])
    try:
        return converter.structure(raw, cls)
    except ClassValidationError as exc:
        raise InvalidParams(_field_errors(exc)) from None


def unstructure_params(params: object) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(params)
    return result


def _field_errors(exc: ClassValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    with_notes, without_notes = exc.group_exceptions()
    for sub, note in with_notes:
        name = camel_case(note.name)
        if isinstance(sub, KeyError):
            errors.append(FieldError(name, "required"))
        else:
            errors.append(FieldError(name, str(sub)))
    for sub in without_notes:
        if isinstance(sub, ForbiddenExtraKeysError):
            errors.extend(FieldError(key, "unexpected key") for key in sorted(sub.extra_fields))
        else:
            errors.append(FieldError("", str(sub)))
    return errors


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
