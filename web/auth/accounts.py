"""User accounts: creating them, the first admin, and `sovd-sim user add`."""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
import sys
from pathlib import Path
from typing import Any, TextIO
from uuid import uuid4

import asyncpg
import structlog

from db.postgres import PostgresStore, create_pool, redact_dsn
from db.repositories import DuplicateKey, Store, StoreUnavailable
from sovd.records import ROLES, Role, User, utc_now
from web.auth.passwords import MAX_PASSWORD_LENGTH, MIN_NEW_PASSWORD_LENGTH, PasswordHasher
from web.config import Config

log = structlog.get_logger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
BOOTSTRAP_USERNAME = "admin"
EXIT_USAGE = 2
EXIT_FAILED = 1


class InvalidAccount(ValueError):
    pass


async def create_user(
    store: Store,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    role: Role,
    email: str | None = None,
) -> User:
    """Raises InvalidAccount for a bad name or role, DuplicateKey when the name is taken."""
    if not USERNAME.match(username):
        raise InvalidAccount(
            "username must be 1 to 64 characters from letters, digits and . _ @ + -"
        )
    if role not in ROLES:
        raise InvalidAccount(f"role must be one of {', '.join(ROLES)}")
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidAccount(f"password must be 1 to {MAX_PASSWORD_LENGTH} characters")
    user = User(
        user_id=uuid4(),
        username=username,
        password_hash=await hasher.hash(password),
        role=role,
        email=email,
        created_at=utc_now(),
    )
    await store.users.add(user)
    log.info("user_created", user_id=str(user.user_id), username=username, role=role)
    return user


async def bootstrap_admin(
    store: Store, hasher: PasswordHasher, admin_password: str | None, out: TextIO | None = None
) -> User | None:
    """With no user at all, creates `admin`: with SOVD_ADMIN_PASSWORD, or a random password
    printed once to `out` (stdout), the one secret this program ever shows."""
    if await store.users.count() > 0:
        return None
    password = admin_password or secrets.token_urlsafe(18)
    try:
        user = await create_user(
            store, hasher, username=BOOTSTRAP_USERNAME, password=password, role="admin"
        )
    except DuplicateKey:
        return None  # another process starting at the same time created it
    if admin_password is None:
        print(
            f"\n*** sovd-sim: created user '{BOOTSTRAP_USERNAME}' with password: {password}\n"
            "*** It is shown only this once. Set SOVD_ADMIN_PASSWORD to choose it yourself.\n",
            file=out or sys.stdout,
            flush=True,
        )
    elif len(admin_password) < MIN_NEW_PASSWORD_LENGTH:
        log.warning("admin_password_weak", min_length=MIN_NEW_PASSWORD_LENGTH)
    log.info(
        "admin_bootstrapped",
        user_id=str(user.user_id),
        username=BOOTSTRAP_USERNAME,
        password_source="SOVD_ADMIN_PASSWORD" if admin_password else "generated",
    )
    return user


def add_user_commands(commands: Any) -> None:
    """Adds `user add NAME --role ROLE` to the CLI's subcommands."""
    user = commands.add_parser("user", help="user accounts")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add a user; the password is read from stdin",
        description="Adds a user. The password is read from standard input (asked twice on a "
        "terminal), never from the command line.",
    )
    add.add_argument("name", help="login name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--email")
    add.add_argument("--config", type=Path, help="TOML configuration file")
    add.add_argument("--database-url", help="PostgreSQL DSN (default: DATABASE_URL)")


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
    return 0
