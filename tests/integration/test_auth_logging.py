"""No password, hash, token or JWT secret reaches the logs or an error body."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from db.repositories import Store
from web.auth.accounts import create_user
from web.auth.passwords import PasswordHasher
from web.config import Config

Client = TestClient[web.Request, web.Application]
PASSWORD = "S3cret-Passw0rd-for-log-test"
WRONG_PASSWORD = "Wr0ng-Passw0rd-for-log-test"


@pytest.fixture
def captured_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[list[dict[str, Any]]]:
    """Every structlog event of our modules, even if an earlier test configured caching."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("web", "db", "sovd", "actors") and hasattr(module, "log"):
            monkeypatch.setattr(module, "log", structlog.get_logger(name))
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        yield events


async def test_nothing_secret_is_logged_or_echoed(
    make_client: Callable[..., Awaitable[Client]],
    store: Store,
    config: Config,
    captured_logs: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hasher = PasswordHasher.from_config(config.auth)
    user = await create_user(store, hasher, username="alice", password=PASSWORD, role="engineer")
    client = await make_client(store=store)
    answers: list[str] = []

    async def call(method: str, path: str, **options: Any) -> Any:
        response = await client.request(method, path, **options)
        text = await response.text()
        if response.status >= 400:
            answers.append(text)
        return response

    async def log_in() -> dict[str, Any]:
        response = await call(
            "POST", "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        body: dict[str, Any] = await response.json()
        return body

    await call("POST", "/api/v1/auth/login", json={"username": "alice", "password": WRONG_PASSWORD})
    await call("POST", "/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    await call(
        "POST",
        "/api/v1/auth/login",
        json={"username": "alice", "password": PASSWORD, "x": PASSWORD},
    )
    await call(
        "POST",
        "/api/v1/auth/login",
        data=f'{{"username": "alice", "password": "{PASSWORD}"',
        headers={"Content-Type": "application/json"},
    )
    first = await log_in()
    await call(
        "GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    second = await (
        await call("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    # The successor is used, so presenting the first token again is reuse.
    await call("POST", "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    await call("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    third = await log_in()
    await call(
        "POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {third['access_token']}"}
    )
    for token in (third["access_token"], third["refresh_token"], PASSWORD, config.auth.jwt_secret):
        await call("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    await call("POST", "/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    await call("GET", f"/api/v1/nothing?token={third['access_token']}")

    events = [event["event"] for event in captured_logs]
    for expected in ("login_failed", "user_logged_in", "token_reuse_detected", "user_logged_out"):
        assert expected in events
    tokens = [first[k] for k in ("access_token", "refresh_token")]
    tokens += [second[k] for k in ("access_token", "refresh_token")]
    tokens += [third[k] for k in ("access_token", "refresh_token")]
    secrets = [PASSWORD, WRONG_PASSWORD, user.password_hash, config.auth.jwt_secret or ""]
    secrets += tokens + [token.rsplit(".", 1)[1] for token in tokens]
    logged = "\n".join(repr(event) for event in captured_logs) + caplog.text
    assert "/api/v1/nothing?token=***" in caplog.text  # the access log line was there, redacted
    for secret in secrets:
        assert secret not in logged
        for answer in answers:
            assert secret not in answer
