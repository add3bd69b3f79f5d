from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg.pgproto.pgproto as pgproto
import orjson
import pytest

from sovd import strict
from web.auth.views import LoginBody
from web.bodies import JSON_BODY, json_response, structure_body
from web.commands.service import CommandRequest
from web.problems import ApiError

VEHICLE = "0b9cf6a3-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
converter = strict.converter(JSON_BODY)


def problems_of(document: dict[str, Any], cls: type) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as caught:
        structure_body(document, cls, converter)
    assert (caught.value.status, caught.value.code) == (422, "validation_failed")
    return [(problem.field, problem.message) for problem in caught.value.errors]


def test_a_command_body_defaults_its_params() -> None:
    body = structure_body(
        {"vehicle_id": VEHICLE, "command_name": "ReadDTC"}, CommandRequest, converter
    )

    assert body == CommandRequest(UUID(VEHICLE), "ReadDTC", {})


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        ({"command_name": "ReadDTC"}, [("vehicle_id", "is required")]),
        (
            {"vehicle_id": 7, "command_name": ""},
            [("vehicle_id", "must be a UUID, got number"), ("command_name", "must not be empty")],
        ),
        (
            {"vehicle_id": "car-7", "command_name": None, "command_params": []},
            [
                ("vehicle_id", "must be a UUID"),
                ("command_name", "expected a string, got null"),
                ("command_params", "expected a JSON object, got array"),
            ],
        ),
        (
            {"vehicle_id": VEHICLE, "command_name": "ReadDTC", "colour": "red"},
            [("colour", "unknown field")],
        ),
    ],
)
def test_every_bad_field_of_a_command_body_is_named(
    document: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    assert problems_of(document, CommandRequest) == problems


def test_strings_are_bounded() -> None:
    assert problems_of({"username": "a" * 65, "password": True}, LoginBody) == [
        ("username", "must be at most 64 characters"),
        ("password", "expected a string, got boolean"),
    ]


def test_responses_write_ids_and_timestamps_as_text() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 1000, tzinfo=UTC)
    from_driver = pgproto.UUID(VEHICLE)

    response = json_response({"a": UUID(VEHICLE), "b": from_driver, "at": moment})

    assert response.body is not None
    assert orjson.loads(response.body) == {  # type: ignore[arg-type]
        "a": VEHICLE,
        "b": VEHICLE,
        "at": moment.isoformat(),
    }
