"""What a fleet's configuration changes in its actors: reachability, deadline, mailbox
size, latency model; and removing a fleet."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest

from actors import ActorSystem, RecordingSink
from actors.actor import INTERMITTENT_LOSS
from actors.latency import FixedLatency, LogNormalLatency, NormalLatency, latency_model
from sovd.errors import UnknownVehicle, VehicleBusy
from sovd.fleet import FleetSpec, LatencyRange, VehicleIdentity
from sovd.profiles import Connectivity

MakeSystem = Callable[..., ActorSystem]


def submit(system: ActorSystem, vehicle_id: UUID, name: str = "ReadDTC", **params: Any) -> UUID:
    command_id = uuid4()
    system.submit(vehicle_id, command_id, name, params or {"ecuAddress": "0x01"})
    return command_id


def with_status(vehicles: list[VehicleIdentity], status: str) -> VehicleIdentity:
    return next(v for v in vehicles if v.connection_status == status)


async def test_a_disconnected_vehicle_fails_commands_at_once(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    fleet = attrs.evolve(golf, count=50, connectivity=Connectivity(disconnected=0.5))
    system = make_system()
    offline = with_status(system.add_fleet(fleet), "disconnected")

    finished = await sink.wait_finished(submit(system, offline.vehicle_id))

    assert finished.status == "failed"
    assert finished.error_message == (
        f"vehicle {offline.vin} is disconnected: the command could not be delivered"
    )
    assert sink.chunks(finished.command_id) == []


async def test_a_disconnected_vehicle_can_make_commands_wait_for_the_deadline(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    reach = Connectivity(disconnected=0.5, when_disconnected="wait")
    fleet = attrs.evolve(golf, count=50, connectivity=reach, command_deadline_s=0.05)
    system = make_system()
    offline = with_status(system.add_fleet(fleet), "disconnected")

    finished = await sink.wait_finished(submit(system, offline.vehicle_id))

    assert finished.status == "timed_out"
    assert finished.error_message == (
        f"vehicle {offline.vin} stayed disconnected: no reply within 0.05 s"
    )


async def test_an_intermittent_vehicle_loses_some_commands(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    reach = Connectivity(intermittent=0.5, intermittent_loss=0.5)
    fleet = attrs.evolve(golf, count=50, connectivity=reach)
    system = make_system()
    patchy = with_status(system.add_fleet(fleet), "intermittent")

    commands = [submit(system, patchy.vehicle_id) for _ in range(40)]
    await system.drain()

    outcomes = [(await sink.wait_finished(c)).error_message for c in commands]
    assert 5 <= outcomes.count(INTERMITTENT_LOSS) <= 35
    assert outcomes.count(None) == 40 - outcomes.count(INTERMITTENT_LOSS)


async def test_connected_vehicles_are_unaffected(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    fleet = attrs.evolve(golf, count=50, connectivity=Connectivity(disconnected=0.3))
    system = make_system()
    online = with_status(system.add_fleet(fleet), "connected")

    finished = await sink.wait_finished(submit(system, online.vehicle_id))

    assert finished.status == "completed"


async def test_a_fleet_deadline_overrides_the_system_one(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(command_deadline_s=30.0, latency=FixedLatency(60.0))
    vehicle = system.add_fleet(attrs.evolve(golf, command_deadline_s=0.02))[0]

    finished = await sink.wait_finished(submit(system, vehicle.vehicle_id))

    assert (finished.status, finished.error_message) == ("timed_out", "no reply within 0.02 s")
    assert system.get(vehicle.vehicle_id).command_deadline_s == 0.02


async def test_a_fleet_mailbox_size_overrides_the_system_one(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    system = make_system(mailbox_size=64, latency=FixedLatency(60.0), command_deadline_s=0.01)
    vehicle = system.add_fleet(attrs.evolve(golf, mailbox_size=2))[0]

    submit(system, vehicle.vehicle_id)
    submit(system, vehicle.vehicle_id)
    with pytest.raises(VehicleBusy) as busy:
        submit(system, vehicle.vehicle_id)

    assert busy.value.mailbox_size == 2


async def test_a_fleet_latency_range_becomes_its_model(golf: FleetSpec) -> None:
    assert latency_model(LatencyRange(0.1, 0.1)) == FixedLatency(0.1)
    normal = latency_model(LatencyRange(0.01, 0.5, "normal", 0.1, 0.05))
    tail = latency_model(LatencyRange(0.01, 2.0, "lognormal", 0.1, 0.8))
    assert isinstance(normal, NormalLatency) and isinstance(tail, LogNormalLatency)
    rng = random.Random(1)
    samples = [tail.sample(rng) for _ in range(2000)]
    assert min(samples) >= 0.01 and max(samples) <= 2.0
    assert 0.08 <= sorted(samples)[1000] <= 0.12  # the median
    assert all(0.01 <= normal.sample(rng) <= 0.5 for _ in range(200))


async def test_removing_a_fleet_stops_routing_to_its_vehicles(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    system = make_system()
    gone = system.add_fleet(golf)
    kept = system.add_fleet(attrs.evolve(golf, name="other"))

    assert system.remove_fleet("golf") == golf.count

    assert len(system) == len(kept) and system.vehicles() == kept
    with pytest.raises(UnknownVehicle):
        submit(system, gone[0].vehicle_id)
    assert system.remove_fleet("golf") == 0


async def test_busy_vehicles_are_counted_per_fleet(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    system = make_system(latency=FixedLatency(60.0), command_deadline_s=0.01)
    vehicles = system.add_fleet(golf)

    submit(system, vehicles[0].vehicle_id)
    submit(system, vehicles[1].vehicle_id)

    assert system.busy_in_fleet("golf") == 2
    assert system.busy_in_fleet("other") == 0
