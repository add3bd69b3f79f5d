"""sovd/fleet_config/checks.py: the values of a document, each checked with its key path."""

from __future__ import annotations

import pytest

from sovd.fleet import LatencyRange
from tests.unit.sovd.fleet_config.documents import FLEET, PROFILE, USES_P, parse, problems


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
            "[simulation]\nlatency = { min_ms = 300, max_ms = 100 }\n" + FLEET,
            "simulation.latency.max_ms: must be >= min_ms (300), got 100",
            id="latency min > max",
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
            "[simulation]\nlatency = { min_ms = nan, max_ms = 5 }\n" + FLEET,
            "simulation.latency: latency needs 0 <= min <= max, got nan..0.005",
            id="latency not a number",
        ),
        pytest.param(
            "[simulation]\nlatency = { min_ms = 0, max_ms = 1" + "0" * 400 + " }\n" + FLEET,
            "simulation.latency.max_ms: must lie within ±1.8e+308",
            id="latency beyond a float",
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
    ],
)
def test_each_kind_of_mistake_is_named_with_file_and_key(text: str, expected: str) -> None:
    lines = problems(text)

    assert any(line.startswith(f"fleet.toml: {expected}") for line in lines), lines
