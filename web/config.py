"""One typed configuration, built once: defaults < TOML file < environment < CLI flags."""

from __future__ import annotations

import secrets
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs
from attrs import frozen

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
MIN_JWT_SECRET_BYTES = 32


class ConfigError(Exception):
    """Bad configuration: names where it came from, the key and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


@frozen
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: tuple[str, ...] = ()
    drain_seconds: float = 0.0
    shutdown_timeout_s: float = 10.0


@frozen
class DatabaseConfig:
    url: str | None = None
    pool_min_size: int = 2
    pool_max_size: int = 10
    # Rows per group-commit transaction; 1 writes each submission in its own transaction.
    write_batch_max_rows: int = 2000


@frozen
class RedisConfig:
    url: str | None = None


@frozen
class AuthConfig:
    jwt_secret: str | None = None
    issuer: str = "sovd-sim"
    audience: str = "sovd-sim-api"
    access_ttl_s: int = 900
    refresh_ttl_s: int = 7 * 24 * 3600
    # Refreshes with one token this close together get the same new pair.
    refresh_reuse_grace_s: float = 5.0
    admin_password: str | None = None
    # argon2id cost; the defaults are RFC 9106's "low memory" profile (64 MiB, t=3, p=4).
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4
    # Failed logins allowed per sliding window, per account and per client address.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 50
    login_window_s: int = 300


@frozen
class SimulationConfig:
    fleet: str | None = None
    seed: int = 0
    latency_ms: tuple[int, int] = (500, 1500)
    mailbox_size: int = 64
    command_deadline_s: float = 30.0
    # Scales simulated time inside a command (self-test steps, responsePending delays).
    time_scale: float = 1.0


@frozen
class LoggingConfig:
    level: LogLevel = "info"
    format: LogFormat = "auto"


@frozen
class Config:
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    auth: AuthConfig = AuthConfig()
    simulation: SimulationConfig = SimulationConfig()
    logging: LoggingConfig = LoggingConfig()
    jwt_secret_generated: bool = False

    def with_generated_secret(self) -> Config:
        return attrs.evolve(
            self,
            auth=attrs.evolve(self.auth, jwt_secret=secrets.token_urlsafe(48)),
            jwt_secret_generated=True,
        )


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "redis": RedisConfig,
    "auth": AuthConfig,
    "simulation": SimulationConfig,
    "logging": LoggingConfig,
}

ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": "database.url",
    "REDIS_URL": "redis.url",
    "JWT_SECRET": "auth.jwt_secret",
    "SOVD_HOST": "server.host",
    "SOVD_PORT": "server.port",
    "SOVD_CORS_ORIGINS": "server.cors_origins",
    "SOVD_DRAIN_SECONDS": "server.drain_seconds",
    "SOVD_DB_POOL_MIN_SIZE": "database.pool_min_size",
    "SOVD_DB_POOL_MAX_SIZE": "database.pool_max_size",
    "SOVD_WRITE_BATCH_MAX_ROWS": "database.write_batch_max_rows",
    "SOVD_JWT_ISSUER": "auth.issuer",
    "SOVD_JWT_AUDIENCE": "auth.audience",
    "SOVD_ACCESS_TTL_S": "auth.access_ttl_s",
    "SOVD_REFRESH_TTL_S": "auth.refresh_ttl_s",
    "SOVD_ADMIN_PASSWORD": "auth.admin_password",
    "SOVD_FLEET": "simulation.fleet",
    "SOVD_SEED": "simulation.seed",
    "SOVD_LATENCY_MS": "simulation.latency_ms",
    "SOVD_MAILBOX_SIZE": "simulation.mailbox_size",
    "SOVD_COMMAND_DEADLINE_S": "simulation.command_deadline_s",
    "SOVD_TIME_SCALE": "simulation.time_scale",
    "SOVD_LOG_LEVEL": "logging.level",
    "SOVD_LOG_FORMAT": "logging.format",
}


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_describe(args[0])}"
        return f"{len(args)} values ({', '.join(_describe(a) for a in args)})"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _parse_text(text: str, tp: Any) -> Any:
    """Turns an environment or flag string into the field's type; ValueError when it can't."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = next(a for a in get_args(tp) if a is not type(None))
        return _parse_text(text, inner) if text != "" else None
    if origin is tuple:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        args = get_args(tp)
        if args[1:] == (Ellipsis,):
            return tuple(_parse_text(p, args[0]) for p in parts)
        if len(parts) != len(args):
            raise ValueError(text)
        return tuple(_parse_text(p, a) for p, a in zip(parts, args, strict=True))
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    return text


