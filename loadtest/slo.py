"""Service-level objectives a load test checks (`--slo p99_ms=200,error_rate=0.01`)."""

from __future__ import annotations

import math
from collections.abc import Callable

from attrs import frozen

from loadtest.report import LoadReport, percentile


def _completion(pct: float) -> Callable[[LoadReport], float]:
    return lambda report: percentile(report.completion_latencies_s, pct)


# name -> (what it measures, how to read it from a report, True when it is an upper bound)
OBJECTIVES: dict[str, tuple[str, Callable[[LoadReport], float], bool]] = {
    "p50_ms": ("POST-to-completed p50 (ms)", _completion(50), True),
    "p90_ms": ("POST-to-completed p90 (ms)", _completion(90), True),
    "p95_ms": ("POST-to-completed p95 (ms)", _completion(95), True),
    "p99_ms": ("POST-to-completed p99 (ms)", _completion(99), True),
    "max_ms": ("POST-to-completed max (ms)", _completion(100), True),
    "post_p99_ms": ("POST answer p99 (ms)", lambda r: percentile(r.post_latencies_s, 99), True),
    "error_rate": ("share of sent commands that did not complete", lambda r: r.error_rate, True),
    "min_rate": ("completed commands/s", lambda r: r.completed_per_s(), False),
}


class SloError(ValueError):
    """An objective that cannot be read; the message says why."""


@frozen
class Objective:
    name: str
    limit: float


@frozen
class Verdict:
    objective: Objective
    value: float

    @property
    def met(self) -> bool:
        _, _, upper = OBJECTIVES[self.objective.name]
        if math.isnan(self.value):
            return False  # nothing completed: a latency objective cannot hold
        return self.value <= self.objective.limit if upper else self.value >= self.objective.limit

    def line(self) -> str:
        what, _, upper = OBJECTIVES[self.objective.name]
        sign = "<=" if upper else ">="
        outcome = "met" if self.met else "FAILED"
        return (
            f"SLO {self.objective.name} {sign} {self.objective.limit:g}: {outcome} "
            f"({what}: {self.value:.4g})"
        )


def parse_slo(text: str) -> tuple[Objective, ...]:
    objectives: dict[str, Objective] = {}
    for part in (p.strip() for p in text.split(",")):
        name, equals, raw = part.partition("=")
        name = name.strip()
        if not equals:
            raise SloError(f"expected NAME=VALUE, got {part!r}")
        if name not in OBJECTIVES:
            raise SloError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
        try:
            limit = float(raw)
        except ValueError:
            raise SloError(f"{name} needs a number, got {raw!r}") from None
        if not math.isfinite(limit) or limit < 0:
            raise SloError(f"{name} needs a number >= 0, got {raw!r}")
        objectives[name] = Objective(name, limit)
    return tuple(objectives.values())


def judge(report: LoadReport, objectives: tuple[Objective, ...]) -> list[Verdict]:
    return [Verdict(o, OBJECTIVES[o.name][1](report)) for o in objectives]
