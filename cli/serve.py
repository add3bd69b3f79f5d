"""`sovd-sim serve`: runs the HTTP + WebSocket server until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web

from cli.exits import EXIT_OK
from cli.options import add_config_option, setting_help
from web import heap
from web.app import create_app
from web.config import Config
from web.server import GuardedRunner
from web.typedefs import lifecycle_key, metrics_key
from web.vehicles.fleets import read_fleet_file

log = structlog.get_logger("sovd_sim")

LINGER_S = 2.0


def latency_bounds(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN,MAX in milliseconds, got {text!r}"
        ) from None
    return low, high


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP + WebSocket server",
        description="Runs the HTTP + WebSocket server until SIGTERM or SIGINT. Each flag "
        "overrides its environment variable, which overrides the --config file.",
    )
    add_config_option(serve)
    serve.add_argument("--host", help=setting_help("address to listen on", "server.host"))
    serve.add_argument("--port", type=int, help=setting_help("port to listen on", "server.port"))
    serve.add_argument(
        "--fleet",
        metavar="FILE",
        help=setting_help(
            "TOML fleet file to spawn at start", "simulation.fleet", "the built-in demo fleet"
        ),
    )
    serve.add_argument(
        "--latency-ms",
        type=latency_bounds,
        metavar="MIN,MAX",
        help=setting_help(
            "simulated vehicle latency bounds in milliseconds", "simulation.latency_ms"
        ),
    )
    serve.add_argument(
        "--cluster",
        action="store_true",
        help=setting_help(
            "share the fleet with other nodes over PostgreSQL and Redis", "cluster.enabled"
        ),
    )
    serve.add_argument(
        "--node-id",
        metavar="NAME",
        help=setting_help(
            "this node's name in the cluster", "cluster.node_id", "host name and process id"
        ),
    )
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help=setting_help("least severe event logged", "logging.level"),
    )
    serve.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        help=setting_help("auto: JSON lines off a terminal, console on one", "logging.format"),
    )


def serve(config: Config) -> int:
    if config.simulation.fleet:  # mistakes in the fleet file stop us before anything starts
        read_fleet_file(config.simulation.fleet, config.simulation.seed)
    asyncio.run(run_server(config))
    return EXIT_OK


async def run_server(config: Config) -> None:
    heap.tune_for_serving()
    app = create_app(config)
    pauses = heap.PauseMetric(app[metrics_key].registry)
    pauses.start()
    runner = GuardedRunner(
        app,
        max_connections=config.server.max_connections,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.server.shutdown_timeout_s,
        keepalive_timeout=config.server.idle_timeout_s,
        # After an answer that left part of the body unread, the rest is drained this long
        # before the connection closes (aiohttp's default, 10 s, lets a stalled client linger).
        lingering_time=LINGER_S,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    heap.freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if config.jwt_secret_generated:
        log.warning(
            "jwt_secret_generated", note="no JWT_SECRET set; tokens are valid for this process only"
        )
    log.info("server_started", url=f"http://{config.server.host}:{config.server.port}")
    await stop.wait()
    app[lifecycle_key].draining = True
    log.info("server_draining", seconds=config.server.drain_seconds)
    if config.server.drain_seconds:
        await asyncio.sleep(config.server.drain_seconds)
    await runner.cleanup()
    pauses.stop()
    log.info("server_stopped")