def _check_type(value: Any, tp: Any) -> Any:
    """Checks a TOML value against the field type without silent coercion."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        inner = next(a for a in get_args(tp) if a is not type(None))
        return _check_type(value, inner)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError
        args = get_args(tp)
        if args[1:] == (Ellipsis,):
            return tuple(_check_type(v, args[0]) for v in value)
        if len(value) != len(args):
            raise ValueError
        return tuple(_check_type(v, a) for v, a in zip(value, args, strict=True))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise ValueError
    if not isinstance(value, tp):
        raise ValueError
    return value


def _validate(config: Config, source_of: Mapping[str, str]) -> None:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(source_of.get(key, "defaults"), key, problem)

    if not 0 < config.server.port < 65536:
        raise fail("server.port", f"must be between 1 and 65535, got {config.server.port}")
    if config.server.drain_seconds < 0:
        raise fail("server.drain_seconds", "must be >= 0")
    db = config.database
    if db.pool_min_size < 1:
        raise fail("database.pool_min_size", "must be >= 1")
    if db.pool_max_size < db.pool_min_size:
        raise fail(
            "database.pool_max_size",
            f"must be >= database.pool_min_size ({db.pool_min_size}), got {db.pool_max_size}",
        )
    if db.write_batch_max_rows < 1:
        raise fail("database.write_batch_max_rows", "must be >= 1")
    if db.url is not None and not db.url.startswith(("postgres://", "postgresql://")):
        raise fail("database.url", "must start with postgresql:// or postgres://")
    if config.redis.url is not None and not config.redis.url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise fail("redis.url", "must start with redis://, rediss:// or unix://")
    auth = config.auth
    if auth.access_ttl_s < 1 or auth.refresh_ttl_s < 1:
        key = "auth.access_ttl_s" if auth.access_ttl_s < 1 else "auth.refresh_ttl_s"
        raise fail(key, "must be >= 1 second")
    if auth.jwt_secret is not None and len(auth.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise fail(
            "auth.jwt_secret",
            f"must be at least {MIN_JWT_SECRET_BYTES} bytes, got {len(auth.jwt_secret.encode())}",
        )
    sim = config.simulation
    low, high = sim.latency_ms
    if low < 0 or high < low:
        raise fail("simulation.latency_ms", f"needs 0 <= MIN <= MAX, got {low},{high}")
    if sim.mailbox_size < 1:
        raise fail("simulation.mailbox_size", "must be >= 1")
    if sim.command_deadline_s <= 0:
        raise fail("simulation.command_deadline_s", "must be > 0")
    if sim.time_scale < 0:
        raise fail("simulation.time_scale", "must be >= 0")


def load_config(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merges the layers; `flags` maps dotted keys (`server.port`) to already-typed values."""
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    source_of: dict[str, str] = {}

    if config_file is not None:
        source = str(config_file)
        try:
            document = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, "--config", f"cannot read file: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, "(file)", f"invalid TOML: {exc}") from exc
        for section, table in document.items():
            if section not in SECTIONS:
                raise ConfigError(source, section, f"unknown section; known: {', '.join(SECTIONS)}")
            if not isinstance(table, dict):
                raise ConfigError(source, section, "must be a table")
            hints = _hints(SECTIONS[section])
            for key, value in table.items():
                dotted = f"{section}.{key}"
                if key not in hints:
                    raise ConfigError(source, dotted, "unknown key")
                try:
                    values[section][key] = _check_type(value, hints[key])
                except ValueError:
                    raise ConfigError(
                        source, dotted, f"expected {_describe(hints[key])}, got {value!r}"
                    ) from None
                source_of[dotted] = source

    for variable, dotted in ENVIRONMENT.items():
        text = (environ or {}).get(variable)
        if text is None:
            continue
        section, key = dotted.split(".")
        tp = _hints(SECTIONS[section])[key]
        try:
            parsed = _parse_text(text, tp)
            values[section][key] = _check_type(parsed, tp)
        except (ValueError, TypeError):
            raise ConfigError(
                f"environment {variable}", dotted, f"expected {_describe(tp)}, got {text!r}"
            ) from None
        source_of[dotted] = f"environment {variable}"

    for dotted, value in (flags or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".")
        values[section][key] = value
        source_of[dotted] = "command line"

    config = Config(**{name: SECTIONS[name](**fields) for name, fields in values.items()})
    _validate(config, source_of)
    return config


def build_config(
    config_file: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """The configuration `serve` runs with: embedded mode gets a per-process JWT secret."""
    config = load_config(config_file, environ, flags)
    if config.auth.jwt_secret:
        return config
    if config.database.url is not None:
        raise ConfigError(
            "configuration",
            "auth.jwt_secret",
            "is required with PostgreSQL: set JWT_SECRET (at least "
            f"{MIN_JWT_SECRET_BYTES} bytes) so tokens survive restarts",
        )
    return config.with_generated_secret()
