from __future__ import annotations

import random

import pytest

from actors.latency import DEFAULT_LATENCY, FixedLatency, UniformLatency, latency_model
from sovd.errors import InvalidProfile
from sovd.fleet import LatencyRange


def test_default_latency_is_half_to_one_and_a_half_seconds() -> None:
    assert UniformLatency(0.5, 1.5) == DEFAULT_LATENCY
    assert DEFAULT_LATENCY.mean_s == 1.0


def test_uniform_latency_is_seeded_and_bounded() -> None:
    latency = UniformLatency(0.1, 0.3)

    samples = [latency.sample(random.Random(5)) for _ in range(3)]
    spread = [latency.sample(rng) for rng in [random.Random(9)] for _ in range(500)]

    assert samples[0] == samples[1] == samples[2]
    assert all(0.1 <= s <= 0.3 for s in spread)


def test_configured_ranges_map_to_models() -> None:
    assert latency_model(LatencyRange(0, 0)) == FixedLatency(0)
    assert latency_model(LatencyRange(0.2, 0.4)) == UniformLatency(0.2, 0.4)


def test_invalid_latencies_are_refused() -> None:
    with pytest.raises(InvalidProfile):
        UniformLatency(1.0, 0.5)
    with pytest.raises(InvalidProfile):
        FixedLatency(-1)
    with pytest.raises(InvalidProfile):
        LatencyRange(-0.1, 1)
