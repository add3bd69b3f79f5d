"""WebSocket authentication: the access token from `?token=` or `Sec-WebSocket-Protocol:
bearer, <token>`, the Origin checked against the configured allow-list, 1008 on failure."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import WSCloseCode, hdrs, web

from web.auth.tokens import AuthenticatedUser
from web.problems import ApiError
from web.typedefs import auth_service_key, config_key, current_user_key

log = structlog.get_logger(__name__)

BEARER_PROTOCOL = "bearer"
# A close frame's reason must fit in 123 bytes (RFC 6455 §5.5).
MAX_CLOSE_REASON_BYTES = 123

Authorize = Callable[[AuthenticatedUser], Awaitable[None]]
QUERY_TOKEN = re.compile(r"([?&]token=)[^&\s\"]+")


class QueryTokenRedactor(logging.Filter):
    """Access logs print the query string, where WebSocket clients put their token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = QUERY_TOKEN.sub(r"\1***", record.msg)
        for name, value in vars(record).items():
            if name != "msg" and isinstance(value, str) and "token=" in value:
                setattr(record, name, QUERY_TOKEN.sub(r"\1***", value))
        return True


def redact_tokens_in_access_log(logger: logging.Logger | None = None) -> None:
    target = logger or logging.getLogger("aiohttp.access")
    if not any(isinstance(f, QueryTokenRedactor) for f in target.filters):
        target.addFilter(QueryTokenRedactor())


def websocket_token(request: web.Request) -> tuple[str | None, bool]:
    """The token and whether it came as a subprotocol (then the answer must name `bearer`)."""
    offered = ",".join(request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()))
    protocols = [p.strip() for p in offered.split(",") if p.strip()]
    if len(protocols) == 2 and protocols[0].lower() == BEARER_PROTOCOL:
        return protocols[1], True
    return request.query.get("token") or None, False


def origin_allowed(request: web.Request, allowed: Sequence[str]) -> bool:
    """No Origin (a non-browser client), our own origin, or one on the allow-list."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    origin = origin.rstrip("/")
    return (
        "*" in allowed
        or origin in (o.rstrip("/") for o in allowed)
        or origin == f"{request.scheme}://{request.host}"
    )


def _close_reason(reason: str) -> bytes:
    cut = reason.encode()[:MAX_CLOSE_REASON_BYTES]
    return cut.decode(errors="ignore").encode()


async def _refusal(
    request: web.Request, token: str | None, authorize: Authorize | None
) -> tuple[str, AuthenticatedUser | None]:
    if not origin_allowed(request, request.app[config_key].server.cors_origins):
        return "origin not allowed", None
    if token is None:
        return "missing access token", None
    try:
        user = await request.app[auth_service_key].authenticate(token)
    except ApiError:
        return "invalid access token", None
    if authorize is not None:
        try:
            await authorize(user)
        except ApiError as exc:
            return exc.detail, None
    return "", user


async def accept_websocket(
    request: web.Request,
    *,
    authorize: Authorize | None = None,
    heartbeat: float | None = 30.0,
) -> tuple[web.WebSocketResponse, AuthenticatedUser | None]:
    """Upgrades the request and authenticates it.

    `authorize` runs object-level checks (e.g. `ensure_visible`); an ApiError it raises closes
    the socket with 1008 and the error's detail. When the user is None the socket is already
    closed and the handler only returns it:

        ws, user = await accept_websocket(request, authorize=may_see_command)
        if user is None:
            return ws
    """
    token, as_protocol = websocket_token(request)
    reason, user = await _refusal(request, token, authorize)
    ws = web.WebSocketResponse(
        protocols=(BEARER_PROTOCOL,) if as_protocol else (), heartbeat=heartbeat
    )
    await ws.prepare(request)
    if user is None:
        log.info("websocket_refused", path=request.path, reason=reason)
        await ws.close(
            code=WSCloseCode.POLICY_VIOLATION,
            message=_close_reason(reason),
        )
        return ws, None
    request[current_user_key] = user
    structlog.contextvars.bind_contextvars(user_id=str(user.user_id))
    return ws, user
