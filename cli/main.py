"""`sovd-sim`: the parser of every subcommand, and the dispatch that turns errors into exit
codes (cli/exits.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from cli.database import add_db_commands, run_migrations
from cli.exits import EXIT_FAILED, EXIT_USAGE, CliUsageError
from cli.fleets import add_fleet_commands, run_fleet_command
from cli.loadtest import PASSWORD_VARIABLE, add_loadtest_command, run_loadtest
from cli.serve import add_serve_command, serve
from cli.users import add_user_commands, run_user_add
from db.cluster import PartitionCountMismatch
from db.migrate import SchemaOutdated
from db.repositories import StoreUnavailable
from sovd.errors import FleetConflict
from sovd.fleet_config import InvalidFleetConfig
from web.config import Config, ConfigError, build_config, load_config
from web.logs import configure_logging

log = structlog.get_logger("sovd_sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sovd-sim", description="Simulated vehicle fleets behind a SOVD-style backend."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_db_commands(commands)
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
        "cluster.enabled": True if getattr(args, "cluster", False) else None,
        "cluster.node_id": getattr(args, "node_id", None),
    }


# Mistakes of the user's: one line on standard error, exit code 2.
USAGE_ERRORS = (
    CliUsageError,
    ConfigError,
    InvalidFleetConfig,
    FleetConflict,
    PartitionCountMismatch,
)


def _explain(exc: Exception) -> str:
    if isinstance(exc, InvalidFleetConfig):
        return "\n".join(exc.lines())
    if isinstance(exc, ConfigError):
        return f"sovd-sim: configuration error: {exc}"
    if isinstance(exc, FleetConflict):
        return f"sovd-sim: fleet: {exc}"
    if isinstance(exc, PartitionCountMismatch):
        return f"sovd-sim: configuration error: cluster.partitions: {exc}"
    return f"sovd-sim: {exc}"


def _run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "serve":
        return serve(config)
    if args.command == "fleet":
        return asyncio.run(run_fleet_command(config, args, sys.stdout, sys.stderr))
    if args.command == "user":
        return asyncio.run(run_user_add(config, args, sys.stdin, sys.stderr))
    return asyncio.run(run_migrations(config))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "loadtest":
        password = os.environ.get(PASSWORD_VARIABLE) or sys.stdin.readline().strip()
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
        return _run(args, config)
    except USAGE_ERRORS as exc:
        print(_explain(exc), file=sys.stderr)
        return EXIT_USAGE
    except (StoreUnavailable, SchemaOutdated, OSError) as exc:
        log.error("startup_failed", error=str(exc))
        return EXIT_FAILED
