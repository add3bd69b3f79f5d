"""sovd/fleet_config/parser.py: a whole document, all or nothing, every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sovd.fleet import build_fleet, ecu_identities
from sovd.fleet_config import InvalidFleetConfig, loads_fleet_config
from sovd.state import materialize_state
from tests.unit.sovd.fleet_config.documents import EV, FLEET, parse, problems

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_the_same_file_gives_the_same_vehicles() -> None:
    first, again = parse(EV), parse(EV)

    for one, other in zip(first.fleets, again.fleets, strict=True):
        assert one == other
        vehicles, twins = build_fleet(one), build_fleet(other)
        assert vehicles == twins
        for vehicle, twin in zip(vehicles[:10], twins[:10], strict=True):
            assert ecu_identities(vehicle) == ecu_identities(twin)
            state, twin_state = materialize_state(vehicle, NOW), materialize_state(twin, NOW)
            assert {a: e.dtcs for a, e in state.ecus.items()} == {
                a: e.dtcs for a, e in twin_state.ecus.items()
            }
            assert {d: s.value for d, s in state.signals.items()} == {
                d: s.value for d, s in twin_state.signals.items()
            }


def test_another_seed_gives_other_vehicles() -> None:
    one = build_fleet(parse(EV).fleets[0])
    other = build_fleet(parse(EV.replace("seed = 11", "seed = 12")).fleets[0])

    assert {v.vehicle_id for v in one}.isdisjoint(v.vehicle_id for v in other)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_the_examples_are_valid(example: Path) -> None:
    config = loads_fleet_config(example.read_text(), source=str(example))

    assert config.vehicle_count > 0


def test_the_large_example_has_100000_vehicles() -> None:
    config = loads_fleet_config((EXAMPLES / "fleet-100k.toml").read_text(), source="100k")

    assert config.vehicle_count == 100_000


def test_every_problem_is_reported_at_once() -> None:
    lines = problems(
        FLEET.replace("count = 3", "count = -1")
        + '[[fleets]]\nname = "b"\ncount = "x"\nprofile = "vw-golf"\n'
        + '[[fleets]]\nname = "c"\ncount = 1\nprofile = "nope"\n'
    )

    assert [line.split(": ")[1] for line in lines] == [
        "fleets[1].count",
        "fleets[0].count",
        "fleets[2].profile",
    ]


def test_a_problem_is_also_a_message_for_humans() -> None:
    with pytest.raises(InvalidFleetConfig, match=r"^x\.toml: fleets\[0\]\.count: must be >= 0"):
        loads_fleet_config(FLEET.replace("count = 3", "count = -2"), source="x.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            FLEET + FLEET,
            "fleets[1].name: 'a' is also fleets[0]",
            id="duplicate fleet name",
        ),
        pytest.param(
            FLEET.replace("count = 3", "count = 20000")
            + FLEET.replace('"a"', '"b"').replace("count = 3", "count = 990000"),
            "fleets[1].vin_prefix: VIN ",
            id="VINs shared by two fleets",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = = 3\n',
            "line 3, column 9: invalid TOML: Invalid value",
            id="TOML syntax",
        ),
    ],
)
def test_each_kind_of_mistake_is_named_with_file_and_key(text: str, expected: str) -> None:
    lines = problems(text)

    assert any(line.startswith(f"fleet.toml: {expected}") for line in lines), lines
