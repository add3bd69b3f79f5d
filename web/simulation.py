"""The running simulation: batch writer, actor system, event hub and the vehicles they serve.

Started after the store and the bus, stopped before them: the actors finish (or time out)
their commands, the writer commits what they reported, then the hub lets go of the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import structlog
from aiohttp import web

from actors.latency import latency_model
from actors.system import ActorSystem
from db.coalesce import CoalescedLookups
from db.events import Event, EventBus
from db.redis_bus import RedisBus
from db.writer import BatchWriter, Publisher
from sovd.errors import SovdError
from sovd.fleet import LatencyRange
from sovd.records import utc_now
from web.commands.pipeline import CommandPipeline
from web.commands.service import CommandService
from web.hub import EventHub
from web.typedefs import (
    actors_key,
    bus_key,
    command_service_key,
    command_stats_key,
    config_key,
    fleet_service_key,
    hub_key,
    metrics_key,
    pipeline_key,
    store_key,
    writer_key,
)
from web.vehicles.fleets import FleetService, read_fleet_file

log = structlog.get_logger(__name__)

INTERRUPTED = "interrupted: the simulator stopped while this command was running"


async def start_fleets(app: web.Application) -> None:
    """The fleets recorded in the store and the `--fleet` file's, else the demo fleet."""
    sim = app[config_key].simulation
    file_config = read_fleet_file(sim.fleet, sim.seed) if sim.fleet else None
    service = FleetService(app[store_key], app[actors_key])
    app[fleet_service_key] = service
    await service.start(file_config, sim.seed)


async def recover_unfinished(app: web.Application) -> None:
    """Commands a previous process accepted but did not finish reach a terminal state:
    queued ones run now, running ones are failed (their vehicle state is gone)."""
    store, actors, pipeline = app[store_key], app[actors_key], app[pipeline_key]
    unfinished = await store.commands.list_unfinished()
    resumed = failed = 0
    for command in unfinished:
        reason = INTERRUPTED
        if command.status == "pending":
            try:
                pipeline.track(command)
                actors.submit(
                    command.vehicle_id,
                    command.command_id,
                    command.command_name,
                    command.command_params,
                )
                resumed += 1
                continue
            except SovdError as exc:
                reason = f"not resumed after restart: {exc}"
        pipeline.fail_unrun(command, reason, utc_now())
        failed += 1
    if unfinished:
        log.info("unfinished_commands_recovered", resumed=resumed, failed=failed)


def publisher(hub: EventHub, bus: EventBus) -> Publisher:
    """Where committed events go. With Redis, this process's own listeners get them at once,
    without the round trip, and Redis carries them to the others (its echo is skipped)."""
    if not isinstance(bus, RedisBus):
        return bus.publish_many  # in-process: the bus is the local delivery
    bus.echo = False

    async def publish(events: Sequence[Event]) -> None:
        hub.deliver(events)
        await bus.publish_many(events)

    return publish


async def simulation_ctx(app: web.Application) -> AsyncIterator[None]:
    config, store, bus, metrics = app[config_key], app[store_key], app[bus_key], app[metrics_key]
    hub = EventHub(bus)
    writer = BatchWriter(
        store,
        publisher(hub, bus),
        max_rows=config.database.write_batch_max_rows,
        on_batch=metrics.write_batch_rows.observe,
    )
    writer.start()
    # In memory, a vehicle's state lives in its actor as long as the process does; a store
    # that outlives the process keeps it with each command's result and hands it back.
    durable = store.kind != "memory"
    pipeline = CommandPipeline(writer, metrics, app[command_stats_key], keep_vehicle_states=durable)
    low_ms, high_ms = config.simulation.latency_ms
    # Actors waking up together read their stored states in one query.
    load_state = (
        CoalescedLookups(store.vehicle_states.get_many, missing=None).get if durable else None
    )
    actors = ActorSystem(
        pipeline,
        latency=latency_model(LatencyRange(low_ms / 1000, high_ms / 1000)),
        mailbox_size=config.simulation.mailbox_size,
        command_deadline_s=config.simulation.command_deadline_s,
        time_scale=config.simulation.time_scale,
        load_state=load_state,
    )
    hub.start()
    app[writer_key], app[pipeline_key], app[actors_key], app[hub_key] = (
        writer,
        pipeline,
        actors,
        hub,
    )
    app[command_service_key] = CommandService(store, writer, actors, pipeline)
    metrics.active_actors.set_function(lambda: actors.busy_count)
    metrics.mailbox_depth.set_function(lambda: actors.queued_count)

    await start_fleets(app)
    if not config.cluster.enabled:  # in a cluster, each partition's new owner recovers it
        await recover_unfinished(app)
    yield
    await actors.stop(timeout=config.server.shutdown_timeout_s)
    pipeline.flush()
    await writer.stop()
    await hub.stop()
