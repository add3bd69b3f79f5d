"""WebSocket streams: one command's replies, one vehicle's activity, the whole fleet's.

A command stream subscribes to live events first, then sends what is stored, then the live
events the snapshot did not hold: no gap, no duplicate. It closes with 1000 after the
terminal event. When the bus loses events (outage, resubscription) it re-reads storage; when
storage cannot be read, the stream closes with 1013 and the client reconnects to catch up.
An event can also be lost without the hub noticing, so a stream that hears nothing for a
while re-reads storage too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from db.events import BusUnavailable
from db.repositories import StoreUnavailable
from sovd.records import COMMAND_STATUSES, TERMINAL_STATUSES
from web.auth.guards import ensure_role, ensure_visible
from web.auth.tokens import AuthenticatedUser
from web.auth.websocket import accept_websocket
from web.commands.pipeline import (
    response_channel,
    response_message,
    status_message,
)
from web.hub import RESYNC, Filter, Listener
from web.problems import ApiError, FieldProblem
from web.typedefs import actors_key, hub_key, metrics_key, open_websockets_key, store_key

log = structlog.get_logger(__name__)

FINISHED = "command finished"
# The fleet feed carries every vehicle's events: a deeper queue before a reader counts as slow.
FLEET_FEED_QUEUE = 100_000
# A batched feed sends what is queued as one JSON array per frame, up to this many events.
MAX_BATCH = 500
RESYNC_MESSAGE = {"event": "resync", "reason": "events may have been missed"}
TOO_SLOW = "client too slow: events were dropped; reconnect to catch up from storage"
UNAVAILABLE = "the store or event bus is unavailable; reconnect later"
FAILED = "internal error; reconnect"
# A command stream that has heard nothing for this long re-reads storage. Events can be lost
# without a resync marker: a cluster node can die between committing a command's terminal
# status and publishing it, and Redis pub/sub drops what is published while a subscriber
# reconnects; the store then holds a result its client would wait for forever. With the
# re-read, that client gets it this long after the last event it heard; a stream quiet for
# good reason (a command queued behind others, a long routine) costs two store reads per
# period, and one whose events flow costs none.
QUIET_RECHECK_S = 10.0
# What `_next_or_quiet` answers when QUIET_RECHECK_S passed without a message.
QUIET: dict[str, Any] = {"event": "__quiet__"}


def _parse_id(request: web.Request, name: str, what: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise ApiError(404, "not_found", f"No {what} with this id.") from None


async def send_json(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    await ws.send_frame(orjson.dumps(message), WSMsgType.TEXT)


async def _close(
    ws: web.WebSocketResponse, reader: asyncio.Task[None], code: int, reason: str
) -> None:
    """Stops reading first, so close() itself can read the client's closing handshake."""
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await ws.close(code=code, message=reason.encode())


@contextlib.asynccontextmanager
async def _open_stream(
    request: web.Request, ws: web.WebSocketResponse, listener: Listener
) -> AsyncIterator[asyncio.Task[None]]:
    """Counts the connection, lists it for shutdown and reads from the client meanwhile;
    the listener ends when the client leaves. A failure ends the stream with a close code:
    1013 when the store or bus is unavailable, 1011 for anything else."""
    gauge = request.app[metrics_key].websocket_connections
    open_sockets = request.app[open_websockets_key]
    gauge.inc()
    open_sockets.add(ws)
    reader = asyncio.create_task(_drain_client(ws))
    reader.add_done_callback(lambda _: listener.end())
    try:
        yield reader
    except (StoreUnavailable, BusUnavailable) as exc:
        log.warning("websocket_unavailable", path=request.path, error=str(exc))
        await _close(ws, reader, WSCloseCode.TRY_AGAIN_LATER, UNAVAILABLE)
    except ConnectionResetError:
        log.info("websocket_client_gone", path=request.path)
    except Exception:
        # The upgrade went out: a close frame is all the client can still be told.
        log.exception("websocket_failed", path=request.path)
        await _close(ws, reader, WSCloseCode.INTERNAL_ERROR, FAILED)
    finally:
        reader.cancel()
        open_sockets.discard(ws)
        gauge.dec()


