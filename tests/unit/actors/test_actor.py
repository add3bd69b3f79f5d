"""One vehicle's actor: lifecycle reporting, ordering, deadline, supervision, mailbox,
lazy activation and passivation, and a client halting a command."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest

from actors import ActorSystem, FixedLatency, RecordingSink, UniformLatency
from actors.actor import (
    HALT_REFUSED,
    HALTED_BEFORE_START,
    STOPPED_BEFORE_START,
    STOPPED_WHILE_RUNNING,
)
from actors.sink import ChunkReported, Finished, Started
from sovd.commands import COMMANDS, ReadDataParams
from sovd.errors import VehicleBusy
from sovd.fleet import FleetSpec
from sovd.profiles import FailureModes
from sovd.registry import Reply
from sovd.state import VehicleState
from sovd.uds import Service

MakeSystem = Callable[..., ActorSystem]


def submit(system: ActorSystem, vehicle_id: UUID, name: str, **params: Any) -> UUID:
    command_id = uuid4()
    system.submit(vehicle_id, command_id, name, params)
    return command_id


def first_vehicle(system: ActorSystem, fleet: FleetSpec) -> UUID:
    return system.add_fleet(fleet)[0].vehicle_id


async def test_lifecycle_is_started_chunks_finished(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = first_vehicle(system, golf)

    command_id = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    finished = await sink.wait_finished(command_id)

    started, chunk, done = sink.for_command(command_id)
    assert isinstance(started, Started)
    assert isinstance(chunk, ChunkReported)
    assert (chunk.sequence_number, chunk.is_final) == (1, True)
    assert [dtc["dtcCode"] for dtc in chunk.payload["dtcs"]] == ["P0171", "P0420"]
    assert done == finished
    assert (finished.status, finished.error_message) == ("completed", None)
    assert started.vehicle_id == chunk.vehicle_id == finished.vehicle_id == vehicle_id
    assert started.at <= chunk.at <= finished.at


async def test_clear_dtc_is_seen_by_the_next_read(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = first_vehicle(system, golf)

    submit(system, vehicle_id, "ClearDTC", ecuAddress="0x01")
    read = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()

    (chunk,) = sink.chunks(read)
    assert chunk.payload["dtcs"] == []


async def test_streaming_chunks_are_numbered_from_one(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(time_scale=0.001)
    vehicle_id = first_vehicle(system, golf)

    command_id = submit(system, vehicle_id, "RoutineControl", ecuAddress="0x01", routineId="0x0203")
    finished = await sink.wait_finished(command_id)

    chunks = sink.chunks(command_id)
    assert [c.sequence_number for c in chunks] == [1, 2, 3, 4, 5]
    assert [c.is_final for c in chunks] == [False, False, False, False, True]
    assert [c.payload["progress"] for c in chunks] == [0, 25, 50, 75, 100]
    assert finished.status == "completed"


async def test_negative_reply_is_a_final_chunk_and_a_failed_command(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    vehicle_id = first_vehicle(system, golf)

    command_id = submit(system, vehicle_id, "ReadDataByID", ecuAddress="0x01", dataId="0x1234")
    finished = await sink.wait_finished(command_id)

    (chunk,) = sink.chunks(command_id)
    assert chunk.is_final
    assert chunk.payload["udsResponse"] == "7F2231"
    assert (finished.status, finished.error_message) == ("failed", "NRC 0x31 requestOutOfRange")


async def test_response_pending_then_success(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    fleet = attrs.evolve(golf, failure_modes=FailureModes(response_pending=1.0))
    vehicle_id = first_vehicle(system, fleet)

    command_id = submit(system, vehicle_id, "ReadDataByID", ecuAddress="0x01", dataId="0xF190")
    finished = await sink.wait_finished(command_id)

    pending, answer = sink.chunks(command_id)
    assert pending.payload["udsResponse"] == "7F2278"
    assert (pending.is_final, answer.is_final) == (False, True)
    assert finished.status == "completed"


async def test_dropped_connection_fails_without_a_chunk(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system()
    fleet = attrs.evolve(golf, failure_modes=FailureModes(connection_drop=1.0))
    vehicle_id = first_vehicle(system, fleet)

    command_id = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    finished = await sink.wait_finished(command_id)

    assert sink.chunks(command_id) == []
    assert (finished.status, finished.error_message) == (
        "failed",
        "connection to the vehicle lost",
    )


async def test_commands_to_one_vehicle_run_one_at_a_time_in_order(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(latency=UniformLatency(0.0, 0.003))
    vehicle_id = first_vehicle(system, golf)
    names = ["ReadDTC", "ClearDTC", "ReadDTC", "ECUReset"] * 8

    command_ids = [submit(system, vehicle_id, name, ecuAddress="0x01") for name in names]
    await system.drain()

    lifecycle = [
        (type(e).__name__, e.command_id) for e in sink.events if not isinstance(e, ChunkReported)
    ]
    expected = [(kind, cid) for cid in command_ids for kind in ("Started", "Finished")]
    assert lifecycle == expected


async def test_deadline_ends_a_silent_vehicle_timed_out(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(command_deadline_s=0.05)
    fleet = attrs.evolve(golf, failure_modes=FailureModes(timeout=1.0))
    vehicle_id = first_vehicle(system, fleet)

    command_id = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    finished = await sink.wait_finished(command_id)

    assert (finished.status, finished.error_message) == ("timed_out", "no reply within 0.05 s")
    assert sink.chunks(command_id) == []


async def test_deadline_applies_to_latency(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(command_deadline_s=0.02, latency=FixedLatency(60.0))
    vehicle_id = first_vehicle(system, golf)

    finished = await sink.wait_finished(submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01"))

    assert finished.status == "timed_out"


def hanging(vehicle: VehicleState, params: ReadDataParams) -> Iterator[Reply]:
    yield Reply({"step": "accepted"}, b"\x71\x01")
    yield Reply({"step": "never"}, b"\x71\x03", after_s=3600.0)


async def test_deadline_stops_a_hanging_handler_and_the_actor_keeps_serving(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    registry = COMMANDS.copy()
    registry.command(
        "Hang", params=ReadDataParams, service=Service.ROUTINE_CONTROL, description="hangs"
    )(hanging)
    system = make_system(registry=registry, command_deadline_s=0.05, time_scale=1.0)
    vehicle_id = first_vehicle(system, golf)

    hung = submit(system, vehicle_id, "Hang", ecuAddress="0x01", dataId="0xF190")
    after = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()

    assert sink.finished(hung).status == "timed_out"  # type: ignore[union-attr]
    assert [c.payload["step"] for c in sink.chunks(hung)] == ["accepted"]
    assert sink.finished(after).status == "completed"  # type: ignore[union-attr]


def crashing(vehicle: VehicleState, params: ReadDataParams) -> Iterator[Reply]:
    raise RuntimeError("simulated bug")
    yield


async def test_a_crashing_handler_fails_only_its_command(
    make_system: MakeSystem,
    sink: RecordingSink,
    golf: FleetSpec,
    log_events: list[dict[str, Any]],
) -> None:
    registry = COMMANDS.copy()
    registry.command(
        "Crash", params=ReadDataParams, service=Service.ROUTINE_CONTROL, description="crashes"
    )(crashing)
    system = make_system(registry=registry)
    vehicle_id = first_vehicle(system, golf)

    crashed = submit(system, vehicle_id, "Crash", ecuAddress="0x01", dataId="0xF190")
    after = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()

    failed = sink.finished(crashed)
    assert failed is not None
    assert (failed.status, failed.error_message) == ("failed", "internal error while running Crash")
    assert sink.finished(after).status == "completed"  # type: ignore[union-attr]
    (crash_log,) = [e for e in log_events if e["event"] == "handler_crashed"]
    assert crash_log["command_id"] == crashed
    assert crash_log["vehicle_id"] == vehicle_id
    assert crash_log["command_name"] == "Crash"
    assert crash_log["log_level"] == "error"
    assert crash_log["exc_info"] is True


async def test_context_is_bound_per_command_and_cleared_after_the_turn(
    make_system: MakeSystem, golf: FleetSpec, log_events: list[dict[str, Any]]
) -> None:
    system = make_system()
    vehicle_id = first_vehicle(system, golf)

    first = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    second = submit(system, vehicle_id, "ReadDataByID", ecuAddress="0x01", dataId="0x1234")
    await system.drain()

    started = [e for e in log_events if e["event"] == "command_started"]
    assert [e["command_id"] for e in started] == [first, second]
    failed = next(e for e in log_events if e["event"] == "command_failed")
    assert failed["command_id"] == second
    assert failed["error_message"] == "NRC 0x31 requestOutOfRange"
    assert structlog_context() == {}


def structlog_context() -> dict[str, Any]:
    import structlog

    return structlog.contextvars.get_contextvars()


class FailingSink(RecordingSink):
    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        raise ConnectionError("database down")

    async def command_chunk(self, *args: Any) -> None:
        raise ConnectionError("database down")


async def test_a_failing_sink_does_not_stop_the_actor(
    make_system: MakeSystem, golf: FleetSpec, log_events: list[dict[str, Any]]
) -> None:
    failing = FailingSink()
    system = make_system(sink=failing)
    vehicle_id = first_vehicle(system, golf)

    first = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    second = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()

    assert failing.finished(first).status == "completed"  # type: ignore[union-attr]
    assert failing.finished(second).status == "completed"  # type: ignore[union-attr]
    calls = [e["sink_call"] for e in log_events if e["event"] == "sink_failed"]
    assert calls == ["command_started", "command_chunk"] * 2


async def test_full_mailbox_raises_vehicle_busy(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(mailbox_size=2)
    vehicle_id = first_vehicle(system, golf)
    accepted = [submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01") for _ in range(2)]

    with pytest.raises(VehicleBusy) as caught:
        submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")

    assert caught.value.vehicle_id == vehicle_id
    assert caught.value.retry_after_s >= 1.0
    await system.drain()
    assert [sink.finished(c).status for c in accepted] == ["completed", "completed"]  # type: ignore[union-attr]
    submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")  # room again


async def test_idle_vehicles_have_no_task_no_queue_and_no_state(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    system = make_system()
    identities = system.add_fleet(golf)

    actors = [system.get(identity.vehicle_id) for identity in identities]
    assert system.active_count == system.busy_count == 0
    assert all(not a.is_active and a.state is None for a in actors)
    assert system.actor_status(identities[0].vehicle_id).state == "idle"

    submit(system, identities[0].vehicle_id, "ReadDTC", ecuAddress="0x01")
    assert system.active_count == system.busy_count == 1
    assert actors[0].is_active
    assert actors[0].state is None, "state is materialized by the actor's task, not by submit"
    await system.drain()
    assert actors[0].state is not None
    assert system.busy_count == 0
    assert all(a.state is None for a in actors[1:])


async def test_passivation_keeps_what_the_vehicle_remembers(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(passivate_after_s=0)
    vehicle_id = first_vehicle(system, golf)
    actor = system.get(vehicle_id)

    submit(system, vehicle_id, "DiagnosticSessionControl", ecuAddress="0x01", session="extended")
    submit(system, vehicle_id, "ClearDTC", ecuAddress="0x01")
    await system.drain()
    assert not actor.is_active
    assert system.actor_status(vehicle_id).session["0x01"] == "default", "S3 timeout"

    read = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()
    (chunk,) = sink.chunks(read)
    assert chunk.payload["dtcs"] == []


async def test_passivation_after_a_quiet_spell(
    make_system: MakeSystem, golf: FleetSpec, log_watch: Any
) -> None:
    system = make_system(passivate_after_s=0.02)
    vehicle_id = first_vehicle(system, golf)
    actor = system.get(vehicle_id)

    submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()
    assert actor.is_active

    await log_watch.wait_for("actor_passivated")
    assert not actor.is_active
    assert system.active_count == 0
    assert actor.state is not None


async def test_a_command_in_the_quiet_spell_starts_it_again(
    make_system: MakeSystem, golf: FleetSpec, log_watch: Any
) -> None:
    """The passivation timer armed after the first command fires while the vehicle has been
    quiet for less than the delay (a second command came meanwhile): it waits out the rest."""
    after = 0.2
    system = make_system(passivate_after_s=after)
    vehicle_id = first_vehicle(system, golf)
    actor = system.get(vehicle_id)
    loop = asyncio.get_running_loop()

    submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()
    await asyncio.sleep(after / 2)  # simulated quiet time, not a wait for an event
    submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await system.drain()
    last_command_done = loop.time()

    await log_watch.wait_for("actor_passivated")
    assert loop.time() - last_command_done >= after * 0.95
    assert not actor.is_active


async def test_new_work_cancels_a_pending_passivation(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    system = make_system(passivate_after_s=60.0)
    vehicle_id = first_vehicle(system, golf)
    actor = system.get(vehicle_id)

    for _ in range(3):
        submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
        await system.drain()

    assert actor.is_active
    assert system.active_count == 1


async def test_status_shows_the_command_in_flight(golf: FleetSpec, make_system: MakeSystem) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()

    class GatedSink(RecordingSink):
        async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
            entered.set()
            await gate.wait()
            await super().command_started(command_id, vehicle_id, at)

    system = make_system(sink=GatedSink())
    vehicle_id = first_vehicle(system, golf)
    first = submit(
        system, vehicle_id, "DiagnosticSessionControl", ecuAddress="0x01", session="extended"
    )
    submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await entered.wait()

    status = system.actor_status(vehicle_id)
    assert (status.state, status.mailbox_depth, status.in_flight_command_id) == ("active", 1, first)
    assert status.as_dict()["in_flight_command_id"] == str(first)
    assert status.session["0x01"] == "default"

    gate.set()
    await system.drain()
    status = system.actor_status(vehicle_id)
    assert (status.mailbox_depth, status.in_flight_command_id) == (0, None)
    assert status.session["0x01"] == "extended"


async def test_stop_past_its_bound_times_out_running_and_queued_commands(
    make_system: MakeSystem, sink: RecordingSink, golf: FleetSpec
) -> None:
    system = make_system(command_deadline_s=30.0)
    fleet = attrs.evolve(golf, failure_modes=FailureModes(timeout=1.0))
    vehicle_id = first_vehicle(system, fleet)
    running, *queued = [submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01") for _ in range(3)]

    async with asyncio.timeout(2.0):
        await system.stop(timeout=0.05)

    assert [type(e) for e in sink.for_command(running)] == [Started, Finished]
    assert sink.finished(running) == Finished(
        running,
        vehicle_id,
        "timed_out",
        STOPPED_WHILE_RUNNING,
        sink.finished(running).at,  # type: ignore[union-attr]
    )
    for command_id in queued:
        (finished,) = sink.for_command(command_id)
        assert isinstance(finished, Finished)
        assert (finished.status, finished.error_message) == ("timed_out", STOPPED_BEFORE_START)
    assert system.busy_count == 0


class ChunkWatch(RecordingSink):
    """Lets a test await the chunk with a given sequence number."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[UUID, int], asyncio.Event] = {}

    def _event(self, command_id: UUID, sequence_number: int) -> asyncio.Event:
        return self._seen.setdefault((command_id, sequence_number), asyncio.Event())

    async def command_chunk(
        self,
        command_id: UUID,
        vehicle_id: UUID,
        sequence_number: int,
        payload: dict[str, Any],
        is_final: bool,
        at: datetime,
    ) -> None:
        await super().command_chunk(command_id, vehicle_id, sequence_number, payload, is_final, at)
        self._event(command_id, sequence_number).set()

    async def wait_chunk(self, command_id: UUID, sequence_number: int) -> None:
        async with asyncio.timeout(2.0):
            await self._event(command_id, sequence_number).wait()


