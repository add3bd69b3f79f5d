from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import attrs
import pytest
from attrs import frozen

from sovd import strict
from sovd.strict import Problem

KINDS = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "list",
    type(None): "null",
}
DIALECT = strict.Dialect(
    names={
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    },
    given=lambda value: KINDS.get(type(value), type(value).__name__),
)
CAMEL = attrs.evolve(
    DIALECT,
    key=lambda name: name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:]),
    show_rejected_choice=False,
)


@frozen
class Item:
    count: int
    ratio: float = 0.5
    flag: bool = False
    mode: Literal["on", "off"] = "on"
    code: str | int = 0
    span: tuple[int, int] | None = None


@frozen
class Document:
    items: tuple[Item, ...]
    by_name: dict[str, Item] = attrs.Factory(dict)


@frozen
class CommandBody:
    vehicle_id: UUID
    command_name: Annotated[str, strict.NonEmpty()]
    command_params: dict[str, Any] = attrs.Factory(dict)


def problems_of(raw: object, cls: type, dialect: strict.Dialect = DIALECT) -> list[Problem]:
    with pytest.raises(strict.STRUCTURE_ERRORS) as caught:
        strict.converter(dialect).structure(raw, cls)
    return strict.problems(caught.value, dialect)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"count": "5"}, Problem("count", "expected an integer, got string")),
        ({"count": True}, Problem("count", "expected an integer, got boolean")),
        ({"count": 5.0}, Problem("count", "expected an integer, got number")),
        ({"count": 1, "ratio": False}, Problem("ratio", "expected a number, got boolean")),
        ({"count": 1, "flag": 1}, Problem("flag", "expected true or false, got integer")),
        ({"count": 1, "ratio": 10**400}, Problem("ratio", "must lie within ±1.8e+308")),
        (
            {"count": 1, "mode": "auto"},
            Problem("mode", "must be one of 'on', 'off', got 'auto'"),
        ),
        ({"count": 1, "code": 1.5}, Problem("code", "expected a string or an integer, got number")),
        ({"count": 1, "span": [1]}, Problem("span", "expected a list of 2 values, got 1")),
        ({"count": 1, "span": "1,2"}, Problem("span", "expected a list, got string")),
        ({}, Problem("count", "is required")),
        ({"count": 1, "colour": "red"}, Problem("colour", "unknown key")),
        (["count"], Problem("", "expected a table, got list")),
    ],
)
def test_nothing_is_coerced_and_every_error_names_what_was_given(
    raw: object, problem: Problem
) -> None:
    assert problems_of(raw, Item) == [problem]


def test_numbers_accept_integers_and_unions_keep_what_they_get() -> None:
    item = strict.converter(DIALECT).structure({"count": 1, "ratio": 2, "code": "0x10"}, Item)

    assert (item.ratio, type(item.ratio), item.code) == (2.0, float, "0x10")


def test_problems_carry_their_key_path_through_lists_and_tables() -> None:
    raw = {
        "items": [{"count": 1}, {"count": -1, "extra": 0}, {"count": "x"}],
        "by_name": {"a b": {"count": None}, "ok": {"count": 2}},
    }

    assert problems_of(raw, Document) == [
        Problem("items[1].extra", "unknown key"),
        Problem("items[2].count", "expected an integer, got string"),
        Problem('by_name."a b".count', "expected an integer, got null"),
    ]


@frozen
class Params:
    ecu_address: str
    retry_count: int = 1
    mode: Literal["fast", "slow"] = "fast"


def test_renamed_keys_on_the_wire_and_in_problems() -> None:
    converter = strict.converter(CAMEL)

    parsed = converter.structure({"ecuAddress": "0x10", "retryCount": 3}, Params)
    assert parsed == Params("0x10", 3)
    assert converter.unstructure(parsed) == {"ecuAddress": "0x10", "retryCount": 3, "mode": "fast"}
    assert problems_of({"ecu_address": "0x10", "retryCount": "3", "mode": "x"}, Params, CAMEL) == [
        Problem("ecuAddress", "is required"),
        Problem("retryCount", "expected an integer, got string"),
        Problem("mode", "must be one of 'fast', 'slow'"),
        Problem("ecu_address", "unknown key"),
    ]


def test_unstructuring_can_leave_out_defaults_and_writes_lists() -> None:
    converter = strict.converter(DIALECT, omit_defaults=True)

    assert converter.unstructure(Document((Item(1, span=(1, 2)),))) == {
        "items": [{"count": 1, "span": [1, 2]}]
    }


def test_a_request_body_with_a_uuid_and_a_non_empty_name() -> None:
    vehicle = "0b9cf6a3-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    converter = strict.converter(DIALECT)

    body = converter.structure({"vehicle_id": vehicle, "command_name": "ReadDTC"}, CommandBody)

    assert body == CommandBody(UUID(vehicle), "ReadDTC", {})
    assert problems_of(
        {"vehicle_id": "car-7", "command_name": "", "command_params": []}, CommandBody
    ) == [
        Problem("vehicle_id", "must be a UUID"),
        Problem("command_name", "must not be empty"),
        Problem("command_params", "expected a table, got list"),
    ]
    assert problems_of({"vehicle_id": 7, "command_name": 1}, CommandBody) == [
        Problem("vehicle_id", "must be a UUID, got integer"),
        Problem("command_name", "expected a string, got integer"),
    ]


@frozen
class Broken:
    def check(self, value: object) -> None:
        raise RuntimeError("bug")


@frozen
class Guarded:
    name: Annotated[str, Broken()]


def test_an_error_that_is_not_about_the_input_is_raised_again() -> None:
    with pytest.raises(strict.STRUCTURE_ERRORS) as caught:
        strict.converter(DIALECT).structure({"name": "x"}, Guarded)
    with pytest.raises(RuntimeError, match="bug"):
        strict.problems(caught.value, DIALECT)


def test_keys_are_quoted_unless_bare() -> None:
    assert strict.join("", "fleets") == "fleets"
    assert strict.join("fleets", 2) == "fleets[2]"
    assert strict.join("profiles", "my car") == 'profiles."my car"'


def test_a_dict_of_anything_is_written_as_it_is() -> None:
    params = {"ecuAddress": "0x10", "nested": {"values": [1, 2.5, None]}}
    body = CommandBody(UUID(int=7), "ReadDTC", params)

    written = strict.converter(DIALECT).unstructure(body)

    assert written["command_params"] is params
