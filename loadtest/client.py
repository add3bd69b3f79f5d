"""A lean HTTP/1.1 client for `sovd-sim loadtest`.

A general client spends more CPU per request than the server it measures, so on a small
machine the load generator, not the server, would set the ceiling. This one keeps a fixed
pool of keep-alive connections, sends prepared request bytes, and parses only what the load
test reads: the status code and a `Content-Length` body. One request per connection at a time
(no pipelining); requests wait in one FIFO queue for a free connection, and their latency is
counted from when they were queued, so a slow server shows up as latency."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

# (status code or 0 for a lost connection, response body, when the request was queued)
Answer = Callable[[int, bytes, float], None]


class LeanConnection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses one response, asks for the next."""

    def __init__(self, pool: LeanPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._current: tuple[float, Answer] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._pool.ready(self)

    def send(self, request: bytes, queued_at: float, answer: Answer) -> None:
        assert self._transport is not None
        self._current = (queued_at, answer)
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._current is not None:
            parsed = _parse_response(self._buffer)
            if parsed is None:
                return
            status, body, used = parsed
            del self._buffer[:used]
            queued_at, answer = self._current
            self._current = None
            answer(status, body, queued_at)
            self._pool.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._current is not None:
            queued_at, answer = self._current
            self._current = None
            answer(0, b"", queued_at)
        self._pool.lost(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _parse_response(buffer: bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) of the first complete response in `buffer`, or None."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buffer[:head_end]).decode("latin-1")
    status_line, _, header_text = head.partition("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length = 0
    for line in header_text.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding":
            raise ValueError("chunked responses are not supported by the load client")
    end = head_end + 4 + length
    if len(buffer) < end:
        return None
    return status, bytes(buffer[head_end + 4 : end]), end


class LeanPool:
    """A fixed number of connections to one server and a FIFO of requests waiting for one."""

    def __init__(self, url: str, connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the load client speaks plain http only, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.connections = connections
        self._idle: deque[LeanConnection] = deque()
        self._waiting: deque[tuple[bytes, float, Answer]] = deque()
        self._open: set[LeanConnection] = set()
        self._closing = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            _, connection = await loop.create_connection(
                lambda: LeanConnection(self), self.host, self.port
            )
            self._open.add(connection)

    def request(self, request: bytes, queued_at: float, answer: Answer) -> None:
        if self._idle:
            self._idle.popleft().send(request, queued_at, answer)
        else:
            self._waiting.append((request, queued_at, answer))

    def ready(self, connection: LeanConnection) -> None:
        if self._waiting:
            connection.send(*self._waiting.popleft())
        else:
            self._idle.append(connection)

    def lost(self, connection: LeanConnection) -> None:
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        if not self._closing:
            asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: LeanConnection(self), self.host, self.port
            )
        except OSError:
            while self._waiting:
                _, queued_at, answer = self._waiting.popleft()
                answer(0, b"", queued_at)
            return
        self._open.add(connection)

    async def close(self) -> None:
        self._closing = True
        connections = list(self._open)
        for connection in connections:
            connection.close()
        await asyncio.gather(*(c.closed for c in connections))


def post_request(host: str, path: str, token: str, body: bytes) -> bytes:
    """The bytes of one JSON POST with a bearer token."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body
