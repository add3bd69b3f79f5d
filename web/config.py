"""One typed configuration, built once: defaults < TOML file < environment < CLI flags."""

from __future__ import annotations

import re
import secrets
import tomllib
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs
from attrs import frozen

from sovd import strict

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
MIN_JWT_SECRET_BYTES = 32
NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


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
    # A connection that sends nothing (or stops inside its headers) this long is closed; so
    # is an idle keep-alive connection.
    idle_timeout_s: float = 60.0
    # Reading a request's body may take this long before the answer is 408.
    body_timeout_s: float = 30.0
    # Open connections per process; past it a new one is answered 503 and closed.
    max_connections: int = 10_000


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
class ClusterConfig:
    """One fleet over several processes sharing PostgreSQL and Redis (SPEC §7)."""

    enabled: bool = False
    # Empty: the host name and process id.
    node_id: str = ""
    # Must be equal on every node; the first node to start records it in Redis.
    partitions: int = 64
    lease_ms: int = 5000


@frozen
class Config:
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    auth: AuthConfig = AuthConfig()
    simulation: SimulationConfig = SimulationConfig()
    logging: LoggingConfig = LoggingConfig()
    cluster: ClusterConfig = ClusterConfig()
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
    "cluster": ClusterConfig,
}

ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": "database.url",
    "REDIS_URL": "redis.url",
    "JWT_SECRET": "auth.jwt_secret",
    "SOVD_HOST": "server.host",
    "SOVD_PORT": "server.port",
    "SOVD_CORS_ORIGINS": "server.cors_origins",
    "SOVD_DRAIN_SECONDS": "server.drain_seconds",
    "SOVD_IDLE_TIMEOUT_S": "server.idle_timeout_s",
    "SOVD_BODY_TIMEOUT_S": "server.body_timeout_s",
    "SOVD_MAX_CONNECTIONS": "server.max_connections",
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
    "SOVD_CLUSTER": "cluster.enabled",
    "SOVD_NODE_ID": "cluster.node_id",
    "SOVD_CLUSTER_PARTITIONS": "cluster.partitions",
    "SOVD_CLUSTER_LEASE_MS": "cluster.lease_ms",
}


DIALECT = strict.Dialect(
    names={
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "list",
        dict: "table",
    },
    given=repr,
)
_converter = strict.converter(DIALECT)

Setting = tuple[Any, str]
"""A value and where it came from (a file, `environment NAME`, `command line`)."""


