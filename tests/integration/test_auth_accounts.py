"""The first admin, and `sovd-sim user add` on a real database."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable

import attrs
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from cli import main as cli
from db.postgres import PostgresStore
from db.repositories import Store
from web.auth.accounts import create_user
from web.auth.passwords import PasswordHasher
from web.config import Config

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
GENERATED = re.compile(r"created user 'admin' with password: (\S+)")


async def login_status(client: Client, username: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return response.status


async def test_the_first_start_creates_admin_with_the_configured_password(
    make_client: MakeClient, store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "configured-admin-password"
    with structlog.testing.capture_logs() as logs:
        client = await make_client(
            store=store, auth=attrs.evolve(config.auth, admin_password=password)
        )

    assert await login_status(client, "admin", password) == 200
    admin = await store.users.get_by_username("admin")
    assert admin is not None and admin.role == "admin"
    assert password not in capsys.readouterr().out
    bootstrapped = [e for e in logs if e["event"] == "admin_bootstrapped"]
    assert len(bootstrapped) == 1
    assert bootstrapped[0]["password_source"] == "SOVD_ADMIN_PASSWORD"
    assert password not in repr(logs)


async def test_without_a_configured_password_one_is_generated_and_printed_once(
    make_client: MakeClient, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        client = await make_client(store=store)

    out = capsys.readouterr().out
    match = GENERATED.search(out)
    assert match is not None, out
    password = match.group(1)
    assert len(password) >= 20
    assert await login_status(client, "admin", password) == 200
    assert password not in repr(logs)
    assert "admin_bootstrapped" in [e["event"] for e in logs]

    await make_client(store=store)
    assert "password" not in capsys.readouterr().out


async def test_no_admin_is_created_when_a_user_exists(
    make_client: MakeClient, store: Store, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    hasher = PasswordHasher.from_config(config.auth)
    await create_user(store, hasher, username="first", password="first-password", role="viewer")

    await make_client(store=store)

    assert await store.users.get_by_username("admin") is None
    assert await store.users.count() == 1
    assert "password" not in capsys.readouterr().out


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Awaitable[tuple[int, str, str]]]:
    # main() configures structlog for the process; keep the test session's configuration.
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)

    async def run(
        *argv: str, stdin: str, environ: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        for name in ("DATABASE_URL", "JWT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (environ or {}).items():
            monkeypatch.setenv(name, value)
        code = await asyncio.to_thread(cli.main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.mark.integration
async def test_user_add_reads_the_password_from_stdin(
    run_cli: Callable[..., Awaitable[tuple[int, str, str]]],
    pg_store: PostgresStore,
    pg_dsn: str,
    make_client: MakeClient,
) -> None:
    code, out, err = await run_cli(
        "user",
        "add",
        "erin",
        "--role",
        "engineer",
        "--email",
        "erin@example.test",
        stdin="erin-password-1\n",
        environ={"DATABASE_URL": pg_dsn},
    )

    assert (code, err) == (0, "")
    assert "erin" in out and "erin-password-1" not in out
    erin = await pg_store.users.get_by_username("erin")
    assert erin is not None
    assert (erin.role, erin.email) == ("engineer", "erin@example.test")
    assert erin.password_hash.startswith("$argon2id$")
    client = await make_client(store=pg_store)
    assert await login_status(client, "erin", "erin-password-1") == 200


@pytest.mark.integration
async def test_user_add_refuses_a_taken_name(
    run_cli: Callable[..., Awaitable[tuple[int, str, str]]], pg_store: PostgresStore, pg_dsn: str
) -> None:
    argv = ("user", "add", "frank", "--role", "viewer", "--database-url", pg_dsn)
    assert (await run_cli(*argv, stdin="frank-password\n"))[0] == 0

    code, _, err = await run_cli(*argv, stdin="frank-password\n")

    assert code == 1
    assert "exists" in err


@pytest.mark.parametrize("stdin", ["short\n", "", "\n"])
@pytest.mark.integration
async def test_user_add_refuses_a_short_password(
    run_cli: Callable[..., Awaitable[tuple[int, str, str]]],
    pg_store: PostgresStore,
    pg_dsn: str,
    stdin: str,
) -> None:
    code, _, err = await run_cli(
        "user", "add", "gina", "--role", "viewer", stdin=stdin, environ={"DATABASE_URL": pg_dsn}
    )

    assert code == 2
    assert "at least 8 characters" in err
    assert await pg_store.users.get_by_username("gina") is None


@pytest.mark.parametrize(
    "argv",
    [("user", "add", "gina", "--role", "owner"), ("user", "add", "gina")],
)
async def test_user_add_needs_a_known_role(
    run_cli: Callable[..., Awaitable[tuple[int, str, str]]], argv: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as caught:
        await run_cli(*argv, stdin="long-enough-pw\n")
    assert caught.value.code == 2


async def test_user_add_needs_a_database(
    run_cli: Callable[..., Awaitable[tuple[int, str, str]]],
) -> None:
    code, _, err = await run_cli("user", "add", "hank", "--role", "admin", stdin="hank-pass-1\n")

    assert code == 2
    assert "DATABASE_URL" in err
