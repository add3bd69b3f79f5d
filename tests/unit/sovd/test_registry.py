from __future__ import annotations

from collections.abc import Iterator

import pytest
from attrs import frozen

from sovd.commands import COMMANDS, ReadDtcParams
from sovd.demo import VW_GOLF
from sovd.errors import InvalidParams, UnknownCommand, UnknownEcu
from sovd.params import EcuAddress
from sovd.registry import CommandRegistry, CommandType, Reply
from sovd.state import VehicleState
from sovd.uds import Service


@frozen
class PingParams:
    ecu_address: EcuAddress


def ping(vehicle: VehicleState, params: PingParams) -> Iterator[Reply]:
    yield Reply({"ecuAddress": params.ecu_address}, b"\x50\x01")


def test_a_new_command_is_one_registration() -> None:
    registry = CommandRegistry()
    registry.command(
        "Ping", params=PingParams, service=Service.DIAGNOSTIC_SESSION_CONTROL, description="p"
    )(ping)

    assert "Ping" in registry
    assert len(registry) == 1
    assert registry.parse_params("Ping", {"ecuAddress": "0x10"}) == PingParams("0x10")
    assert registry.describe()[0]["name"] == "Ping"


def test_registering_a_name_twice_is_an_error() -> None:
    command = CommandType("Ping", "p", PingParams, ping, Service.DIAGNOSTIC_SESSION_CONTROL)
    registry = CommandRegistry([command])

    with pytest.raises(ValueError, match="twice"):
        registry.register(command)


def test_unknown_command() -> None:
    with pytest.raises(UnknownCommand, match="'Fly'"):
        COMMANDS.parse_params("Fly", {})


def test_parsed_params_pass_through_and_go_back_to_the_wire_form() -> None:
    read_dtc = COMMANDS.get("ReadDTC")
    parsed = ReadDtcParams("0x01")

    assert read_dtc.parse(parsed) is parsed
    assert read_dtc.wire_params(parsed) == {"ecuAddress": "0x01", "statusMask": "0xFF"}


def test_a_copy_can_grow_without_touching_the_original() -> None:
    registry = COMMANDS.copy()
    registry.register(CommandType("Ping", "p", PingParams, ping, Service.ECU_RESET))

    assert "Ping" in registry
    assert "Ping" not in COMMANDS


def test_check_target_knows_the_vehicles_ecus() -> None:
    read_dtc = COMMANDS.get("ReadDTC")
    read_dtc.check_target(ReadDtcParams("0x01"), VW_GOLF)

    with pytest.raises(UnknownEcu) as caught:
        read_dtc.check_target(ReadDtcParams("0x42"), VW_GOLF)

    (error,) = caught.value.errors
    assert error.field == "ecuAddress"
    assert error.message.startswith("no ECU at 0x42 on this vehicle (has 0x01, 0x02")


def test_flat_params_are_parsed_once_and_their_json_types_still_count() -> None:
    read_dtc = COMMANDS.get("ReadDTC")
    first = read_dtc.parse({"ecuAddress": "0x01"})
    assert read_dtc.parse({"ecuAddress": "0x01"}) is first
    for wrong in ({"ecuAddress": 1}, {"ecuAddress": True}, {"ecuAddress": 1.0}):
        for _ in range(2):  # a refusal is never remembered as a success
            with pytest.raises(InvalidParams):
                read_dtc.parse(wrong)
    nested = {"ecuAddress": "0x01", "extra": {"x": 1}}
    with pytest.raises(InvalidParams):
        read_dtc.parse(nested)
