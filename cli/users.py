"""`sovd-sim user add NAME --role ROLE`: adds an account, its password read from stdin."""

from __future__ import annotations

import argparse
import getpass
from typing import Any, TextIO

import asyncpg

from cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cli.options import add_config_option, add_database_option
from db.postgres import PostgresStore, create_pool, redact_dsn
from db.repositories import DuplicateKey, StoreUnavailable
from sovd.records import ROLES
from web.auth.accounts import InvalidAccount, create_user
from web.auth.passwords import MIN_NEW_PASSWORD_LENGTH, PasswordHasher
from web.config import Config


def add_user_commands(commands: Any) -> None:
    user = commands.add_parser("user", help="user accounts")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add a user; the password is read from stdin",
        description="Adds a user. The password is read from standard input (asked twice on a "
        "terminal), never from the command line.",
    )
    add.add_argument("name", help="login name")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do (required)")
    add.add_argument("--email", help="the user's e-mail address (default: none)")
    add_config_option(add)
    add_database_option(add)


def read_new_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise InvalidAccount("the passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


async def run_user_add(
    config: Config, args: argparse.Namespace, stdin: TextIO, stderr: TextIO
) -> int:
    def fail(message: str, code: int) -> int:
        print(f"sovd-sim: user add: {message}", file=stderr)
        return code

    url = config.database.url
    if url is None:
        return fail("needs a database: set DATABASE_URL or --database-url", EXIT_USAGE)
    try:
        password = read_new_password(stdin)
    except InvalidAccount as exc:
        return fail(str(exc), EXIT_USAGE)
    if len(password) < MIN_NEW_PASSWORD_LENGTH:
        return fail(
            f"the password must be at least {MIN_NEW_PASSWORD_LENGTH} characters", EXIT_USAGE
        )
    try:
        pool = await create_pool(url, min_size=1, max_size=1)
    except StoreUnavailable as exc:
        return fail(str(exc), EXIT_FAILED)
    try:
        await create_user(
            PostgresStore(pool),
            PasswordHasher.from_config(config.auth),
            username=args.name,
            password=password,
            role=args.role,
            email=args.email,
        )
    except InvalidAccount as exc:
        return fail(str(exc), EXIT_USAGE)
    except DuplicateKey:
        return fail(f"a user named {args.name!r} exists", EXIT_FAILED)
    except asyncpg.UndefinedTableError:
        return fail(f"{redact_dsn(url)} has no users table: run `sovd-sim db migrate`", EXIT_FAILED)
    except StoreUnavailable as exc:
        return fail(str(exc), EXIT_FAILED)
    finally:
        await pool.close()
    print(f"sovd-sim: added user {args.name!r} with role {args.role}")
    return EXIT_OK
