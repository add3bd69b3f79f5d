from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import attrs
import pytest

from sovd.commands import COMMANDS, ReadDataParams
from sovd.execution import CONNECTION_LOST, Chunk, Failure, NoAnswer, run_command
from sovd.fleet import FleetSpec, build_identity
from sovd.profiles import FailureModes
from sovd.registry import CommandType, Reply
from sovd.state import VehicleState, materialize_state
from sovd.uds import NegativeResponse, Nrc, Service

READ_VIN = ReadDataParams("0x01", "0xF190")


def vehicle_with(fleet: FleetSpec, now: datetime, **modes: float) -> VehicleState:
    failing = attrs.evolve(fleet, failure_modes=FailureModes(**modes))
    return materialize_state(build_identity(failing, 0), now)


def read_vin(vehicle: VehicleState, now: datetime) -> list[object]:
    return list(run_command(COMMANDS.get("ReadDataByID"), READ_VIN, vehicle, now))


def test_no_failures_by_default(vehicle: VehicleState, now: datetime) -> None:
    for _ in range(200):
        (step,) = read_vin(vehicle, now)
        assert isinstance(step, Chunk)
        assert step.error is None


def test_dropped_connection(fleet: FleetSpec, now: datetime) -> None:
    vehicle = vehicle_with(fleet, now, connection_drop=1.0)

    assert read_vin(vehicle, now) == [Failure(CONNECTION_LOST)]


def test_timeout_means_no_answer(fleet: FleetSpec, now: datetime) -> None:
    vehicle = vehicle_with(fleet, now, timeout=1.0)

    assert read_vin(vehicle, now) == [NoAnswer()]


def test_injected_negative_responses(fleet: FleetSpec, now: datetime) -> None:
    vehicle = vehicle_with(fleet, now, negative_response=1.0)

    seen = set()
    for _ in range(100):
        (step,) = read_vin(vehicle, now)
        assert isinstance(step, Chunk)
        assert step.is_final
        seen.add(step.payload["negativeResponse"]["nrc"])
    assert seen == {"0x22", "0x31", "0x33"}


def test_response_pending_then_success(fleet: FleetSpec, now: datetime) -> None:
    vehicle = vehicle_with(fleet, now, response_pending=1.0, pending_delay_s=3.0)

    pending, answer = read_vin(vehicle, now)

    assert isinstance(pending, Chunk)
    assert isinstance(answer, Chunk)
    assert pending.payload["udsResponse"] == "7F2278"
    assert pending.payload["responsePending"] is True
    assert not pending.is_final
    assert pending.error is None
    assert answer.delay_s == 3.0
    assert answer.is_final
    assert answer.payload["udsResponse"].startswith("62F190")


def test_failure_rates_mix_in_proportion(fleet: FleetSpec, now: datetime) -> None:
    vehicle = vehicle_with(fleet, now, timeout=0.25, connection_drop=0.25)

    outcomes = [type(read_vin(vehicle, now)[0]).__name__ for _ in range(2000)]

    for kind in ("NoAnswer", "Failure", "Chunk"):
        assert outcomes.count(kind) > 300, kind


def test_unknown_ecu_fails_without_a_reply(vehicle: VehicleState, now: datetime) -> None:
    steps = run_command(
        COMMANDS.get("ReadDTC"),
        COMMANDS.parse_params("ReadDTC", {"ecuAddress": "0x42"}),
        vehicle,
        now,
    )

    (step,) = steps
    assert isinstance(step, Failure)
    assert step.message.startswith("no ECU at 0x42")


def streaming(*replies: Reply, fail_with: Nrc | None = None) -> CommandType[ReadDataParams]:
    def handler(vehicle: VehicleState, params: ReadDataParams) -> Iterator[Reply]:
        yield from replies
        if fail_with is not None:
            raise NegativeResponse(Service.ROUTINE_CONTROL, fail_with)

    return CommandType("Stream", "s", ReadDataParams, handler, Service.ROUTINE_CONTROL)


def test_only_the_last_chunk_is_final(vehicle: VehicleState, now: datetime) -> None:
    command = streaming(Reply({"n": 1}, b"\x71"), Reply({"n": 2}, b"\x71", after_s=1.5))

    first, second = run_command(command, READ_VIN, vehicle, now)

    assert isinstance(first, Chunk)
    assert isinstance(second, Chunk)
    assert (first.is_final, second.is_final) == (False, True)
    assert second.delay_s == 1.5
    assert second.payload == {"n": 2, "udsResponse": "71"}


def test_a_negative_reply_mid_stream_ends_it(vehicle: VehicleState, now: datetime) -> None:
    command = streaming(Reply({"n": 1}, b"\x71"), fail_with=Nrc.CONDITIONS_NOT_CORRECT)

    progress, negative = run_command(command, READ_VIN, vehicle, now)

    assert isinstance(progress, Chunk)
    assert isinstance(negative, Chunk)
    assert not progress.is_final
    assert negative.is_final
    assert negative.error == "NRC 0x22 conditionsNotCorrect"
    assert negative.payload["udsResponse"] == "7F3122"
    assert negative.payload["ecuAddress"] == "0x01"


def test_a_handler_without_replies_fails(vehicle: VehicleState, now: datetime) -> None:
    (step,) = run_command(streaming(), READ_VIN, vehicle, now)

    assert step == Failure("Stream produced no reply")


def test_handler_bugs_propagate_to_the_caller(vehicle: VehicleState, now: datetime) -> None:
    def broken(vehicle: VehicleState, params: ReadDataParams) -> Iterator[Reply]:
        raise ZeroDivisionError
        yield

    command = CommandType("Broken", "b", ReadDataParams, broken, Service.ECU_RESET)

    with pytest.raises(ZeroDivisionError):
        run_command(command, READ_VIN, vehicle, now)