async def close_websockets(app: web.Application) -> None:
    """on_shutdown: streams end with 1001 instead of holding the shutdown up."""
    sockets: set[web.WebSocketResponse] = app[open_websockets_key]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def _drain_client(ws: web.WebSocketResponse) -> None:
    """Reads (and ignores) what the client sends, so a close from it is noticed."""
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            break


class CommandStream:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse, command_id: UUID):
        self.store = request.app[store_key]
        self.ws = ws
        self.command_id = command_id
        self.last_sequence = 0
        # The furthest status sent so far (pending < in_progress), so a status is never
        # repeated nor followed by an earlier one.
        self.status_rank = -1
        self.sent = 0

    async def _send(self, message: dict[str, Any]) -> None:
        await send_json(self.ws, message)
        self.sent += 1

    async def catch_up(self) -> bool:
        """Sends what storage holds beyond what was sent; True once the command is over.

        Status is read before responses: a terminal status is committed with or after the
        last chunk, so the responses read next are complete."""
        command = await self.store.commands.get(self.command_id)
        if command is None:  # deleted with its vehicle's fleet: nothing more will come
            return True
        if command.status not in TERMINAL_STATUSES and self._advances(command.status):
            await self._send(
                status_message(
                    command.command_id,
                    command.vehicle_id,
                    command.status,
                    None,
                    command_name=command.command_name,
                ),
            )
        for response in await self.store.responses.list_for_command(self.command_id):
            if response.sequence_number > self.last_sequence:
                await self._send(response_message(response, command.vehicle_id))
                self.last_sequence = response.sequence_number
        if command.status in TERMINAL_STATUSES:
            await self._send(
                status_message(
                    command.command_id,
                    command.vehicle_id,
                    command.status,
                    command.completed_at,
                    command.error_message,
                    command.command_name,
                ),
            )
            return True
        return False

    async def forward(self, message: dict[str, Any]) -> bool:
        """Sends one live event unless the snapshot had it; True after the terminal one."""
        if message["event"] == "response":
            if message["sequence_number"] <= self.last_sequence:
                return False
            self.last_sequence = message["sequence_number"]
        elif message.get("status") not in TERMINAL_STATUSES and not self._advances(
            message.get("status")
        ):
            return False
        await self._send(message)
        return message["event"] == "error" or message.get("status") in TERMINAL_STATUSES

    async def recheck(self) -> bool:
        """`catch_up` after a quiet period: sends what was stored but never announced. A store
        that cannot be read now is no reason to end a stream that events may still reach (they
        are published only after their rows are committed): the next quiet period retries."""
        before = self.sent
        try:
            finished = await self.catch_up()
        except StoreUnavailable as exc:
            log.warning(
                "command_stream_recheck_failed", command_id=str(self.command_id), error=str(exc)
            )
            return False
        if self.sent > before:
            log.info(
                "command_stream_missed_events_sent",
                command_id=str(self.command_id),
                count=self.sent - before,
                finished=finished,
            )
        return finished

    def _advances(self, status: object) -> bool:
        """True (and remembered) when `status` comes after every status sent so far."""
        rank = _PROGRESS.get(status, -1) if isinstance(status, str) else -1
        if rank <= self.status_rank:
            return False
        self.status_rank = rank
        return True


_PROGRESS = {"pending": 0, "in_progress": 1}


async def command_stream(request: web.Request) -> web.WebSocketResponse:
    command_id = _parse_id(request, "command_id", "command")
    store = request.app[store_key]

    async def may_see(user: AuthenticatedUser) -> None:
        ensure_role(user, "engineer", "admin")
        command = await store.commands.get(command_id)
        ensure_visible(user, command.user_id if command else None, "command")

    hub = request.app[hub_key]
    listener = hub.listen(response_channel(command_id))
    try:
        ws, user = await accept_websocket(request, authorize=may_see)
        if user is None:
            return ws
        async with _open_stream(request, ws, listener) as reader:
            await _stream_command(CommandStream(request, ws, command_id), listener, reader)
        return ws
    finally:
        hub.forget(listener)


async def _stream_command(
    stream: CommandStream, listener: Listener, reader: asyncio.Task[None]
) -> None:
    finished = await stream.catch_up()
    while not finished:
        message = await _next_or_quiet(listener)
        if message is None:
            if not reader.done():
                await _close(stream.ws, reader, WSCloseCode.TRY_AGAIN_LATER, TOO_SLOW)
            return
        if message is QUIET:
            finished = await stream.recheck()
        elif message is RESYNC:
            finished = await stream.catch_up()
        else:
            finished = await stream.forward(message)
    await _close(stream.ws, reader, WSCloseCode.OK, FINISHED)


