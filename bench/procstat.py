"""CPU time of the processes on this machine, from /proc, for the benchmarks' CPU figures."""

from __future__ import annotations

import os
from collections.abc import Callable

Snapshot = dict[tuple[int, str], float]


def cpu_seconds() -> Snapshot:
    """CPU time (user + system) so far of every process, by (pid, name)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: Snapshot = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        totals[(int(entry), name)] = (int(fields[11]) + int(fields[12])) / tick
    return totals


def used(before: Snapshot, after: Snapshot, match: Callable[[tuple[int, str]], bool]) -> float:
    """CPU seconds spent between two snapshots by the processes `match` selects."""
    return sum(after[key] - before.get(key, 0.0) for key in after if match(key))


def of_process(pid: int) -> Callable[[tuple[int, str]], bool]:
    """Selects one process, for `used`."""
    return lambda key: key[0] == pid


def is_postgres(key: tuple[int, str]) -> bool:
    return key[1].startswith("postgres")


def is_redis(key: tuple[int, str]) -> bool:
    return key[1].startswith("redis-server")
