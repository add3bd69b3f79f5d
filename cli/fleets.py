"""`sovd-sim fleet validate FILE` and `sovd-sim fleet spawn FILE`.

`validate` checks a fleet config and prints what it describes. `spawn` records the fleets
and their vehicles in the deployment's PostgreSQL database (replacing recorded fleets of
the same name): every server started on that database from then on runs them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cli.options import add_config_option, add_database_option
from db.migrate import SchemaOutdated
from db.postgres import redact_dsn
from db.repositories import StoreUnavailable
from sovd.errors import FleetConflict
from sovd.fleet import FleetSpec, build_fleet
from sovd.fleet_config import FleetConfig, InvalidFleetConfig
from sovd.records import utc_now
from web.app import open_store
from web.config import Config
from web.vehicles.fleets import read_fleet_file, record_fleets


def add_fleet_commands(commands: Any) -> None:
    fleet = commands.add_parser("fleet", help="fleets from a fleet config (TOML)")
    actions = fleet.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    validate = actions.add_parser(
        "validate",
        help="check a fleet config and summarise it",
        description="Checks a fleet config; exits 0 and prints its fleets, or exits 2 and "
        "prints one line per problem: FILE: KEY PATH: what is wrong.",
    )
    validate.add_argument("file", help="the fleet config (TOML)")
    spawn = actions.add_parser(
        "spawn",
        help="record a fleet config's fleets in the database",
        description="Records the fleets and their vehicles in PostgreSQL (COPY, one "
        "transaction; re-spawning the same file changes nothing). Servers on this database "
        "run the recorded fleets from their next start; POST the same document as JSON to "
        "/api/v1/fleets to add it to a running server instead.",
    )
    spawn.add_argument("file", help="the fleet config (TOML)")
    for action in (validate, spawn):
        add_config_option(action)
    add_database_option(spawn)


def _latency(spec: FleetSpec) -> str:
    latency = spec.latency
    if latency is None:
        return "server default"
    low, high = latency.min_s * 1000, latency.max_s * 1000
    return f"{latency.distribution} {low:g}-{high:g} ms"


def describe(config: FleetConfig) -> list[str]:
    """A short summary: one line for the file, one per fleet."""
    fleets = config.fleets
    lines = [
        f"{config.source}: {len(fleets)} fleet{'s' * (len(fleets) != 1)}, "
        f"{config.vehicle_count:,} vehicles"
    ]
    width = max(len(spec.name) for spec in fleets)
    for spec in fleets:
        profile = spec.profile
        reach = spec.effective_connectivity
        online = 1 - reach.intermittent - reach.disconnected
        lines.append(
            f"  {spec.name:<{width}}  {spec.count:>9,}  {profile.name} ({profile.make} "
            f"{profile.model} {profile.year_min}-{profile.year_max}, {len(profile.ecus)} ECUs)"
            f"  seed {spec.seed}  latency {_latency(spec)}  online {online:.0%}"
            f"  failures {spec.effective_failure_modes.total:.1%}"
        )
    return lines


async def run_fleet_command(
    config: Config, args: argparse.Namespace, stdout: TextIO, stderr: TextIO
) -> int:
    try:
        fleet_config = read_fleet_file(args.file, config.simulation.seed)
    except InvalidFleetConfig as exc:
        for line in exc.lines():
            print(line, file=stderr)
        return EXIT_USAGE
    if args.fleet_command == "validate":
        print("\n".join(describe(fleet_config)), file=stdout)
        return EXIT_OK
    return await _spawn(config, fleet_config, stdout, stderr)


async def _spawn(config: Config, fleet_config: FleetConfig, stdout: TextIO, stderr: TextIO) -> int:
    url = config.database.url
    if url is None:
        print("sovd-sim: fleet spawn needs a database: set DATABASE_URL", file=stderr)
        return EXIT_USAGE
    started = time.perf_counter()
    try:
        store = await open_store(config)
    except (StoreUnavailable, SchemaOutdated) as exc:
        print(f"sovd-sim: fleet spawn: {exc}", file=stderr)
        return EXIT_FAILED
    try:
        built = [(plan, build_fleet(plan.spec)) for plan in fleet_config.plans]
        await record_fleets(store, built, utc_now())
    except (FleetConflict, StoreUnavailable) as exc:
        print(f"sovd-sim: fleet spawn: {fleet_config.source}: {exc}", file=stderr)
        return EXIT_FAILED
    finally:
        await store.close()
    elapsed = time.perf_counter() - started
    print("\n".join(describe(fleet_config)), file=stdout)
    print(
        f"recorded in {redact_dsn(url)} in {elapsed:.1f} s; servers on this database run "
        "these fleets from their next start",
        file=stdout,
    )
    return EXIT_OK
