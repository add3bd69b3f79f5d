"""The HTTP server around the app: a bound on open connections, and requests that aiohttp
refuses before the app sees them (a malformed request line, headers too long) answered as
problem+json with a request id and logged as one structured line.

aiohttp builds its per-connection protocol in `Server.__call__`; `GuardedRunner` gives the
server a subclass that builds `GuardedRequestHandler` instead. The timeouts themselves are
aiohttp's: its keep-alive timer also closes a connection that sends nothing, or stops in the
middle of its headers, and the app bounds body reads (`web.bodies`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

import orjson
import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from sovd.records import new_id
from web.problems import PROBLEM_CONTENT_TYPE, Problem

log = structlog.get_logger(__name__)

OVERLOADED_RETRY_AFTER_S = 1


class GuardedRequestHandler(RequestHandler):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        manager = self._manager
        if (
            isinstance(manager, GuardedServer)
            and len(manager.connections) > manager.max_connections
        ):
            self._refuse_overload(transport, manager.max_connections)

    def _refuse_overload(self, transport: Any, limit: int) -> None:
        """Past the bound, a connection gets 503 before its request is read, and is closed."""
        request_id = new_id().hex
        body = orjson.dumps(
            Problem(
                503,
                "too_many_connections",
                "The server holds as many connections as it may; retry shortly.",
            ).body("", request_id)
        )
        head = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Retry-After: {OVERLOADED_RETRY_AFTER_S}\r\n"
            f"X-Request-ID: {request_id}\r\n"
            "Connection: close\r\n\r\n"
        )
        transport.write(head.encode() + body)
        log.warning("connection_refused", reason="too_many_connections", limit=limit)
        self.force_close()
        transport.close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """What aiohttp answers when it cannot hand the request to the app."""
        request_id = new_id().hex
        if status >= 500:
            log.error(
                "request_failed_outside_app",
                status=status,
                request_id=request_id,
                error=repr(exc) if exc is not None else None,
            )
        else:
            log.info(
                "request_rejected",
                status=status,
                request_id=request_id,
                reason=_reason(exc, message),
                remote=request.remote,
            )
        detail = _reason(exc, message) if status < 500 else "An unexpected error occurred."
        code = HTTPStatus(status).phrase.lower().replace(" ", "_")
        response = web.Response(
            status=status,
            body=orjson.dumps(Problem(status, code, detail).body("", request_id)),
            content_type=PROBLEM_CONTENT_TYPE,
            headers={"X-Request-ID": request_id},
        )
        response.force_close()
        return response


def _reason(exc: BaseException | None, message: str | None) -> str:
    text = message or (str(exc) if exc is not None else "") or "The request is malformed."
    # The parser's messages can quote raw bytes of the request: keep them readable.
    return text.encode("ascii", "backslashreplace").decode("ascii")[:200]


class GuardedServer(web.Server):
    max_connections = 10_000

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedRequestHandlers, at most `max_connections`."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Server keeps its settings in attributes; only the protocol it builds changes.
        server.__class__ = GuardedServer
        cast(GuardedServer, server).max_connections = self._max_connections
        return server
