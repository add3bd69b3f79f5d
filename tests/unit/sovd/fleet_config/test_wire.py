"""sovd/fleet_config/wire.py: a document structures key for key, without coercion."""

from __future__ import annotations

import pytest

from sovd.fleet import LatencyRange
from sovd.fleet_config import InvalidFleetConfig, parse_fleet_config
from tests.unit.sovd.fleet_config.documents import FLEET, PROFILE, USES_P, problems


def test_json_documents_work_like_toml() -> None:
    document = {
        "fleets": [{"name": "a", "count": 2, "profile": "vw-golf"}],
        "simulation": {"latency": {"min_ms": 1.5, "max_ms": 2}},
    }

    assert parse_fleet_config(document).fleets[0].latency == LatencyRange(0.0015, 0.002)


def test_a_document_must_be_a_table() -> None:
    with pytest.raises(InvalidFleetConfig, match="expected a table at the top, got list"):
        parse_fleet_config([1, 2])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
            PROFILE.replace("[2020, 2022]", "[2020]") + USES_P,
            "profiles.p.years: expected a list of 2 values, got 1",
            id="years not a pair",
        ),
        pytest.param(
            '[simulation]\nlatency = { distribution = "gamma", min_ms = 1, max_ms = 2 }\n' + FLEET,
            "simulation.latency.distribution: must be one of 'uniform', 'normal', "
            "'lognormal', got 'gamma'",
            id="unknown distribution",
        ),
        pytest.param(
            '[simulation]\nconnectivity = { when_disconnected = "queue" }\n' + FLEET,
            "simulation.connectivity.when_disconnected: must be one of 'fail', 'wait', got 'queue'",
            id="unknown offline behaviour",
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
    ],
)
def test_each_kind_of_mistake_is_named_with_file_and_key(text: str, expected: str) -> None:
    lines = problems(text)

    assert any(line.startswith(f"fleet.toml: {expected}") for line in lines), lines
