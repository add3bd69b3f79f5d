"""What a load test saw, as it happens: totals, per command type and per HTTP status, latency
percentiles and a per-second time series; printed, written as JSON, or shown live."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from attrs import define, field

TERMINAL = ("completed", "failed", "timed_out")
PERCENTILES = (50, 90, 95, 99)
CONNECTION_LOST = "connection lost"


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of seconds, in milliseconds; NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index] * 1000


def latency_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50 ... p99 and max in milliseconds (None without values, so JSON stays valid)."""
    ordered = sorted(values)
    summary: dict[str, float | int | None] = {
        f"p{p}": round(percentile(ordered, p), 3) if ordered else None for p in PERCENTILES
    }
    summary["max"] = round(ordered[-1] * 1000, 3) if ordered else None
    summary["count"] = len(ordered)
    return summary


@define
class CommandTally:
    """One command type's share of the run."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter[int] = field(factory=Counter)
    terminal: Counter[str] = field(factory=Counter)
    completion_latencies_s: list[float] = field(factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "terminal": dict(self.terminal),
            "never_finished": self.accepted - sum(self.terminal.values()),
            "completion_ms": latency_summary(self.completion_latencies_s),
        }


@define
class Second:
    """What happened in one second of the run (counted from the first send)."""

    sent: int = 0
    answered: Counter[int] = field(factory=Counter)
    terminal: Counter[str] = field(factory=Counter)
    completion_latencies_s: list[float] = field(factory=list)

    def as_json(self, second: int) -> dict[str, Any]:
        done = self.completion_latencies_s
        errors = sum(n for code, n in self.answered.items() if code != 202)
        errors += self.terminal["failed"] + self.terminal["timed_out"]
        return {
            "second": second,
            "sent": self.sent,
            "answered": sum(self.answered.values()),
            "accepted": self.answered[202],
            "completed": self.terminal["completed"],
            "failed": self.terminal["failed"],
            "timed_out": self.terminal["timed_out"],
            "errors": errors,
            "completion_p50_ms": _rounded(percentile(done, 50)),
            "completion_p99_ms": _rounded(percentile(done, 99)),
        }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


@define
class LoadReport:
    sent: int = 0
    accepted: int = 0
    rejected: Counter[int] = field(factory=Counter)
    errors: Counter[str] = field(factory=Counter)
    terminal: Counter[str] = field(factory=Counter)
    post_latencies_s: list[float] = field(factory=list)
    completion_latencies_s: list[float] = field(factory=list)
    first_send: float = 0.0
    last_completion: float = 0.0
    cpu_s: float = 0.0
    unanswered: int = 0
    commands: dict[str, CommandTally] = field(factory=dict)
    http_status: Counter[int] = field(factory=Counter)
    seconds: list[Second] = field(factory=list)
    streams_followed: int = 0
    streams_completed: int = 0
    stream_events: int = 0
    stream_errors: Counter[str] = field(factory=Counter)
    stream_latencies_s: list[float] = field(factory=list)

    def _second(self, at: float) -> Second:
        index = max(0, int(at - self.first_send))
        while len(self.seconds) <= index:
            self.seconds.append(Second())
        return self.seconds[index]

    def _tally(self, name: str) -> CommandTally:
        tally = self.commands.get(name)
        if tally is None:
            tally = self.commands[name] = CommandTally()
        return tally

    def record_sent(self, name: str, at: float) -> None:
        self.sent += 1
        self._tally(name).sent += 1
        self._second(at).sent += 1

    def record_answer(self, name: str, status: int, started: float, at: float) -> None:
        """A POST's answer: `status` 0 is a connection lost before it came."""
        self.post_latencies_s.append(at - started)
        if status == 0:
            self.errors[CONNECTION_LOST] += 1
            return
        self.http_status[status] += 1
        self._second(at).answered[status] += 1
        tally = self._tally(name)
        if status == 202:
            self.accepted += 1
            tally.accepted += 1
        else:
            self.rejected[status] += 1
            tally.rejected[status] += 1

    def record_terminal(self, name: str, status: str, started: float, at: float) -> None:
        latency = at - started
        self.terminal[status] += 1
        self.completion_latencies_s.append(latency)
        self.last_completion = max(self.last_completion, at)
        tally = self._tally(name)
        tally.terminal[status] += 1
        tally.completion_latencies_s.append(latency)
        second = self._second(at)
        second.terminal[status] += 1
        second.completion_latencies_s.append(latency)

    @property
    def never_finished(self) -> int:
        return self.accepted - sum(self.terminal.values())

    @property
    def error_count(self) -> int:
        """Sent commands that did not complete: refused, lost, unanswered, failed, timed
        out, or still unfinished when the run ended."""
        return (
            sum(self.rejected.values())
            + sum(self.errors.values())
            + self.unanswered
            + self.terminal["failed"]
            + self.terminal["timed_out"]
            + self.never_finished
        )

    @property
    def error_rate(self) -> float:
        return self.error_count / self.sent if self.sent else 0.0

    def completed_per_s(self) -> float:
        elapsed = self.last_completion - self.first_send
        return self.terminal["completed"] / elapsed if elapsed > 0 else 0.0

    def progress_line(self, now: float) -> str:
        """The live line: elapsed time, send rate, completions, errors and p99 so far."""
        elapsed = max(now - self.first_send, 1e-9)
        p99 = percentile(self.completion_latencies_s, 99)
        errors = self.error_count - self.never_finished  # still running is no error yet
        return (
            f"loadtest {elapsed:5.1f}s  sent {self.sent} ({self.sent / elapsed:.0f}/s)  "
            f"completed {self.terminal['completed']}  errors {errors}"
            f"  p99 {'-' if math.isnan(p99) else f'{p99:.1f} ms'}"
        )

    def lines(self) -> list[str]:
        post, done = self.post_latencies_s, self.completion_latencies_s
        lines = [
            f"sent {self.sent}, accepted {self.accepted}, rejected {dict(self.rejected)}, "
            f"client errors {dict(self.errors)}, unanswered when the run ended {self.unanswered}",
            f"terminal {dict(self.terminal)}, never finished {self.never_finished}",
            f"completed commands/s: {self.completed_per_s():.0f}",
            f"POST latency ms: p50 {percentile(post, 50):.1f}  p99 {percentile(post, 99):.1f}",
            "POST-to-completed ms: "
            f"p50 {percentile(done, 50):.1f}  p95 {percentile(done, 95):.1f}  "
            f"p99 {percentile(done, 99):.1f}  max {percentile(done, 100):.1f}",
            f"errors: {self.error_count} of {self.sent} ({self.error_rate:.2%})",
        ]
        if len(self.commands) > 1:
            for name, tally in self.commands.items():
                lines.append(
                    f"  {name}: sent {tally.sent}, terminal {dict(tally.terminal)}, p99 "
                    f"{percentile(tally.completion_latencies_s, 99):.1f} ms"
                )
        if self.streams_followed:
            stream = self.stream_latencies_s
            lines.append(
                f"streams followed {self.streams_followed}, completed {self.streams_completed}, "
                f"events {self.stream_events}, errors {dict(self.stream_errors)}; "
                f"POST-to-stream-end ms p50 {percentile(stream, 50):.1f}  "
                f"p99 {percentile(stream, 99):.1f}"
            )
        lines.append(
            f"load generator CPU: {self.cpu_s:.2f} s "
            f"({self.cpu_s / max(1, self.sent) * 1e6:.0f} us per command)"
        )
        return lines

    def as_json(self) -> dict[str, Any]:
        """Every figure of the run (the `--report` file)."""
        elapsed = self.last_completion - self.first_send
        return {
            "totals": {
                "sent": self.sent,
                "accepted": self.accepted,
                "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
                "client_errors": dict(self.errors),
                "unanswered": self.unanswered,
                "terminal": {status: self.terminal[status] for status in TERMINAL},
                "never_finished": self.never_finished,
                "errors": self.error_count,
                "error_rate": self.error_rate,
                "completed_per_s": round(self.completed_per_s(), 3),
                "elapsed_s": round(max(0.0, elapsed), 3),
                "load_generator_cpu_s": round(self.cpu_s, 3),
            },
            "http_status": {str(code): n for code, n in sorted(self.http_status.items())},
            "commands": {name: tally.as_json() for name, tally in self.commands.items()},
            "latency_ms": {
                "post": latency_summary(self.post_latencies_s),
                "completion": latency_summary(self.completion_latencies_s),
                "stream": latency_summary(self.stream_latencies_s),
            },
            "streams": {
                "followed": self.streams_followed,
                "completed": self.streams_completed,
                "events": self.stream_events,
                "errors": dict(self.stream_errors),
            },
            "timeseries": [second.as_json(index) for index, second in enumerate(self.seconds)],
        }
