from __future__ import annotations

from typing import Annotated, Literal

import pytest
from attrs import frozen
from hypothesis import given, settings
from hypothesis import strategies as st

from sovd.commands import COMMANDS
from sovd.errors import InvalidParams
from sovd.params import (
    Doc,
    EcuAddress,
    Range,
    Scalar,
    camel_case,
    params_schema,
    structure_params,
    unstructure_params,
)


@frozen
class Example:
    ecu_address: EcuAddress
    retry_count: Annotated[int, Range(0, 5), Doc("How often")] = 1
    mode: Literal["fast", "slow"] = "fast"
    ratio: float = 0.5
    note: str | None = None
    value: Scalar = 0


def errors_of(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidParams) as caught:
        structure_params(Example, raw)
    return [(e.field, e.message) for e in caught.value.errors]


def test_wire_keys_are_camel_case() -> None:
    parsed = structure_params(Example, {"ecuAddress": "0x10", "retryCount": 3})

    assert parsed == Example("0x10", retry_count=3)
    assert unstructure_params(parsed) == {
        "ecuAddress": "0x10",
        "retryCount": 3,
        "mode": "fast",
        "ratio": 0.5,
        "note": None,
        "value": 0,
    }
    assert camel_case("ecu_address") == "ecuAddress"


def test_no_silent_coercion() -> None:
    assert errors_of({"ecuAddress": "0x10", "retryCount": "3"}) == [
        ("retryCount", "expected int, got string")
    ]
    assert errors_of({"ecuAddress": "0x10", "retryCount": True}) == [
        ("retryCount", "expected int, got bool")
    ]
    assert errors_of({"ecuAddress": "0x10", "retryCount": 2.0}) == [
        ("retryCount", "expected int, got float")
    ]
    assert errors_of({"ecuAddress": "0x10", "ratio": "0.5"}) == [
        ("ratio", "expected number, got string")
    ]
    assert errors_of({"ecuAddress": "0x10", "value": None}) == [
        ("value", "expected string or number, got null")
    ]


def test_numbers_are_numbers() -> None:
    assert structure_params(Example, {"ecuAddress": "0x10", "ratio": 1}).ratio == 1.0


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of({"retryCount": 9, "mode": "turbo", "colour": "red", "size": 1})

    assert errors == [
        ("ecuAddress", "required"),
        ("retryCount", "must be between 0 and 5"),
        ("mode", "must be one of 'fast', 'slow'"),
        ("colour", "unexpected key"),
        ("size", "unexpected key"),
    ]


def test_unknown_keys_are_named_as_sent() -> None:
    assert errors_of({"ecuAddress": "0x10", "retry count": 1, "": 2}) == [
        ("", "unexpected key"),
        ("retry count", "unexpected key"),
    ]


def test_patterns_match_the_whole_value() -> None:
    assert errors_of({"ecuAddress": "0x10\n"}) == [
        ("ecuAddress", "does not match ^0x[0-9A-Fa-f]{2}$")
    ]


def test_params_must_be_an_object() -> None:
    assert errors_of(["0x10"]) == [("", "expected object, got array")]


def test_missing_params_mean_an_empty_object() -> None:
    assert errors_of(None) == [("ecuAddress", "required")]


def test_schema_describes_the_wire_form() -> None:
    schema = params_schema(Example)

    assert schema == {
        "type": "object",
        "properties": {
            "ecuAddress": {
                "type": "string",
                "pattern": "^0x[0-9A-Fa-f]{2}$",
                "description": "ECU address, one byte in hex, e.g. 0x10",
            },
            "retryCount": {
                "type": "integer",
                "minimum": 0,
                "maximum": 5,
                "description": "How often",
                "default": 1,
            },
            "mode": {"enum": ["fast", "slow"], "default": "fast"},
            "ratio": {"type": "number", "default": 0.5},
            "note": {"type": "string"},
            "value": {"type": ["string", "number"], "default": 0},
        },
        "additionalProperties": False,
        "required": ["ecuAddress"],
    }


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.from_regex(r"0x[0-9A-F]{2}(?:[0-9A-F]{2}){0,2}", fullmatch=True)
    | st.sampled_from(["P0420", "hardReset", "extended", "softReset"])
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def wire_keys(cls: type) -> list[str]:
    return list(params_schema(cls)["properties"])


@st.composite
def command_and_params(draw: st.DrawFn) -> tuple[type, object]:
    """A command's params type, and a JSON value that is often an object of its keys."""
    cls = draw(st.sampled_from([command.params_type for command in COMMANDS]))
    keys = st.sampled_from(wire_keys(cls)) | st.text(max_size=8)
    raw = draw(JSON | st.dictionaries(keys, JSON, max_size=4))
    return cls, raw


def parsed_or_error(cls: type, raw: object) -> object:
    try:
        return structure_params(cls, raw)
    except InvalidParams as exc:
        return exc


@settings(max_examples=200, deadline=None, database=None)
@given(command_and_params())
def test_any_json_parses_or_names_each_field_that_is_wrong(case: tuple[type, object]) -> None:
    cls, raw = case

    outcome = parsed_or_error(cls, raw)

    if isinstance(outcome, InvalidParams):
        named = set(raw) if isinstance(raw, dict) else set()
        assert outcome.errors
        for error in outcome.errors:
            assert error.field in {"", *wire_keys(cls), *named}
            assert error.message
    else:
        assert isinstance(outcome, cls)
        assert structure_params(cls, unstructure_params(outcome)) == outcome
