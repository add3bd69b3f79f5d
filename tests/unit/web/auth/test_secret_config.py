"""SPEC §3: a JWT secret shorter than 32 bytes refuses to start in PostgreSQL mode; the
embedded default generates one and says so."""

from __future__ import annotations

import pytest
import structlog

from db.memory import MemoryStore
from web.auth.startup import build_auth_service, check_auth_config
from web.config import ConfigError, build_config, load_config

DATABASE_URL = "postgresql://root@127.0.0.1:5432/test"


def test_a_short_secret_refuses_to_start_with_postgresql() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(None, {"DATABASE_URL": DATABASE_URL, "JWT_SECRET": "s" * 31})
    assert "auth.jwt_secret" in str(caught.value)
    assert "at least 32 bytes" in str(caught.value)
    assert "s" * 31 not in str(caught.value)


def test_a_missing_secret_refuses_to_start_with_postgresql() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        build_config(None, {"DATABASE_URL": DATABASE_URL})
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        check_auth_config(load_config(environ={"DATABASE_URL": DATABASE_URL}))


def test_the_embedded_default_generates_a_long_secret() -> None:
    config = build_config(None, {})

    assert config.jwt_secret_generated
    assert config.auth.jwt_secret is not None and len(config.auth.jwt_secret.encode()) >= 32
    assert build_config(None, {}).auth.jwt_secret != config.auth.jwt_secret


def test_an_app_built_without_a_secret_in_embedded_mode_generates_one_and_says_so() -> None:
    config = load_config(environ={})
    check_auth_config(config)

    with structlog.testing.capture_logs() as logs:
        service = build_auth_service(config.auth, MemoryStore())

    assert service is not None
    assert [e["event"] for e in logs] == ["jwt_secret_generated"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("password_time_cost", 0),
        ("password_parallelism", 0),
        ("password_memory_kib", 4),
        ("login_max_failures", 0),
        ("login_window_s", 0),
    ],
)
def test_bad_auth_settings_are_named(key: str, value: int) -> None:
    config = load_config(environ={}, flags={f"auth.{key}": value})

    with pytest.raises(ConfigError, match=f"auth.{key}"):
        check_auth_config(config)
