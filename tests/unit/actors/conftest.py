from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest
import structlog

from actors import ActorSystem, FixedLatency, RecordingSink
from sovd.demo import VW_GOLF
from sovd.fleet import FleetSpec
from sovd.profiles import DtcPoolEntry

MakeSystem = Callable[..., ActorSystem]


@pytest.fixture
def golf() -> FleetSpec:
    """Golfs with a known fault memory: P0420 and P0171 on the engine ECU (0x01)."""
    profile = attrs.evolve(
        VW_GOLF,
        name="test-golf",
        dtc_pool=(DtcPoolEntry(0x01, "P0420", 1.0, 0x2F), DtcPoolEntry(0x01, "P0171", 1.0, 0x24)),
    )
    return FleetSpec("golf", profile, 20, seed=11)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def make_system(sink: RecordingSink) -> AsyncIterator[MakeSystem]:
    """Builds systems with zero latency and instant simulated time; stops them afterwards."""
    made: list[ActorSystem] = []

    def make(**options: Any) -> ActorSystem:
        settings: dict[str, Any] = {
            "latency": FixedLatency(0.0),
            "time_scale": 0.0,
            "passivate_after_s": None,
        }
        settings.update(options)
        system = ActorSystem(settings.pop("sink", sink), **settings)
        made.append(system)
        return system

    yield make
    for system in made:
        await system.stop(timeout=1.0)


class LogWatch:
    """structlog events as dicts (context variables merged in), and a way to await one."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._seen: dict[str, asyncio.Event] = {}

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> Any:
        self.entries.append({**event_dict, "log_level": method})
        self._event(event_dict["event"]).set()
        raise structlog.DropEvent

    def _event(self, name: str) -> asyncio.Event:
        return self._seen.setdefault(name, asyncio.Event())

    async def wait_for(self, name: str) -> None:
        async with asyncio.timeout(2.0):
            await self._event(name).wait()


@pytest.fixture
def log_watch() -> Iterator[LogWatch]:
    previous = structlog.get_config()
    watch = LogWatch()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, watch])
    try:
        yield watch
    finally:
        structlog.configure(**previous)


@pytest.fixture
def log_events(log_watch: LogWatch) -> list[dict[str, Any]]:
    return log_watch.entries
