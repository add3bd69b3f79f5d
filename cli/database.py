"""`sovd-sim db migrate`: applies the pending SQL migrations to the configured database."""

from __future__ import annotations

from typing import Any

import structlog

from cli.exits import EXIT_OK, CliUsageError
from cli.options import add_config_option, add_database_option
from db.migrate import migrate
from db.postgres import redact_dsn
from web.config import Config

log = structlog.get_logger("sovd_sim")


def add_db_commands(commands: Any) -> None:
    database = commands.add_parser("db", help="database administration")
    actions = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate_command = actions.add_parser("migrate", help="apply pending SQL migrations")
    add_config_option(migrate_command)
    add_database_option(migrate_command)


async def run_migrations(config: Config) -> int:
    if config.database.url is None:
        raise CliUsageError("db migrate needs a database: set DATABASE_URL or --database-url")
    applied = await migrate(config.database.url)
    log.info(
        "migrations_done",
        database=redact_dsn(config.database.url),
        applied=[f"{m.version:04d}_{m.name}" for m in applied],
    )
    return EXIT_OK