class GatedStart(RecordingSink):
    """Holds each command at its start until `gate` is set: the command is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered = asyncio.Event(), asyncio.Event()

    async def command_started(self, command_id: UUID, vehicle_id: UUID, at: datetime) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().command_started(command_id, vehicle_id, at)


def self_test(system: ActorSystem, vehicle_id: UUID) -> UUID:
    return submit(system, vehicle_id, "RoutineControl", ecuAddress="0x01", routineId="0x0203")


async def test_halting_a_running_self_test_ends_it_with_the_stop_reply(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    sink = ChunkWatch()
    # A step of the self-test takes a simulated second: far longer than the test.
    system = make_system(sink=sink, time_scale=10.0)
    vehicle_id = first_vehicle(system, golf)
    command_id = self_test(system, vehicle_id)
    await sink.wait_chunk(command_id, 1)

    assert system.halt(vehicle_id, command_id) == "halting"
    async with asyncio.timeout(2.0):
        finished = await sink.wait_finished(command_id)

    chunks = sink.chunks(command_id)
    assert [c.sequence_number for c in chunks] == [1, 2]
    assert [c.is_final for c in chunks] == [False, True]
    assert [c.payload.get("progress") for c in chunks] == [0, None]
    stop = chunks[-1].payload
    assert (stop["state"], stop["routineId"]) == ("stopped", "0x0203")
    assert stop["udsResponse"] == "7102020300"
    assert (finished.status, finished.error_message) == ("completed", None)


async def test_halting_a_queued_command_ends_it_failed_without_running(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    sink = ChunkWatch()
    system = make_system(sink=sink, time_scale=10.0)
    vehicle_id = first_vehicle(system, golf)
    running = self_test(system, vehicle_id)
    queued = self_test(system, vehicle_id)
    await sink.wait_chunk(running, 1)

    assert system.halt(vehicle_id, queued) == "dropped"
    assert system.halt(vehicle_id, running) == "halting"
    async with asyncio.timeout(2.0):
        await system.drain()

    (finished,) = sink.for_command(queued)
    assert isinstance(finished, Finished)
    assert (finished.status, finished.error_message) == ("failed", HALTED_BEFORE_START)
    assert sink.finished(running).status == "completed"  # type: ignore[union-attr]


async def test_a_command_without_a_stop_cannot_be_halted(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    sink = GatedStart()
    system = make_system(sink=sink)
    vehicle_id = first_vehicle(system, golf)
    command_id = submit(system, vehicle_id, "ReadDTC", ecuAddress="0x01")
    await sink.entered.wait()

    assert system.halt(vehicle_id, command_id) == "not_stoppable"
    sink.gate.set()
    finished = await sink.wait_finished(command_id)

    assert finished.status == "completed"
    assert [c.is_final for c in sink.chunks(command_id)] == [True]
    assert system.halt(vehicle_id, command_id) == "unknown"


async def test_a_routine_the_ecu_refuses_to_stop_is_dropped_failed(
    make_system: MakeSystem, golf: FleetSpec
) -> None:
    sink = GatedStart()
    system = make_system(sink=sink)
    vehicle_id = first_vehicle(system, golf)
    command_id = submit(system, vehicle_id, "RoutineControl", ecuAddress="0x01", routineId="0xFF01")
    await sink.entered.wait()

    assert system.halt(vehicle_id, command_id) == "halting"
    sink.gate.set()
    finished = await sink.wait_finished(command_id)

    assert (finished.status, finished.error_message) == ("failed", HALT_REFUSED)
    assert sink.chunks(command_id) == []
