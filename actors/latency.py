"""Simulated network latency between the backend and a vehicle."""

from __future__ import annotations

import random
from typing import Protocol

from attrs import frozen

from sovd.errors import InvalidProfile
from sovd.fleet import LatencyRange


class LatencyModel(Protocol):
    def sample(self, rng: random.Random) -> float:
        """Seconds before the vehicle's first answer to one command."""
        ...

    @property
    def mean_s(self) -> float: ...


@frozen
class FixedLatency:
    seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.seconds < 0:
            raise InvalidProfile("latency must not be negative")

    def sample(self, rng: random.Random) -> float:
        return self.seconds

    @property
    def mean_s(self) -> float:
        return self.seconds


@frozen
class UniformLatency:
    min_s: float = 0.5
    max_s: float = 1.5

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_s <= self.max_s:
            raise InvalidProfile(f"latency needs 0 <= min <= max, got {self.min_s}..{self.max_s}")

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.min_s, self.max_s)

    @property
    def mean_s(self) -> float:
        return (self.min_s + self.max_s) / 2


DEFAULT_LATENCY = UniformLatency(0.5, 1.5)


def latency_model(latency: LatencyRange) -> LatencyModel:
    """The model for a configured range; `0,0` (as in `--latency-ms 0,0`) never sleeps."""
    if latency.min_s == latency.max_s:
        return FixedLatency(latency.min_s)
    return UniformLatency(latency.min_s, latency.max_s)
