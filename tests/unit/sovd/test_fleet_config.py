from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sovd import dids
from sovd.demo import FORD_F150, VW_GOLF
from sovd.fleet import LatencyRange, build_fleet, ecu_identities, vin_check_digit
from sovd.fleet_config import (
    FleetConfig,
    InvalidFleetConfig,
    loads_fleet_config,
    parse_fleet_config,
)
from sovd.profiles import Connectivity, FailureModes
from sovd.state import materialize_state

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

EV = """
[simulation]
seed = 11
failure_modes = { timeout = 0.02 }

[profiles.ev]
make = "Volkswagen"
model = "ID.4"
years = [2021, 2024]
wmi = "WVG"
vds = "ZZZE2"
plant_code = "P"

[[profiles.ev.ecus]]
address = "0x01"
name = "Vehicle Control Unit"
part_number = "1EA907115A"
software_version = "0412"
live_dids = ["0xF40D", "0xF442"]

[[profiles.ev.ecus]]
address = 0x8C
name = "Battery Energy Control Module"
part_number = "1EA915184"
software_version = "0721"
supplier = "LG Energy Solution"

[[profiles.ev.dtcs]]
ecu = "0x8C"
code = "P0A80"
probability = 0.5
status = "0xAF"
reappear_per_hour = 0.5

[[profiles.ev.dids]]
did = "0xF442"
initial = [12.4, 12.8]
range = [11.0, 14.8]
volatility = 0.01

[[profiles.ev.dids]]
did = "0xF4A6"
value = 1234.5

[[fleets]]
name = "evs"
count = 50
profile = "ev"
vin_prefix = "WVGZZZE2"

[[fleets]]
name = "golfs"
count = 20
profile = "vw-golf"
seed = 3
latency = { min_ms = 100, max_ms = 300 }
"""


def parse(text: str, **options: Any) -> FleetConfig:
    return loads_fleet_config(text, source="fleet.toml", **options)


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidFleetConfig) as caught:
        parse(text)
    return caught.value.lines()


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


def test_latency_distributions() -> None:
    config = parse(
        """
        [[fleets]]
        name = "normal"
        count = 1
        profile = "vw-golf"
        latency = { distribution = "normal", min_ms = 20, max_ms = 800, mean_ms = 120 }

        [[fleets]]
        name = "tail"
        count = 1
        profile = "vw-golf"
        [fleets.latency]
        distribution = "lognormal"
        min_ms = 10
        max_ms = 5000
        median_ms = 150
        sigma = 0.8
        """
    )

    normal, tail = (spec.latency for spec in config.fleets)
    assert normal == LatencyRange(0.02, 0.8, "normal", 0.12, 0.13)
    assert tail == LatencyRange(0.01, 5.0, "lognormal", 0.15, 0.8)


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


def test_vins_have_valid_check_digits_and_the_fleet_prefix() -> None:
    for fleet in parse(EV).fleets:
        vins = [vehicle.vin for vehicle in build_fleet(fleet)]
        assert len(set(vins)) == fleet.count
        for vin in vins:
            assert vin[8] == vin_check_digit(vin)
            assert not set(vin) & set("IOQ")
            assert vin.startswith(fleet.vin_prefix or fleet.profile.wmi)


def test_fault_memory_at_start_follows_the_pool_probability() -> None:
    evs = parse(EV).fleets[0]

    with_fault = sum(
        1 for vehicle in build_fleet(evs) if materialize_state(vehicle, NOW).ecus[0x8C].dtcs
    )

    assert 10 <= with_fault <= 40  # probability 0.5 over 50 vehicles


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


def test_json_documents_work_like_toml() -> None:
    document = {
        "fleets": [{"name": "a", "count": 2, "profile": "vw-golf"}],
        "simulation": {"latency": {"min_ms": 1.5, "max_ms": 2}},
    }

    assert parse_fleet_config(document).fleets[0].latency == LatencyRange(0.0015, 0.002)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_the_examples_are_valid(example: Path) -> None:
    config = loads_fleet_config(example.read_text(), source=str(example))

    assert config.vehicle_count > 0


def test_the_large_example_has_100000_vehicles() -> None:
    config = loads_fleet_config((EXAMPLES / "fleet-100k.toml").read_text(), source="100k")

    assert config.vehicle_count == 100_000