async def _next_or_quiet(listener: Listener) -> dict[str, Any] | None:
    """The listener's next message, or QUIET once QUIET_RECHECK_S passed without one.

    Only a wait is timed: a queued message is taken without arming a timer. A timeout only
    interrupts the wait; the message that arrives meanwhile stays queued for the next call.
    (`asyncio.timeout`, not `wait_for`, which on Python 3.11 can swallow a cancellation.)"""
    if listener.pending:
        return await listener.next()
    try:
        async with asyncio.timeout(QUIET_RECHECK_S):
            return await listener.next()
    except TimeoutError:
        return QUIET


def _status_filter(request: web.Request) -> frozenset[str] | None:
    """`?status=completed,failed` keeps only those command statuses (e.g. for load tests)."""
    wanted = request.query.get("status")
    if not wanted:
        return None
    statuses = frozenset(part.strip() for part in wanted.split(","))
    unknown = statuses - set(COMMAND_STATUSES)
    if unknown:
        raise ApiError(
            422,
            "validation_failed",
            "The query is not valid.",
            errors=[FieldProblem("status", f"unknown status {', '.join(sorted(unknown))}")],
        )
    return statuses


def _status_kept(statuses: frozenset[str] | None) -> Filter | None:
    if statuses is None:
        return None
    return lambda message: message.get("status") in statuses


def _batched(request: web.Request) -> bool:
    """`?batch=true`: frames carry JSON arrays of events (a browser then handles one task
    per frame instead of one per event)."""
    value = request.query.get("batch", "false").lower()
    if value not in ("true", "1", "false", "0"):
        raise ApiError(
            422,
            "validation_failed",
            "The query is not valid.",
            errors=[FieldProblem("batch", "must be true or false")],
        )
    return value in ("true", "1")


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    return RESYNC_MESSAGE if message is RESYNC else message


async def _feed(
    request: web.Request, listener: Listener, ws: web.WebSocketResponse, batched: bool = False
) -> None:
    async with _open_stream(request, ws, listener) as reader:
        if not batched:
            listener.send_directly(lambda message: send_json(ws, _shown(message)))
        while True:
            message = await listener.next()
            if message is None:
                if not reader.done():
                    await _close(ws, reader, WSCloseCode.TRY_AGAIN_LATER, TOO_SLOW)
                return
            if batched:
                batch = [message, *listener.take_queued(MAX_BATCH - 1)]
                await ws.send_frame(orjson.dumps([_shown(m) for m in batch]), WSMsgType.TEXT)
            else:
                await send_json(ws, _shown(message))


async def vehicle_feed(request: web.Request) -> web.WebSocketResponse:
    """Every command and status change of one vehicle, live (any signed-in role)."""
    vehicle_id = _parse_id(request, "vehicle_id", "vehicle")
    actors = request.app[actors_key]

    async def vehicle_exists(user: AuthenticatedUser) -> None:
        if vehicle_id not in actors:
            raise ApiError(404, "vehicle_not_found", "No vehicle with this id.")

    keep = _status_kept(_status_filter(request))
    hub = request.app[hub_key]
    listener = hub.listen_vehicle(vehicle_id, keep)
    try:
        ws, user = await accept_websocket(request, authorize=vehicle_exists)
        if user is not None:
            await _feed(request, listener, ws)
        return ws
    finally:
        hub.forget(listener)


async def fleet_feed(request: web.Request) -> web.WebSocketResponse:
    """Every vehicle's activity, for dashboards and load tests (admins); `?batch=true` sends
    arrays of events."""

    async def is_admin(user: AuthenticatedUser) -> None:
        ensure_role(user, "admin")

    keep = _status_kept(_status_filter(request))
    batched = _batched(request)
    hub = request.app[hub_key]
    listener = hub.listen_everything(capacity=FLEET_FEED_QUEUE, keep=keep)
    try:
        ws, user = await accept_websocket(request, authorize=is_admin)
        if user is not None:
            await _feed(request, listener, ws, batched)
        return ws
    finally:
        hub.forget(listener)
