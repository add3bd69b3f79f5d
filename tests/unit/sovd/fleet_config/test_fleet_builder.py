"""sovd/fleet_config/fleet_builder.py: fleets, their overrides, the documents that rebuild them."""

from __future__ import annotations

import copy

import pytest

from sovd.demo import FORD_F150
from sovd.fleet import LatencyRange, build_fleet, vin_check_digit
from sovd.fleet_config import parse_fleet_config
from sovd.profiles import Connectivity, FailureModes
from tests.unit.sovd.fleet_config.documents import EV, FLEET, parse, problems


def test_settings_resolve_fleet_then_profile_then_simulation() -> None:
    config = parse(
        """
        [simulation]
        failure_modes = { timeout = 0.1 }
        connectivity = { disconnected = 0.2 }
        latency = { min_ms = 5, max_ms = 10 }
        command_deadline_s = 12
        mailbox_size = 8

        [profiles.own]
        extends = "vw-golf"
        failure_modes = { negative_response = 0.3 }

        [[fleets]]
        name = "a"
        count = 1
        profile = "own"

        [[fleets]]
        name = "b"
        count = 1
        profile = "ford-f150"

        [[fleets]]
        name = "c"
        count = 1
        profile = "own"
        failure_modes = {}
        connectivity = { intermittent = 0.5 }
        latency = { min_ms = 0, max_ms = 0 }
        command_deadline_s = 3
        mailbox_size = 2
        """
    )

    own, builtin, overridden = config.fleets
    assert own.effective_failure_modes == FailureModes(negative_response=0.3)
    assert own.effective_connectivity == Connectivity(disconnected=0.2)
    assert builtin.profile is FORD_F150
    assert builtin.effective_failure_modes == FailureModes(timeout=0.1)
    assert builtin.effective_connectivity == Connectivity(disconnected=0.2)
    assert (own.latency, own.command_deadline_s, own.mailbox_size) == (
        LatencyRange(0.005, 0.01),
        12,
        8,
    )
    assert overridden.effective_failure_modes == FailureModes()
    assert overridden.effective_connectivity == Connectivity(intermittent=0.5)
    assert (overridden.latency, overridden.command_deadline_s, overridden.mailbox_size) == (
        LatencyRange(0.0, 0.0),
        3,
        2,
    )


def test_seed_comes_from_the_fleet_the_file_or_the_server() -> None:
    text = '[[fleets]]\nname = "a"\ncount = 1\nprofile = "vw-golf"\n'

    assert parse(text, default_seed=99).fleets[0].seed == 99
    assert parse("[simulation]\nseed = 5\n" + text, default_seed=99).fleets[0].seed == 5


def test_vins_have_valid_check_digits_and_the_fleet_prefix() -> None:
    for fleet in parse(EV).fleets:
        vins = [vehicle.vin for vehicle in build_fleet(fleet)]
        assert len(set(vins)) == fleet.count
        for vin in vins:
            assert vin[8] == vin_check_digit(vin)
            assert not set(vin) & set("IOQ")
            assert vin.startswith(fleet.vin_prefix or fleet.profile.wmi)


def test_connection_status_is_drawn_once_per_vehicle() -> None:
    config = parse(
        """
        [[fleets]]
        name = "patchy"
        count = 2000
        profile = "vw-golf"
        connectivity = { intermittent = 0.1, disconnected = 0.2 }
        """
    )
    vehicles = build_fleet(config.fleets[0])

    statuses = [vehicle.connection_status for vehicle in vehicles]

    assert 300 <= statuses.count("disconnected") <= 500
    assert 120 <= statuses.count("intermittent") <= 280
    assert statuses == [vehicle.connection_status for vehicle in build_fleet(config.fleets[0])]


def test_each_fleet_has_a_definition_that_rebuilds_it_alone() -> None:
    config = parse(EV)

    for plan in config.plans:
        rebuilt = parse_fleet_config(copy.deepcopy(plan.definition), default_seed=12345)
        assert rebuilt.fleets == (plan.spec,)
    assert set(config.plans[0].definition["profiles"]) == {"ev"}
    assert "profiles" not in config.plans[1].definition


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            FLEET + '[[fleets]]\nname = "b"\ncount = -1\nprofile = "vw-golf"\n',
            "fleets[1].count: must be >= 0, got -1",
            id="negative count",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = 2000000\nprofile = "vw-golf"\n',
            "fleets[0].count: must be <= 1,000,000, got 2,000,000",
            id="count too large",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = 3\nprofile = "vw-golff"\n',
            "fleets[0].profile: unknown profile 'vw-golff' (did you mean 'vw-golf'?); "
            "known: chevrolet-malibu, ford-f150, vw-golf",
            id="unknown profile",
        ),
        pytest.param(
            FLEET.replace('name = "a"', 'name = "has space"'),
            "fleets[0].name: a fleet name is 1-63 letters, digits, '_', '.', '-'",
            id="bad fleet name",
        ),
        pytest.param(
            FLEET.replace("count = 3", 'count = 3\nvin_prefix = "WVWQ"'),
            "fleets[0].vin_prefix: must be 3-8 VIN characters (0-9, A-Z without I, O, Q), "
            "got 'WVWQ'",
            id="bad VIN prefix",
        ),
        pytest.param(
            FLEET.replace("count = 3", 'count = 3\nvin_prefix = "WVWZZZ"\nwmi = "WVW"'),
            "fleets[0]: give vin_prefix or wmi, not both",
            id="vin_prefix and wmi",
        ),
    ],
)
def test_each_kind_of_mistake_is_named_with_file_and_key(text: str, expected: str) -> None:
    lines = problems(text)

    assert any(line.startswith(f"fleet.toml: {expected}") for line in lines), lines