FLEET = '[[fleets]]\nname = "a"\ncount = 3\nprofile = "vw-golf"\n'
PROFILE = """
[profiles.p]
make = "Make"
model = "Model"
years = [2020, 2022]
wmi = "ABC"
[[profiles.p.ecus]]
address = "0x10"
name = "ECM"
part_number = "1"
software_version = "1"
"""
USES_P = '[[fleets]]\nname = "a"\ncount = 3\nprofile = "p"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            FLEET + '[[fleets]]\nname = "b"\ncount = -1\nprofile = "vw-golf"\n',
            "fleets[1].count: must be >= 0, got -1",
            id="negative count",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = "3"\nprofile = "vw-golf"\n',
            "fleets[0].count: expected an integer, got string",
            id="count as text",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = 3.0\nprofile = "vw-golf"\n',
            "fleets[0].count: expected an integer, got number",
            id="count as float",
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
            '[[fleets]]\nname = "a"\ncount = 3\n',
            "fleets[0].profile: is required",
            id="missing key",
        ),
        pytest.param(
            FLEET.replace("count = 3", "count = 3\ncuont = 4"),
            "fleets[0].cuont: unknown key",
            id="typo in a fleet",
        ),
        pytest.param(
            "[simulaton]\nseed = 1\n" + FLEET,
            "simulaton: unknown key (known: simulation, profiles, fleets)",
            id="typo in a section",
        ),
        pytest.param(
            PROFILE.replace('wmi = "ABC"', 'wmi = "ABC"\ncolor = "red"') + USES_P,
            "profiles.p.color: unknown key",
            id="typo in a profile",
        ),
        pytest.param(
            PROFILE.replace('address = "0x10"', 'address = "0x1G"') + USES_P,
            'profiles.p.ecus[0].address: malformed ECU address: expected hex like "0x10", '
            "got '0x1G'",
            id="malformed ECU address",
        ),
        pytest.param(
            PROFILE.replace('address = "0x10"', "address = 300") + USES_P,
            "profiles.p.ecus[0].address: ECU address must be 0x00..0xFF, got 300",
            id="ECU address out of range",
        ),
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
            PROFILE.replace("[2020, 2022]", "[2020]") + USES_P,
            "profiles.p.years: expected a list of 2 values, got 1",
            id="years not a pair",
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
            PROFILE
            + '[[profiles.p.dtcs]]\necu = "0x10"\ncode = "P0420"\nprobability = 1.5\n'
            + USES_P,
            "profiles.p.dtcs[0].probability: must be a probability between 0 and 1, got 1.5",
            id="probability above 1",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.dids]]\ndid = "0xF190"\nvalue = 1\n' + USES_P,
            "profiles.p.dids[0].did: 0xF190 is an identification DID",
            id="identification DID as a live value",
        ),
        pytest.param(
            PROFILE + '[[profiles.p.dids]]\ndid = "0x1234"\nvalue = 1\n' + USES_P,
            "profiles.p.dids[0].did: 0x1234 is not a live value in the DID catalog",
            id="unknown DID",
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
        pytest.param(
            "[simulation]\nlatency = { min_ms = 300, max_ms = 100 }\n" + FLEET,
            "simulation.latency.max_ms: must be >= min_ms (300), got 100",
            id="latency min > max",
        ),
        pytest.param(
            '[simulation]\nlatency = { distribution = "gamma", min_ms = 1, max_ms = 2 }\n' + FLEET,
            "simulation.latency.distribution: must be one of 'uniform', 'normal', "
            "'lognormal', got 'gamma'",
            id="unknown distribution",
        ),
        pytest.param(
            '[simulation]\nlatency = { distribution = "lognormal", min_ms = 10, max_ms = 20,'
            " median_ms = 50 }\n" + FLEET,
            "simulation.latency.median_ms: must lie within min_ms..max_ms (10..20), got 50",
            id="median outside the bounds",
        ),
        pytest.param(
            "[simulation]\nfailure_modes = { timeout = 0.6, negative_response = 0.6 }\n" + FLEET,
            "simulation.failure_modes: the probabilities add up to 1.2, more than 1",
            id="failure rates above 1",
        ),
        pytest.param(
            "[simulation]\nconnectivity = { disconnected = 0.7, intermittent = 0.4 }\n" + FLEET,
            "simulation.connectivity: intermittent + disconnected add up to more than 1",
            id="connectivity shares above 1",
        ),
        pytest.param(
            '[simulation]\nconnectivity = { when_disconnected = "queue" }\n' + FLEET,
            "simulation.connectivity.when_disconnected: must be one of 'fail', 'wait', got 'queue'",
            id="unknown offline behaviour",
        ),
        pytest.param(
            "[simulation]\nmailbox_size = 0\n" + FLEET,
            "simulation.mailbox_size: must be >= 1, got 0",
            id="mailbox size 0",
        ),
        pytest.param(
            FLEET.replace("count = 3", "count = 3\ncommand_deadline_s = 0"),
            "fleets[0].command_deadline_s: must be > 0, got 0",
            id="deadline 0",
        ),
        pytest.param(
            FLEET + FLEET,
            "fleets[1].name: 'a' is also fleets[0]",
            id="duplicate fleet name",
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
        pytest.param(
            FLEET.replace("count = 3", "count = 20000")
            + FLEET.replace('"a"', '"b"').replace("count = 3", "count = 990000"),
            "fleets[1].vin_prefix: VIN ",
            id="VINs shared by two fleets",
        ),
        pytest.param(
            FLEET.replace("count = 3", "count = 3\nlatency = 4"),
            "fleets[0].latency: expected a table, got integer",
            id="a value for a table",
        ),
        pytest.param(
            PROFILE.replace('address = "0x10"', 'address = "0x10"\nlive_dids = "0xF40D"') + USES_P,
            "profiles.p.ecus[0].live_dids: expected a list, got string",
            id="a string for a list",
        ),
        pytest.param("", "fleets: is required: at least one [[fleets]] entry", id="no fleets"),
        pytest.param("fleets = []\n", "fleets: needs at least one [[fleets]] entry", id="empty"),
        pytest.param(
            "fleets = 3\n",
            "fleets: expected a list of tables ([[fleets]]), got integer",
            id="fleets not a list",
        ),
        pytest.param(
            '[[fleets]]\nname = "a"\ncount = 3\nprofile = "vw-golf"\nseed = [1]\n',
            "fleets[0].seed: expected an integer, got list",
            id="wrong type in an optional key",
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


def test_a_document_must_be_a_table() -> None:
    with pytest.raises(InvalidFleetConfig, match="expected a table at the top, got list"):
        parse_fleet_config([1, 2])
