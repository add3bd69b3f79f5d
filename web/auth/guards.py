"""Who is asking and what they may see: the auth middleware, role and object-level checks."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast
from uuid import UUID

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from sovd.records import ROLES, Role
from web.auth.tokens import AuthenticatedUser
from web.problems import ApiError
from web.typedefs import auth_service_key, current_user_key

PROTECTED_PREFIX = "/api/v1"
# Every vehicle's SOVD server; its version-info is public, as discovery starts there.
SOVD_PREFIX = "/vehicles/"
SOVD_PUBLIC_SUFFIX = "/sovd/version-info"
PUBLIC_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    }
)
PUBLIC_PREFIXES = ("/api/v1/docs/",)
# Browsers' EventSource cannot send headers, so a cyclic subscription's event stream also
# takes the access token as `?token=`; the access log redacts it (web.auth.websocket).
QUERY_TOKEN_PATH = re.compile(
    r"^/vehicles/[^/]+/sovd/v1/components/[^/]+/cyclic-subscriptions/[^/]+/events$"
)

HandlerFunc = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=HandlerFunc)


def not_authenticated() -> ApiError:
    return ApiError(
        401,
        "not_authenticated",
        "This endpoint needs a bearer access token in the Authorization header.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"No {what} with this id.")


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or not token.isascii():
        return None
    return token


def request_token(request: web.Request) -> str | None:
    """The bearer token, or `?token=` on the paths that take one."""
    token = bearer_token(request)
    if token is None and request.method == "GET" and QUERY_TOKEN_PATH.match(request.path):
        token = request.query.get("token") or None
    return token


def needs_authentication(request: web.Request) -> bool:
    path = request.path
    if request.method == "OPTIONS" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return False
    if path.startswith(SOVD_PREFIX):
        return not path.endswith(SOVD_PUBLIC_SUFFIX)
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _known_user(request: web.Request) -> AuthenticatedUser | None:
    return request.get(current_user_key)


async def authenticate_request(request: web.Request) -> AuthenticatedUser:
    """The request's user, from its bearer token; 401 problem when there is none or it is bad."""
    user = _known_user(request)
    if user is not None:
        return user
    return await _authenticate(request)


async def _authenticate(request: web.Request) -> AuthenticatedUser:
    token = request_token(request)
    if token is None:
        raise not_authenticated()
    user = await request.app[auth_service_key].authenticate(token)
    request[current_user_key] = user
    structlog.contextvars.bind_contextvars(user_id=user.log_id)
    return user


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything under /api/v1 needs a valid access token, except the public paths."""
    if needs_authentication(request):
        await _authenticate(request)
    return await handler(request)


def current_user(request: web.Request) -> AuthenticatedUser:
    """The user the auth middleware (or `require_role`) authenticated for this request."""
    user = _known_user(request)
    if user is None:
        raise not_authenticated()
    return user


def _checked_roles(roles: tuple[str, ...]) -> tuple[Role, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles must be some of {ROLES}, got {roles}")
    return tuple(r for r in ROLES if r in roles)


def ensure_role(user: AuthenticatedUser, *roles: Role) -> None:
    if user.role not in roles:
        raise ApiError(403, "forbidden", f"This needs the role {' or '.join(roles)}.")


def require_role(*roles: Role) -> Callable[[H], H]:
    """Handler decorator: authenticates (also outside /api/v1) and checks the user's role."""
    allowed = _checked_roles(roles)

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            ensure_role(await authenticate_request(request), *allowed)
            return await handler(request)

        return cast(H, guarded)

    return decorate


def ensure_visible(user: AuthenticatedUser, owner_id: UUID | None, what: str = "resource") -> None:
    """404, the same as for a missing object, unless the user owns it or is an admin.

    Pass `owner_id=None` for an object that does not exist, so both cases answer alike:
    `ensure_visible(user, command.user_id if command else None, "command")`.
    """
    if owner_id is None or (owner_id != user.user_id and not user.is_admin):
        raise not_found(what)


def owner_filter(user: AuthenticatedUser) -> UUID | None:
    """The `user_id` to restrict a list query to: None (everything) for admins."""
    return None if user.is_admin else user.user_id
