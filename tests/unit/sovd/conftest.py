from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from sovd.commands import COMMANDS
from sovd.demo import VW_GOLF
from sovd.execution import Chunk, Step, run_command
from sovd.fleet import FleetSpec, build_identity
from sovd.profiles import DtcPoolEntry, VehicleProfile
from sovd.state import VehicleState, materialize_state

RunCommand = Callable[..., list[Step]]


@pytest.fixture
def now() -> datetime:
    return datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture
def profile() -> VehicleProfile:
    """The demo Golf with a fault memory we know: every pool entry is present."""
    return attrs.evolve(
        VW_GOLF,
        name="test-golf",
        dtc_pool=(
            DtcPoolEntry(0x01, "P0420", 1.0, 0x2F),
            DtcPoolEntry(0x01, "P0171", 1.0, 0x24),
            DtcPoolEntry(0x03, "C0035", 1.0, 0x28),
            DtcPoolEntry(0x19, "U0121", 1.0, 0xAF),
        ),
    )


@pytest.fixture
def fleet(profile: VehicleProfile) -> FleetSpec:
    return FleetSpec("test", profile, 5, seed=42)


@pytest.fixture
def vehicle(fleet: FleetSpec, now: datetime) -> VehicleState:
    return materialize_state(build_identity(fleet, 0), now)


@pytest.fixture
def run(vehicle: VehicleState, now: datetime) -> RunCommand:
    """Runs a built-in command on `vehicle` from wire params: `run("ReadDTC", ecuAddress=...)`."""

    def run_by_name(name: str, at: datetime | None = None, **params: Any) -> list[Step]:
        command = COMMANDS.get(name)
        return run_command(command, command.parse(params), vehicle, at or now)

    return run_by_name


@pytest.fixture
def run_one(run: RunCommand) -> Callable[..., Chunk]:
    """Like `run`, for commands that answer with exactly one chunk."""

    def run_single(name: str, **params: Any) -> Chunk:
        steps = run(name, **params)
        assert len(steps) == 1
        (step,) = steps
        assert isinstance(step, Chunk)
        assert step.is_final
        return step

    return run_single
