"""The `sovd-sim` command line: parses, builds the configuration once and calls in."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web

from db.migrate import migrate
from db.postgres import redact_dsn
from db.repositories import StoreUnavailable
from loadtest.run import LoadPlan, run_load
from sovd.fleet_config import InvalidFleetConfig
from web import heap
from web.app import SchemaOutdated, create_app
from web.auth.accounts import add_user_commands, run_user_add
from web.config import Config, ConfigError, build_config, load_config
from web.logs import configure_logging
from web.typedefs import lifecycle_key, metrics_key
from web.vehicles.cli import add_fleet_commands, run_fleet_command
from web.vehicles.fleets import FleetConflict, read_fleet_file

log = structlog.get_logger("sovd_sim")

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1


class CliUsageError(Exception):
    pass


def _latency(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN,MAX in milliseconds, got {text!r}"
        ) from None
    return low, high


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sovd-sim", description="Simulated vehicle fleets behind a SOVD-style backend."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP + WebSocket server")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--fleet", help="TOML fleet file to spawn at start")
    serve.add_argument(
        "--latency-ms", type=_latency, metavar="MIN,MAX", help="simulated vehicle latency bounds"
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["auto", "json", "console"])

    database = commands.add_parser("db", help="database administration")
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate_cmd = db_commands.add_parser("migrate", help="apply pending SQL migrations")
    migrate_cmd.add_argument("--config", type=Path, help="TOML configuration file")
    migrate_cmd.add_argument("--database-url", help="PostgreSQL DSN (default: DATABASE_URL)")
    add_user_commands(commands)
    add_fleet_commands(commands)
    add_loadtest_command(commands)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "server.host": getattr(args, "host", None),
        "server.port": getattr(args, "port", None),
        "simulation.fleet": getattr(args, "fleet", None),
        "simulation.latency_ms": getattr(args, "latency_ms", None),
        "logging.level": getattr(args, "log_level", None),
        "logging.format": getattr(args, "log_format", None),
        "database.url": getattr(args, "database_url", None),
    }


async def run_server(config: Config) -> None:
    heap.tune_for_serving()
    app = create_app(config)
    pauses = heap.PauseMetric(app[metrics_key].registry)
    pauses.start()
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.server.shutdown_timeout_s,
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


async def run_migrations(config: Config) -> int:
    if config.database.url is None:
        raise CliUsageError("db migrate needs a database: set DATABASE_URL or --database-url")
    applied = await migrate(config.database.url)
    log.info(
        "migrations_done",
        database=redact_dsn(config.database.url),
        applied=[f"{m.version:04d}_{m.name}" for m in applied],
    )
    return 0


def add_loadtest_command(commands: Any) -> None:
    """Adds `loadtest` to the CLI's subcommands."""
    parser = commands.add_parser(
        "loadtest",
        help="drive a running server with open-loop command load and report latency",
        description="Sends commands at a fixed rate to a running sovd-sim and reports "
        "throughput and POST-to-completed percentiles. The password is read from "
        "SOVD_LOADTEST_PASSWORD or standard input.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--rate", type=_positive(float), default=500.0, help="commands/s")
    parser.add_argument("--duration", type=_positive(float), default=10.0, help="seconds")
    parser.add_argument("--command", default="ReadDTC", dest="command_name")
    parser.add_argument(
        "--params",
        type=_json_object,
        default=None,
        help='command parameters as JSON; default {"ecuAddress": <first ECU>}',
    )
    parser.add_argument(
        "--vehicles",
        type=_positive(int),
        default=1000,
        help="how many connected vehicles to spread the load over",
    )
    parser.add_argument(
        "--connections",
        type=_positive(int),
        default=256,
        help="keep-alive connections; each carries one request at a time",
    )


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def run_loadtest(args: argparse.Namespace, password: str) -> int:
    plan = LoadPlan(
        url=args.url.rstrip("/"),
        username=args.username,
        password=password,
        rate=args.rate,
        duration_s=args.duration,
        command_name=args.command_name,
        command_params=args.params,
        vehicles=args.vehicles,
        connections=args.connections,
    )
    report = asyncio.run(run_load(plan))
    for line in report.lines():
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "loadtest":
        password = os.environ.get("SOVD_LOADTEST_PASSWORD") or sys.stdin.readline().strip()
        return run_loadtest(args, password)
    config_file = getattr(args, "config", None)
    try:
        if args.command == "serve":
            config = build_config(config_file, os.environ, _flags(args))
        else:
            config = load_config(config_file, os.environ, _flags(args))
    except ConfigError as exc:
        print(f"sovd-sim: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.logging.level, config.logging.format)
    try:
        if args.command == "serve":
            if config.simulation.fleet:  # mistakes in the fleet file stop us before anything starts
                read_fleet_file(config.simulation.fleet, config.simulation.seed)
            asyncio.run(run_server(config))
            return 0
        if args.command == "fleet":
            return asyncio.run(run_fleet_command(config, args, sys.stdout, sys.stderr))
        if args.command == "user":
            return asyncio.run(run_user_add(config, args, sys.stdin, sys.stderr))
        return asyncio.run(run_migrations(config))
    except CliUsageError as exc:
        print(f"sovd-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"sovd-sim: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidFleetConfig as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EXIT_USAGE
    except FleetConflict as exc:
        print(f"sovd-sim: fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreUnavailable, SchemaOutdated, OSError) as exc:
        log.error("startup_failed", error=str(exc))
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
