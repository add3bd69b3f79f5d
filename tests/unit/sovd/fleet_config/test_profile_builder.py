"""sovd/fleet_config/profile_builder.py: profiles, new ones and ones that extend another."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sovd import dids
from sovd.demo import VW_GOLF
from sovd.fleet import LatencyRange, build_fleet
from sovd.state import materialize_state
from tests.unit.sovd.fleet_config.documents import EV, FLEET, PROFILE, USES_P, parse, problems

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_a_file_describes_profiles_and_fleets() -> None:
    config = parse(EV)

    evs, golfs = config.fleets
    assert config.vehicle_count == 70
    assert (evs.name, evs.count, evs.seed, evs.vin_prefix) == ("evs", 50, 11, "WVGZZZE2")
    profile = evs.profile
    assert (profile.make, profile.model, profile.year_min, profile.year_max) == (
        "Volkswagen",
        "ID.4",
        2021,
        2024,
    )
    assert [ecu.ecu_address for ecu in profile.ecus] == ["0x01", "0x8C"]
    vcu, bms = profile.ecus
    assert vcu.signal_dids == (dids.VEHICLE_SPEED, dids.MODULE_VOLTAGE)
    assert (vcu.supplier, vcu.hardware_number, vcu.system_name) == (
        "Generic",
        "1EA907115A",
        "Vehicle Control Unit",
    )
    # ECUs without live_dids serve every DID of [[dids]].
    assert bms.signal_dids == (dids.MODULE_VOLTAGE, dids.ODOMETER)
    entry = profile.dtc_pool[0]
    assert (entry.ecu_address, entry.code, entry.status, entry.reappear_per_hour) == (
        0x8C,
        "P0A80",
        0xAF,
        0.5,
    )
    signals = {signal.did: signal for signal in profile.signals}
    assert signals[dids.ODOMETER].initial_min == signals[dids.ODOMETER].maximum == 1234.5
    # Vehicle speed has no [[dids]] entry: the built-in generator fills in.
    assert signals[dids.VEHICLE_SPEED].maximum == 180
    assert golfs.profile is VW_GOLF
    assert golfs.latency == LatencyRange(0.1, 0.3)


def test_fault_memory_at_start_follows_the_pool_probability() -> None:
    evs = parse(EV).fleets[0]

    with_fault = sum(
        1 for vehicle in build_fleet(evs) if materialize_state(vehicle, NOW).ecus[0x8C].dtcs
    )

    assert 10 <= with_fault <= 40  # probability 0.5 over 50 vehicles


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            PROFILE.replace("[2020, 2022]", "[2022, 2020]") + USES_P,
            "profiles.p.years: min 2022 > max 2020",
            id="years min > max",
        ),
        pytest.param(
            PROFILE.replace("[2020, 2022]", "[2005, 2008]") + USES_P,
            "profiles.p.years: model years must lie within 2010..2039",
            id="years outside the VIN code",
        ),
        pytest.param(
            PROFILE.replace('wmi = "ABC"', 'wmi = "AIO"') + USES_P,
            "profiles.p.wmi: must be 3 VIN characters (0-9, A-Z without I, O, Q), got 'AIO'",
            id="bad VIN characters",
        ),
        pytest.param(
            PROFILE.replace('make = "Make"\n', "") + USES_P,
            "profiles.p.make: is required (or extends = a profile to start from)",
            id="new profile without make",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.ecus]]\naddress = "0x10"\nname = "Twin"\n'
            'part_number = "2"\nsoftware_version = "2"\n' + USES_P,
            "profiles.p.ecus[1].address: 0x10 is used by two ECUs",
            id="duplicate ECU address",
        ),
        pytest.param(
            PROFILE
            + '[[profiles.p.dtcs]]\necu = "0x10"\ncode = "P0999"\nprobability = 0.1\n'
            + USES_P,
            "profiles.p.dtcs[0].code: P0999 is not in the DTC catalog (sovd/dtcs.py), "
            "so it has no description",
            id="DTC not in the catalog",
        ),
        pytest.param(
            PROFILE
            + '[[profiles.p.dtcs]]\necu = "0x10"\ncode = "p420"\nprobability = 0.1\n'
            + USES_P,
            "profiles.p.dtcs[0].code: malformed DTC code 'p420': expected like P0420",
            id="malformed DTC code",
        ),
        pytest.param(
            PROFILE
            + '[[profiles.p.dtcs]]\necu = "0x11"\ncode = "P0420"\nprobability = 0.1\n'
            + USES_P,
            "profiles.p.dtcs[0].ecu: the profile has no ECU at 0x11 (has 0x10)",
            id="DTC on a missing ECU",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.dids]]\ndid = "0xF40D"\ninitial = [90, 10]\n' + USES_P,
            "profiles.p.dids[0].initial: min 90 > max 10",
            id="DID initial min > max",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.dids]]\ndid = "0xF40D"\nrange = [0, 900]\n' + USES_P,
            "profiles.p.dids[0].range: must lie within 0..255 for 0xF40D",
            id="DID range beyond its encoding",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.dids]]\ndid = "0xF40D"\nvalue = 5\ninitial = [1, 2]\n' + USES_P,
            "profiles.p.dids[0]: give either value (a fixed value) or initial/range (a generator)",
            id="DID value and generator",
        ),
        pytest.param(
            '[profiles.vw-golf]\nextends = "vw-golf"\n' + FLEET,
            "profiles.vw-golf: 'vw-golf' is a built-in profile; pick another name "
            "(extends = 'vw-golf')",
            id="redefining a built-in profile",
        ),
        pytest.param(
            '[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "a"\n' + FLEET,
            "profiles.b.extends: cycle: a -> b -> a",
            id="extends cycle",
        ),
    ],
)
def test_each_kind_of_mistake_is_named_with_file_and_key(text: str, expected: str) -> None:
    lines = problems(text)

    assert any(line.startswith(f"fleet.toml: {expected}") for line in lines), lines