def load_config(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merges the layers; `flags` maps dotted keys (`server.port`) to already-typed values."""
    settings: dict[str, Setting] = {}
    if config_file is not None:
        settings.update(_file_settings(config_file))
    settings.update(_environment_settings(environ or {}))
    settings.update(
        (dotted, (value, "command line"))
        for dotted, value in (flags or {}).items()
        if value is not None
    )
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for dotted, (value, _) in settings.items():
        section, key = dotted.split(".")
        values[section][key] = value
    config = Config(**{name: SECTIONS[name](**fields) for name, fields in values.items()})
    _validate(config, {dotted: source for dotted, (_, source) in settings.items()})
    return config


def _file_settings(config_file: Path) -> dict[str, Setting]:
    source = str(config_file)
    try:
        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, "--config", f"cannot read file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(file)", f"invalid TOML: {exc}") from exc
    settings: dict[str, Setting] = {}
    for section, table in document.items():
        if section not in SECTIONS:
            raise ConfigError(source, section, f"unknown section; known: {', '.join(SECTIONS)}")
        parsed = _structure(table, SECTIONS[section], source, section)
        settings.update((f"{section}.{key}", (getattr(parsed, key), source)) for key in table)
    return settings


def _environment_settings(environ: Mapping[str, str]) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for variable, dotted in ENVIRONMENT.items():
        text = environ.get(variable)
        if text is None:
            continue
        section, key = dotted.split(".")
        tp = get_type_hints(SECTIONS[section])[key]
        source = f"environment {variable}"
        settings[dotted] = (_structure(_from_text(text, tp), tp, source, dotted), source)
    return settings


def _structure(value: object, tp: Any, source: str, path: str) -> Any:
    """`value` as `tp`, or a ConfigError naming the first problem and its dotted key."""
    try:
        return _converter.structure(value, tp)
    except strict.STRUCTURE_ERRORS as exc:
        key, problem = strict.problems(exc, DIALECT, path)[0]
        raise ConfigError(source, key, problem) from None


def _from_text(text: str, tp: Any) -> object:
    """An environment variable's text as the TOML value it spells for a field of type `tp`
    (`8080`, `0.5`, `a, b` as a list, an empty text as None where None is allowed); text
    that spells no such value stays text, for the converter to reject by name."""
    args = get_args(tp)
    if get_origin(tp) in (Union, types.UnionType):
        inner = next(arg for arg in args if arg is not type(None))
        return None if text == "" else _from_text(text, inner)
    if get_origin(tp) is not tuple:
        return _scalar_from_text(text, tp)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if args[1:] == (Ellipsis,):
        return [_from_text(part, args[0]) for part in parts]
    if len(parts) != len(args):
        return parts
    return [_from_text(part, arg) for part, arg in zip(parts, args, strict=True)]


_BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "on": True} | {
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _scalar_from_text(text: str, tp: Any) -> object:
    try:
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        return text
    if tp is bool:
        return _BOOLEAN_WORDS.get(text.lower(), text)
    return text


Check = Callable[[Config], tuple[str, str] | None]
"""Finds the first mistake in one part of a config: its dotted key and the problem."""


def _validate(config: Config, source_of: Mapping[str, str]) -> None:
    checks: tuple[Check, ...] = (
        _server_mistake,
        _database_mistake,
        _redis_mistake,
        _auth_mistake,
        _simulation_mistake,
        _cluster_mistake,
    )
    for check in checks:
        mistake = check(config)
        if mistake is not None:
            key, problem = mistake
            raise ConfigError(source_of.get(key, "defaults"), key, problem)


def _server_mistake(config: Config) -> tuple[str, str] | None:
    server = config.server
    if not 0 < server.port < 65536:
        return "server.port", f"must be between 1 and 65535, got {server.port}"
    if server.drain_seconds < 0:
        return "server.drain_seconds", "must be >= 0"
    for key in ("idle_timeout_s", "body_timeout_s"):
        if getattr(server, key) <= 0:
            return f"server.{key}", "must be > 0"
    if server.max_connections < 1:
        return "server.max_connections", "must be >= 1"
    return None


def _database_mistake(config: Config) -> tuple[str, str] | None:
    db = config.database
    if db.pool_min_size < 1:
        return "database.pool_min_size", "must be >= 1"
    if db.pool_max_size < db.pool_min_size:
        return (
            "database.pool_max_size",
            f"must be >= database.pool_min_size ({db.pool_min_size}), got {db.pool_max_size}",
        )
    if db.write_batch_max_rows < 1:
        return "database.write_batch_max_rows", "must be >= 1"
    if db.url is not None and not db.url.startswith(("postgres://", "postgresql://")):
        return "database.url", "must start with postgresql:// or postgres://"
    return None


def _cluster_mistake(config: Config) -> tuple[str, str] | None:
    cluster = config.cluster
    if not 1 <= cluster.partitions <= 4096:
        return "cluster.partitions", f"must be between 1 and 4096, got {cluster.partitions}"
    if cluster.lease_ms < 500:
        return "cluster.lease_ms", f"must be >= 500, got {cluster.lease_ms}"
    if cluster.node_id and not NODE_ID.fullmatch(cluster.node_id):
        return "cluster.node_id", "must be 1-64 letters, digits, '-', '_' or '.'"
    if cluster.enabled:
        missing = [
            name
            for name, url in (
                ("DATABASE_URL", config.database.url),
                ("REDIS_URL", config.redis.url),
            )
            if url is None
        ]
        if missing:
            return "cluster.enabled", f"cluster mode needs {' and '.join(missing)}"
    return None


def _redis_mistake(config: Config) -> tuple[str, str] | None:
    url = config.redis.url
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        return "redis.url", "must start with redis://, rediss:// or unix://"
    return None


def _auth_mistake(config: Config) -> tuple[str, str] | None:
    auth = config.auth
    if auth.access_ttl_s < 1:
        return "auth.access_ttl_s", "must be >= 1 second"
    if auth.refresh_ttl_s < 1:
        return "auth.refresh_ttl_s", "must be >= 1 second"
    secret_bytes = len(auth.jwt_secret.encode()) if auth.jwt_secret is not None else None
    if secret_bytes is not None and secret_bytes < MIN_JWT_SECRET_BYTES:
        return (
            "auth.jwt_secret",
            f"must be at least {MIN_JWT_SECRET_BYTES} bytes, got {secret_bytes}",
        )
    return None


def _simulation_mistake(config: Config) -> tuple[str, str] | None:
    sim = config.simulation
    low, high = sim.latency_ms
    if low < 0 or high < low:
        return "simulation.latency_ms", f"needs 0 <= MIN <= MAX, got {low},{high}"
    if sim.mailbox_size < 1:
        return "simulation.mailbox_size", "must be >= 1"
    if sim.command_deadline_s <= 0:
        return "simulation.command_deadline_s", "must be > 0"
    if sim.time_scale < 0:
        return "simulation.time_scale", "must be >= 0"
    return None


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
