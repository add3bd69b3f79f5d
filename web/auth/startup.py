"""Auth at start-up: the configuration check, and the service its cleanup context builds."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import attrs
import structlog
from aiohttp import web

from db.repositories import Store
from web.auth.accounts import bootstrap_admin
from web.auth.passwords import PasswordHasher
from web.auth.service import AuthService
from web.auth.throttle import LoginThrottle
from web.auth.tokens import TokenCodec
from web.config import AuthConfig, Config, ConfigError
from web.typedefs import auth_service_key, config_key, store_key

log = structlog.get_logger(__name__)


def check_auth_config(config: Config) -> None:
    auth = config.auth

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError("configuration", f"auth.{key}", problem)

    if not auth.jwt_secret and config.database.url is not None:
        raise fail("jwt_secret", "is required with PostgreSQL: set JWT_SECRET")
    if auth.password_time_cost < 1:
        raise fail("password_time_cost", "must be >= 1")
    if auth.password_parallelism < 1:
        raise fail("password_parallelism", "must be >= 1")
    if auth.password_memory_kib < 8 * auth.password_parallelism:
        raise fail("password_memory_kib", "must be >= 8 x auth.password_parallelism")
    for key in ("login_max_failures", "login_max_failures_per_address", "login_window_s"):
        if getattr(auth, key) < 1:
            raise fail(key, "must be >= 1")


def build_auth_service(auth: AuthConfig, store: Store) -> AuthService:
    if not auth.jwt_secret:
        # Only reachable on the embedded default (check_auth_config refuses it otherwise)
        # when the app was built from a configuration that did not go through build_config.
        auth = attrs.evolve(auth, jwt_secret=secrets.token_urlsafe(48))
        log.warning("jwt_secret_generated", note="tokens are valid for this process only")
    throttle = LoginThrottle(
        max_failures_per_account=auth.login_max_failures,
        max_failures_per_address=auth.login_max_failures_per_address,
        window_s=auth.login_window_s,
    )
    return AuthService(
        store,
        TokenCodec.from_config(auth),
        PasswordHasher.from_config(auth),
        throttle,
        reuse_grace_s=auth.refresh_reuse_grace_s,
    )


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """The auth service; the first start also creates the admin account."""
    auth = app[config_key].auth
    store = app[store_key]
    service = build_auth_service(auth, store)
    app[auth_service_key] = service
    await bootstrap_admin(store, service.hasher, auth.admin_password)
    await service.hasher.prepare_decoy()
    yield
