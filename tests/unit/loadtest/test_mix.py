"""The load test's command mix: parsing, proportions and default parameters."""

from __future__ import annotations

from collections import Counter

import pytest

from loadtest.mix import CommandMix, MixError, parse_mix, single_command


def test_a_mix_keeps_its_weights_in_order() -> None:
    mix = parse_mix("ReadDTC:5, ReadDataByID:4,ClearDTC")

    assert mix.weights == (("ReadDTC", 5), ("ReadDataByID", 4), ("ClearDTC", 1))


def test_every_cycle_sends_each_command_its_weight_spread_out() -> None:
    cycle = parse_mix("ReadDTC:5,ReadDataByID:4,ClearDTC:1").sequence()

    assert Counter(cycle) == {"ReadDTC": 5, "ReadDataByID": 4, "ClearDTC": 1}
    assert cycle[:5] == ["ReadDTC", "ReadDataByID", "ReadDTC", "ReadDataByID", "ReadDTC"]
    assert CommandMix((("A", 2), ("B", 1))).sequence() == ["A", "B", "A"]


def test_default_parameters_target_the_vehicles_first_ecu() -> None:
    mix = parse_mix("ReadDTC,ReadDataByID,DiagnosticSessionControl")

    assert mix.params_for("ReadDTC", "0x10") == {"ecuAddress": "0x10"}
    assert mix.params_for("ReadDataByID", "0x10") == {"ecuAddress": "0x10", "dataId": "0xF190"}
    assert mix.params_for("DiagnosticSessionControl", "0x01")["session"] == "default"


def test_a_single_command_takes_the_given_parameters() -> None:
    given = {"ecuAddress": "0x01", "dataId": "0xF40D"}

    assert single_command("ReadDataByID", given).params_for("ReadDataByID", "0x10") == given
    with pytest.raises(MixError, match="give them with --params"):
        single_command("WriteDataByID", None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ReadDTC:0", "must be >= 1, got 0"),
        ("ReadDTC:x", "must be an integer, got 'x'"),
        ("ReadDTC,ReadDTC:2", "listed twice"),
        ("Teleport:1", "no default parameters for 'Teleport'"),
        ("ReadDTC,", "empty entry"),
    ],
)
def test_a_bad_mix_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(MixError, match=problem):
        parse_mix(text)
