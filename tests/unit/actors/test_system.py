"""The actor system: vehicles, routing and validation, parallelism, determinism, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest

from actors import ActorSystem, FixedLatency, RecordingSink, UniformLatency
from actors.sink import ChunkReported, Finished, Started
from sovd.commands import ReadDtcParams, security_key
from sovd.demo import demo_fleets
from sovd.errors import (
    DuplicateVehicle,
    InvalidParams,
    SystemStopping,
    UnknownCommand,
    UnknownEcu,
    UnknownVehicle,
)
from sovd.fleet import FleetSpec, LatencyRange
from sovd.profiles import FailureModes

MakeSystem = Callable[..., ActorSystem]


def test_vehicles_are_listed_in_a_stable_order(golf: FleetSpec) -> None:
    system = ActorSystem(RecordingSink())
    demo = [identity for fleet in demo_fleets() for identity in system.add_fleet(fleet)]

    assert len(system) == 10
    assert list(system) == demo
    assert system.vehicles(offset=2, limit=3) == demo[2:5]
    assert system.vehicles(offset=8) == demo[8:]
    assert demo[0].vehicle_id in system
    assert uuid4() not in system
    assert system.get(demo[3].vehicle_id).identity == demo[3]


def test_adding_a_fleet_twice_adds_nothing(golf: FleetSpec) -> None:
    system = ActorSystem(RecordingSink())
    system.add_fleet(golf)

    with pytest.raises(DuplicateVehicle):
        system.add_fleet(attrs.evolve(golf, count=golf.count + 5))

    assert len(system) == golf.count


async def test_submit_validates_before_queuing(make_system: MakeSystem, golf: FleetSpec) -> None:
    system = make_system()
    vehicle_id = system.add_fleet(golf)[0].vehicle_id

    with pytest.raises(UnknownVehicle):
        system.submit(uuid4(), uuid4(), "ReadDTC", {"ecuAddress": "0x01"})
    with pytest.raises(UnknownCommand):
        system.submit(vehicle_id, uuid4(), "Teleport", {})
    with pytest.raises(InvalidParams) as bad:
        system.submit(vehicle_id, uuid4(), "ReadDTC", {"ecuAddress": 1})
    assert bad.value.errors[0].field == "ecuAddress"
    with pytest.raises(UnknownEcu) as unknown_ecu:
        system.submit(vehicle_id, uuid4(), "ReadDTC", {"ecuAddress": "0x42"})
    assert unknown_ecu.value.errors[0].message.startswith("no ECU at 0x42")

    assert system.busy_count == 0
    assert not system.get(vehicle_id).is_active


def test_validate_checks_without_queuing(golf: FleetSpec) -> None:
    system = ActorSystem(RecordingSink())
    vehicle_id = system.add_fleet(golf)[0].vehicle_id

    params = system.validate(vehicle_id, "ReadDTC", {"ecuAddress": "0x01"})

    assert params == ReadDtcParams("0x01")
    assert system.busy_count == 0
    with pytest.raises(UnknownEcu):
        system.validate(vehicle_id, "ReadDTC", {"ecuAddress": "0x10"})


async def test_different_vehicles_run_in_parallel(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(latency=FixedLatency(0.02))
    vehicles = system.add_fleet(golf)

    for vehicle in vehicles:
        system.submit(vehicle.vehicle_id, uuid4(), "ReadDTC", {"ecuAddress": "0x01"})
    await system.drain()

    kinds = [type(e) for e in sink.events if not isinstance(e, ChunkReported)]
    assert kinds == [Started] * len(vehicles) + [Finished] * len(vehicles)


async def test_fleet_latency_overrides_the_system_default(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(latency=UniformLatency(30.0, 40.0))
    fast = attrs.evolve(golf, latency=LatencyRange(0.0, 0.0))
    vehicle_id = system.add_fleet(fast)[0].vehicle_id

    command_id = uuid4()
    system.submit(vehicle_id, command_id, "ReadDTC", {"ecuAddress": "0x01"})

    async with asyncio.timeout(1.0):
        assert (await sink.wait_finished(command_id)).status == "completed"


SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("ReadDTC", {"ecuAddress": "0x01"}),
    ("ReadDataByID", {"ecuAddress": "0x17", "dataId": "0xF4A6"}),
    ("DiagnosticSessionControl", {"ecuAddress": "0x01", "session": "extended"}),
    ("SecurityAccess", {"ecuAddress": "0x01"}),
    ("ReadDataByID", {"ecuAddress": "0x01", "dataId": "0xF40C"}),
    ("ClearDTC", {"ecuAddress": "0x01"}),
    ("RoutineControl", {"ecuAddress": "0x01", "routineId": "0x0203"}),
]


async def run_script(fleet: FleetSpec, command_ids: list[UUID]) -> list[object]:
    fixed = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    sink = RecordingSink()
    system = ActorSystem(
        sink, latency=UniformLatency(0.0, 0.002), time_scale=0.0, clock=lambda: fixed
    )
    vehicles = system.add_fleet(fleet)[:4]
    ids = iter(command_ids)
    for vehicle in vehicles:
        for name, params in SCRIPT:
            system.submit(vehicle.vehicle_id, next(ids), name, params)
    await system.drain()
    await system.stop()
    return sorted(
        (
            (
                e.command_id.int,
                type(e).__name__,
                getattr(e, "sequence_number", 0),
                getattr(e, "payload", None),
                getattr(e, "status", None),
            )
            for e in sink.events
        ),
        key=lambda event: event[:3],
    )


async def test_same_seed_same_replies(golf: FleetSpec) -> None:
    flaky = attrs.evolve(
        golf, failure_modes=FailureModes(negative_response=0.3, response_pending=0.2)
    )
    command_ids = [uuid4() for _ in range(4 * len(SCRIPT))]

    first = await run_script(flaky, command_ids)
    again = await run_script(attrs.evolve(flaky), command_ids)
    other_seed = await run_script(attrs.evolve(flaky, seed=flaky.seed + 1), command_ids)

    assert first == again
    assert first != other_seed


async def test_unlock_through_the_actor(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = system.add_fleet(golf)[0].vehicle_id
    system.submit(
        vehicle_id,
        uuid4(),
        "DiagnosticSessionControl",
        {"ecuAddress": "0x01", "session": "extended"},
    )
    seed_id = uuid4()
    system.submit(vehicle_id, seed_id, "SecurityAccess", {"ecuAddress": "0x01"})
    await system.drain()
    seed = bytes.fromhex(sink.chunks(seed_id)[0].payload["seed"][2:])

    key_id = uuid4()
    system.submit(
        vehicle_id,
        key_id,
        "SecurityAccess",
        {"ecuAddress": "0x01", "key": "0x" + security_key(seed).hex()},
    )
    finished = await sink.wait_finished(key_id)

    assert finished.status == "completed"
    assert sink.chunks(key_id)[0].payload["unlocked"] is True


async def test_graceful_stop_finishes_the_work_and_refuses_more(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(latency=FixedLatency(0.01))
    vehicles = system.add_fleet(golf)[:5]
    command_ids = []
    for vehicle in vehicles:
        for _ in range(2):
            command_ids.append(uuid4())
            system.submit(vehicle.vehicle_id, command_ids[-1], "ReadDTC", {"ecuAddress": "0x01"})

    await system.stop(timeout=5.0)

    assert system.is_stopping
    assert {sink.finished(c).status for c in command_ids} == {"completed"}  # type: ignore[union-attr]
    with pytest.raises(SystemStopping):
        system.submit(vehicles[0].vehicle_id, uuid4(), "ReadDTC", {"ecuAddress": "0x01"})


async def test_drain_waits_for_everything_submitted(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(latency=UniformLatency(0.0, 0.005))
    vehicles = system.add_fleet(golf)

    for vehicle in vehicles:
        for _ in range(5):
            system.submit(vehicle.vehicle_id, uuid4(), "ReadDTC", {"ecuAddress": "0x01"})
    assert system.queued_count == 5 * len(vehicles)
    await system.drain()

    assert sum(isinstance(e, Finished) for e in sink.events) == 5 * len(vehicles)
    assert system.busy_count == system.queued_count == 0


async def test_an_injected_fault_is_read_back_by_the_next_command(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = system.add_fleet(golf)[0].vehicle_id

    system.store_fault(vehicle_id, 0x02, "P0741", 0x09)
    read_id = uuid4()
    system.submit(vehicle_id, read_id, "ReadDTC", {"ecuAddress": "0x02"})
    await sink.wait_finished(read_id)

    dtcs = sink.chunks(read_id)[0].payload["dtcs"]
    assert [(d["dtcCode"], d["statusByte"]) for d in dtcs] == [("P0741", "0x09")]


def test_fault_injection_names_what_is_wrong(golf: FleetSpec) -> None:
    system = ActorSystem(RecordingSink())
    vehicle_id = system.add_fleet(golf)[0].vehicle_id

    with pytest.raises(UnknownVehicle):
        system.store_fault(uuid4(), 0x01, "P0420")
    with pytest.raises(UnknownEcu):
        system.store_fault(vehicle_id, 0x42, "P0420")
    with pytest.raises(ValueError, match="SAE J2012"):
        system.store_fault(vehicle_id, 0x01, "X0420")
    with pytest.raises(ValueError, match="one byte"):
        system.store_fault(vehicle_id, 0x01, "P0420", 0x100)


async def test_set_latency_applies_to_every_vehicle_and_later_fleets(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    slow = FixedLatency(30.0)
    system = make_system(latency=slow, command_deadline_s=60.0)
    own = attrs.evolve(golf, name="own", vin_prefix="WVWZZZ1K", latency=LatencyRange(30.0, 30.0))
    vehicles = [system.add_fleet(golf)[0].vehicle_id, system.add_fleet(own)[0].vehicle_id]

    system.set_latency(FixedLatency(0.0))
    system.add_fleet(attrs.evolve(golf, name="later", vin_prefix="WVWZZZ2K"))
    vehicles.append(system.vehicles()[-1].vehicle_id)
    command_ids = []
    for vehicle_id in vehicles:
        command_ids.append(uuid4())
        system.submit(vehicle_id, command_ids[-1], "ReadDTC", {"ecuAddress": "0x01"})

    async with asyncio.timeout(2.0):
        finished = [await sink.wait_finished(command_id) for command_id in command_ids]
    assert [f.status for f in finished] == ["completed"] * 3


async def test_a_gated_command_that_changes_the_vehicle_waits_and_holds_the_queue(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    """Queued while its row is being stored, a ClearDTC waits for its gate, and the read
    behind it waits for the ClearDTC; other vehicles go on."""
    system = make_system()
    vehicle_id, other_id = (v.vehicle_id for v in system.add_fleet(golf)[:2])
    gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    clear_id, read_id, elsewhere_id = uuid4(), uuid4(), uuid4()
    params = {"ecuAddress": "0x01"}
    system.submit(vehicle_id, clear_id, "ClearDTC", params, gate=gate)
    system.submit(vehicle_id, read_id, "ReadDTC", params)
    system.submit(other_id, elsewhere_id, "ReadDTC", params)
    await sink.wait_finished(elsewhere_id)
    assert sink.for_command(clear_id) == [] and sink.for_command(read_id) == []

    gate.set_result(True)
    await sink.wait_finished(read_id)
    assert sink.finished(clear_id) is not None
    assert sink.chunks(read_id)[0].payload["dtcs"] == []


async def test_a_refused_command_that_changes_the_vehicle_never_runs(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = system.add_fleet(golf)[0].vehicle_id
    gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    clear_id, read_id = uuid4(), uuid4()
    system.submit(vehicle_id, clear_id, "ClearDTC", {"ecuAddress": "0x01"}, gate=gate)
    system.submit(vehicle_id, read_id, "ReadDTC", {"ecuAddress": "0x01"})
    gate.set_result(False)
    await sink.wait_finished(read_id)

    assert sink.for_command(clear_id) == []
    dtcs = sink.chunks(read_id)[0].payload["dtcs"]
    assert {d["dtcCode"] for d in dtcs} == {"P0420", "P0171"}


async def test_a_gated_read_runs_before_its_gate_opens(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    """A read changes nothing, so it runs while its row is still being stored."""
    system = make_system()
    vehicle_id = system.add_fleet(golf)[0].vehicle_id
    gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    read_id = uuid4()
    system.submit(vehicle_id, read_id, "ReadDTC", {"ecuAddress": "0x01"}, gate=gate)
    finished = await sink.wait_finished(read_id)

    assert finished.status == "completed" and not gate.done()
