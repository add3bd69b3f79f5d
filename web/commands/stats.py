"""Live command statistics for the dashboard: per-second counts of accepted, completed and
failed commands, failures by reason and POST-to-completed latency, over the last minutes.

The pipeline feeds it as commands begin and end (O(1) each: one bucket, one histogram bin);
`snapshot()` summarises the window on request. One event loop, so no lock."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from attrs import define, field

WINDOW_S = 300
FAILURE_REASONS = ("nrc", "timeout", "offline", "other")
# Latency bins grow by a quarter from 0.25 ms: 60 of them reach past two minutes, and a
# percentile read from them is within 12% of the true value.
_FIRST_BIN_MS = 0.25
_GROWTH = 1.25
_BINS = 60
_LOG_GROWTH = math.log(_GROWTH)
_BIN_UPPER_MS = [_FIRST_BIN_MS * _GROWTH**i for i in range(_BINS)]
_OFFLINE_MARKS = ("disconnected", "connection to the vehicle lost")


def failure_reason(status: str, error_message: str | None) -> str:
    """`nrc` (a negative UDS reply), `offline` (vehicle unreachable, link lost), `timeout`
    (no answer in time) or `other`."""
    message = error_message or ""
    if any(mark in message for mark in _OFFLINE_MARKS):
        return "offline"
    if message.startswith("NRC "):
        return "nrc"
    if status == "timed_out":
        return "timeout"
    return "other"


def latency_bin(seconds: float) -> int:
    ms = seconds * 1000
    if ms <= _FIRST_BIN_MS:
        return 0
    return min(_BINS - 1, math.ceil(math.log(ms / _FIRST_BIN_MS) / _LOG_GROWTH))


def percentile_ms(histogram: list[int], total: int, fraction: float) -> float | None:
    """The latency below which `fraction` of the samples lie, interpolated inside its bin."""
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            lower = _BIN_UPPER_MS[index - 1] if index else 0.0
            upper = _BIN_UPPER_MS[index]
            return round(lower + (upper - lower) * (rank - seen) / count, 3)
        seen += count
    return _BIN_UPPER_MS[-1]


@define
class _Second:
    """What happened in one wall-clock second."""

    second: int
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    reasons: list[int] = field(factory=lambda: [0] * len(FAILURE_REASONS))
    nrcs: dict[str, int] = field(factory=dict)
    latency: list[int] = field(factory=lambda: [0] * _BINS)
    timed: int = 0
    # p50 and p99 of a second that is over (it cannot change any more).
    settled: tuple[float | None, float | None] | None = None

    def percentiles(self, now_second: int) -> tuple[float | None, float | None]:
        if self.settled is not None:
            return self.settled
        found = (
            percentile_ms(self.latency, self.timed, 0.5),
            percentile_ms(self.latency, self.timed, 0.99),
        )
        if self.second < now_second:
            self.settled = found
        return found


class CommandStats:
    def __init__(self, clock: Callable[[], float] = time.time, window_s: int = WINDOW_S) -> None:
        self._clock = clock
        self.window_s = window_s
        self._ring: list[_Second | None] = [None] * window_s

    def _bucket(self) -> _Second:
        second = int(self._clock())
        slot = second % self.window_s
        bucket = self._ring[slot]
        if bucket is None or bucket.second != second:
            bucket = self._ring[slot] = _Second(second)
        return bucket

    def command_accepted(self) -> None:
        self._bucket().accepted += 1

    def command_finished(
        self, status: str, error_message: str | None, latency_s: float | None
    ) -> None:
        """One terminal status; `latency_s` from the POST, when this process accepted it."""
        bucket = self._bucket()
        if status == "completed":
            bucket.completed += 1
        else:
            bucket.failed += 1
            reason = failure_reason(status, error_message)
            bucket.reasons[FAILURE_REASONS.index(reason)] += 1
            if reason == "nrc" and error_message:
                bucket.nrcs[error_message] = bucket.nrcs.get(error_message, 0) + 1
        if latency_s is not None:
            bucket.latency[latency_bin(latency_s)] += 1
            bucket.timed += 1

    def snapshot(self) -> dict[str, Any]:
        """The window as series of one value per second, oldest first, and its totals."""
        now = int(self._clock())
        start = now - self.window_s + 1
        accepted, completed, failed = [], [], []
        p50: list[float | None] = []
        p99: list[float | None] = []
        reasons = [0] * len(FAILURE_REASONS)
        nrcs: dict[str, int] = {}
        latency = [0] * _BINS
        timed = 0
        for second in range(start, now + 1):
            bucket = self._ring[second % self.window_s]
            if bucket is None or bucket.second != second:
                accepted.append(0)
                completed.append(0)
                failed.append(0)
                p50.append(None)
                p99.append(None)
                continue
            accepted.append(bucket.accepted)
            completed.append(bucket.completed)
            failed.append(bucket.failed)
            median, high = bucket.percentiles(now)
            p50.append(median)
            p99.append(high)
            for index, count in enumerate(bucket.reasons):
                reasons[index] += count
            for nrc, count in bucket.nrcs.items():
                nrcs[nrc] = nrcs.get(nrc, 0) + count
            if bucket.timed:
                timed += bucket.timed
                for index, count in enumerate(bucket.latency):
                    if count:
                        latency[index] += count
        return {
            "start": start,
            "seconds": self.window_s,
            "accepted": accepted,
            "completed": completed,
            "failed": failed,
            "p50_ms": p50,
            "p99_ms": p99,
            "totals": {
                "accepted": sum(accepted),
                "completed": sum(completed),
                "failed": sum(failed),
                "p50_ms": percentile_ms(latency, timed, 0.5),
                "p99_ms": percentile_ms(latency, timed, 0.99),
            },
            "failures": dict(zip(FAILURE_REASONS, reasons, strict=True)),
            "nrcs": dict(sorted(nrcs.items(), key=lambda item: -item[1])),
        }
