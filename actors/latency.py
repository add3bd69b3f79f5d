"""Simulated network latency between the backend and a vehicle."""

from __future__ import annotations

import math
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


@frozen
class NormalLatency:
    """Gaussian around `mean_s`, clamped to the bounds."""

    mean_s: float
    stddev_s: float
    min_s: float
    max_s: float

    def sample(self, rng: random.Random) -> float:
        return min(max(rng.gauss(self.mean_s, self.stddev_s), self.min_s), self.max_s)


@frozen
class LogNormalLatency:
    """Log-normal with median `median_s` and shape `sigma`, clamped to the bounds: the
    long tail of a cellular link."""

    median_s: float
    sigma: float
    min_s: float
    max_s: float

    def sample(self, rng: random.Random) -> float:
        value = self.median_s * math.exp(rng.gauss(0.0, self.sigma))
        return min(max(value, self.min_s), self.max_s)

    @property
    def mean_s(self) -> float:
        return min(self.median_s * math.exp(self.sigma**2 / 2), self.max_s)


DEFAULT_LATENCY = UniformLatency(0.5, 1.5)


def latency_model(latency: LatencyRange) -> LatencyModel:
    """The model for a configured range; `0,0` (as in `--latency-ms 0,0`) never sleeps."""
    if latency.min_s == latency.max_s:
        return FixedLatency(latency.min_s)
    if latency.distribution == "normal":
        assert latency.center_s is not None and latency.spread is not None
        return NormalLatency(latency.center_s, latency.spread, latency.min_s, latency.max_s)
    if latency.distribution == "lognormal":
        assert latency.center_s is not None and latency.spread is not None
        return LogNormalLatency(latency.center_s, latency.spread, latency.min_s, latency.max_s)
    return UniformLatency(latency.min_s, latency.max_s)
