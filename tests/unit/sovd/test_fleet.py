from __future__ import annotations

import uuid
from datetime import date

import attrs
import pytest

from sovd.demo import CHEVROLET_MALIBU, FORD_F150, VW_GOLF, demo_fleets
from sovd.errors import InvalidProfile
from sovd.fleet import (
    VEHICLE_NAMESPACE,
    FleetSpec,
    LatencyRange,
    build_fleet,
    build_identity,
    ecu_identities,
    first_shared_vin,
    model_year_code,
    vin_check_digit,
)
from sovd.profiles import Connectivity


@pytest.mark.parametrize(
    "vin",
    ["1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352"],
)
def test_check_digit_of_known_vins(vin: str) -> None:
    assert vin_check_digit(vin) == vin[8]


def test_model_year_codes() -> None:
    assert [model_year_code(y) for y in (2010, 2018, 2019, 2023, 2030, 2031)] == list("AJKPY1")
    with pytest.raises(ValueError, match="outside"):
        model_year_code(2009)


def test_identity_is_the_same_for_the_same_inputs() -> None:
    fleet = FleetSpec("berlin", VW_GOLF, 100, seed=7)

    first, again = (
        build_identity(fleet, 42),
        build_identity(FleetSpec("berlin", VW_GOLF, 100, seed=7), 42),
    )

    assert first == again
    assert first.vehicle_id == uuid.uuid5(VEHICLE_NAMESPACE, "7/berlin/42")


def test_seed_name_and_index_each_change_the_identity() -> None:
    base = build_identity(FleetSpec("berlin", VW_GOLF, 100, seed=7), 42)

    others = [
        build_identity(FleetSpec("berlin", VW_GOLF, 100, seed=8), 42),
        build_identity(FleetSpec("munich", VW_GOLF, 100, seed=7), 42),
        build_identity(FleetSpec("berlin", VW_GOLF, 100, seed=7), 43),
    ]

    assert all(other.vehicle_id != base.vehicle_id for other in others)


@pytest.mark.parametrize("profile", [VW_GOLF, FORD_F150, CHEVROLET_MALIBU])
def test_fleet_vins_are_valid_distinct_and_match_the_profile(profile: object) -> None:
    fleet = FleetSpec("f", profile, 2000, seed=3)  # type: ignore[arg-type]

    vehicles = build_fleet(fleet)

    assert len({v.vin for v in vehicles}) == len({v.vehicle_id for v in vehicles}) == 2000
    for vehicle in vehicles:
        vin = vehicle.vin
        assert len(vin) == 17
        assert not set(vin) & set("IOQ")
        assert vin[8] == vin_check_digit(vin)
        assert vin[:3] == fleet.profile.wmi
        assert vin[9] == model_year_code(vehicle.year)
        assert fleet.profile.year_min <= vehicle.year <= fleet.profile.year_max


def test_vin_prefix_replaces_the_start_of_the_vin() -> None:
    vehicle = build_identity(FleetSpec("f", VW_GOLF, 1, vin_prefix="WVWZZZ1K"), 0)

    assert vehicle.vin.startswith("WVWZZZ1K")
    assert vehicle.vin[8] == vin_check_digit(vehicle.vin)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vin_prefix": "WVO"}, "vin_prefix"),
        ({"vin_prefix": "AB"}, "vin_prefix"),
        ({"count": -1}, "count"),
        ({"name": "has space"}, "fleet name"),
    ],
)
def test_bad_fleet_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    spec = {"name": "f", "profile": VW_GOLF, "count": 1, **kwargs}

    with pytest.raises(InvalidProfile, match=message):
        FleetSpec(**spec)  # type: ignore[arg-type]


def test_index_outside_the_fleet_is_refused() -> None:
    with pytest.raises(ValueError, match="no vehicle #3"):
        build_identity(FleetSpec("f", VW_GOLF, 3), 3)


def test_ecu_identities_are_stable_and_per_vehicle() -> None:
    fleet = FleetSpec("f", FORD_F150, 2, seed=1)
    first, second = build_fleet(fleet)

    ecus = ecu_identities(first)

    assert [e.ecu_address for e in ecus] == [e.ecu_address for e in FORD_F150.ecus]
    assert ecus == ecu_identities(build_identity(FleetSpec("f", FORD_F150, 2, seed=1), 0))
    assert {e.serial_number for e in ecus}.isdisjoint(
        e.serial_number for e in ecu_identities(second)
    )
    assert all(e.manufacturing_date < date(first.year, 1, 1) for e in ecus)


def test_demo_fleet_has_ten_vehicles_of_three_makes() -> None:
    fleets = demo_fleets(seed=1)

    vehicles = [v for fleet in fleets for v in build_fleet(fleet)]
    assert len(vehicles) == 10
    assert {v.make for v in vehicles} == {"Volkswagen", "Ford", "Chevrolet"}
    assert len({v.vehicle_id for v in vehicles}) == 10


def test_fleets_with_one_vin_head_can_share_vins_where_their_serials_overlap() -> None:
    small = FleetSpec("small", VW_GOLF, 10, seed=1)
    large = FleetSpec("large", VW_GOLF, 990_000, seed=1)

    shared = first_shared_vin(small, large)

    assert shared is not None
    assert shared in {v.vin for v in build_fleet(small)}
    assert first_shared_vin(small, attrs.evolve(large, vin_prefix="WVWZZZ9Z")) is None
    assert first_shared_vin(small, FleetSpec("f150", FORD_F150, 990_000, seed=1)) is None
    assert first_shared_vin(small, FleetSpec("few", VW_GOLF, 10, seed=2)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_s": 0.5, "max_s": 0.1}, "min <= max"),
        ({"distribution": "normal"}, "min <= center <= max"),
        ({"distribution": "normal", "center_s": 0.2, "spread": 0.0}, "spread > 0"),
        ({"distribution": "gamma", "center_s": 0.2, "spread": 1.0}, "unknown latency"),
    ],
)
def test_bad_latency_ranges_are_refused(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"min_s": 0.1, "max_s": 0.5, **kwargs}

    with pytest.raises(InvalidProfile, match=message):
        LatencyRange(**settings)  # type: ignore[arg-type]


def test_fleet_settings_must_make_sense() -> None:
    with pytest.raises(InvalidProfile, match="command_deadline_s"):
        FleetSpec("f", VW_GOLF, 1, command_deadline_s=0)
    with pytest.raises(InvalidProfile, match="mailbox_size"):
        FleetSpec("f", VW_GOLF, 1, mailbox_size=0)


def test_connection_status_follows_the_fleet_connectivity_over_the_profile() -> None:
    offline = Connectivity(disconnected=1.0)
    profile = attrs.evolve(VW_GOLF, connectivity=offline)

    assert {v.connection_status for v in build_fleet(FleetSpec("a", VW_GOLF, 20))} == {"connected"}
    assert {v.connection_status for v in build_fleet(FleetSpec("b", profile, 20))} == {
        "disconnected"
    }
    fleet = FleetSpec("c", profile, 20, connectivity=Connectivity(intermittent=1.0))
    assert {v.connection_status for v in build_fleet(fleet)} == {"intermittent"}
