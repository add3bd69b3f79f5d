"""An execution's SOVD state read from its stored command and reply chunks, for every way a
command ends; each body validates against the schema GET ships with it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from actors.actor import HALTED_BEFORE_START
from sovd.records import Command, CommandStatus
from web.sovd_api.operations import OPERATIONS, execution_json, execution_schema

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SELF_TEST = OPERATIONS["self-test"]


def a_command(status: CommandStatus, error_message: str | None = None) -> Command:
    return Command(
        command_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        vehicle_id=uuid.uuid4(),
        command_name="RoutineControl",
        command_params={"ecuAddress": "0x01", "routineId": "0x0203"},
        status=status,
        submitted_at=NOW,
        error_message=error_message,
        completed_at=None if status in ("pending", "in_progress") else NOW,
    )


def progress(value: int, state: str = "running") -> dict[str, Any]:
    return {"routine": "selfTest", "state": state, "progress": value, "udsResponse": "71"}


NEGATIVE = {
    "ecuAddress": "0x01",
    "negativeResponse": {
        "service": "0x31",
        "serviceName": "RoutineControl",
        "nrc": "0x22",
        "nrcName": "conditionsNotCorrect",
    },
    "udsResponse": "7F3122",
}
PENDING = NEGATIVE | {
    "negativeResponse": NEGATIVE["negativeResponse"] | {"nrc": "0x78"},
    "responsePending": True,
}


def shaped(command: Command, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    body = execution_json(SELF_TEST, command, payloads)
    Draft202012Validator(execution_schema(SELF_TEST)).validate(body)
    assert body.pop("id") == str(command.command_id)
    return body


@pytest.mark.parametrize("status", ["pending", "in_progress"])
def test_an_unfinished_command_is_running_at_its_last_progress(status: CommandStatus) -> None:
    assert shaped(a_command(status), []) == {
        "status": "running",
        "capability": "execute",
        "progress": 0,
    }
    assert shaped(a_command(status), [progress(0, "started"), progress(50)])["progress"] == 50


def test_a_completed_self_test_has_its_result() -> None:
    final = progress(100, "completed") | {"result": "failed", "findings": ["P0420"]}

    assert shaped(a_command("completed"), [progress(0, "started"), final]) == {
        "status": "completed",
        "capability": "execute",
        "progress": 100,
        "parameters": {"state": "completed", "result": "failed", "findings": ["P0420"]},
    }


def test_a_stopped_self_test_completed_with_the_stop_capability() -> None:
    stopped = {"routine": "selfTest", "state": "stopped", "udsResponse": "7102020300"}

    assert shaped(a_command("completed"), [progress(0, "started"), progress(25), stopped]) == {
        "status": "completed",
        "capability": "stop",
        "progress": 25,
        "parameters": {"state": "stopped"},
    }


def test_a_negative_reply_is_an_error_response() -> None:
    body = shaped(a_command("failed", "NRC 0x22 conditionsNotCorrect"), [NEGATIVE])

    assert body["status"] == "failed"
    assert body["error"] == [
        {
            "path": "/",
            "error": {
                "error_code": "error-response",
                "message": "NRC 0x22 conditionsNotCorrect",
                "parameters": {
                    "service": 0x31,
                    "nrc": 0x22,
                    "nrc_name": "conditionsNotCorrect",
                    "service_name": "RoutineControl",
                },
            },
        }
    ]


@pytest.mark.parametrize("payloads", [[], [PENDING]])
def test_no_answer_is_not_responding(payloads: list[dict[str, Any]]) -> None:
    body = shaped(a_command("timed_out", "no reply within 30 s"), payloads)

    assert body["status"] == "failed"
    assert body["error"][0]["error"] == {
        "error_code": "not-responding",
        "message": "no reply within 30 s",
    }


def test_stopped_before_it_ran_is_failed_by_the_stop() -> None:
    body = shaped(a_command("failed", HALTED_BEFORE_START), [])

    assert (body["status"], body["capability"]) == ("failed", "stop")
    assert body["error"][0]["error"]["vendor_code"] == "stopped"
