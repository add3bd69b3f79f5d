"""Options several subcommands share, and help texts that show each setting's default."""

from __future__ import annotations

import argparse
from pathlib import Path

from web.config import ENVIRONMENT, Config

DEFAULTS = Config()
ENV_OF_SETTING = {key: name for name, key in ENVIRONMENT.items()}


def setting_help(text: str, key: str, default: str | None = None) -> str:
    """`text`, then the value used without the flag: the environment variable, else the
    default in Config (or `default` where that needs words)."""
    if default is None:
        section, name = key.split(".")
        value = getattr(getattr(DEFAULTS, section), name)
        default = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"{text} (default: {default}; env {ENV_OF_SETTING[key]})"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML configuration file; environment variables and flags override it (default: none)",
    )


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", metavar="DSN", help=setting_help("PostgreSQL DSN", "database.url", "none")
    )
