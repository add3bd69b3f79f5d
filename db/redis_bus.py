"""Redis pub/sub event bus."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import hiredis
import orjson
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.events import BusUnavailable, Event

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
CONNECT_TIMEOUT_S = 2.0
HEALTH_INTERVAL_S = 5.0
READ_SIZE = 1 << 16


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))


class RedisBus:
    """Publishes and subscribes on raw connections read with hiredis (one write carries a
    whole batch of PUBLISH commands); the redis-py client answers readiness pings."""

    kind = "redis"

    def __init__(self, client: redis.Redis, url: str) -> None:
        self.client = client
        self._url = url
        # False when this process hands its own events to its subscribers directly: they are
        # then tagged with `origin` on the wire, and this bus's subscriptions skip them.
        self.echo = True
        self._origin_suffix = b',"o":"%s"}' % secrets.token_hex(6).encode()
        self._publisher: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._publish_parser = hiredis.Reader()
        self._publishing = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> RedisBus:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        return cls(client, url)

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publishes in order in one round trip, on a new connection when Redis closed the
        last one; a connection that fails is opened anew next time."""
        if not events:
            return
        async with self._publishing:
            if self._publisher is not None and _closed_by_peer(*self._publisher):
                # Redis restarted while this connection sat idle: a batch written to it
                # would be lost, so it goes out on a new one.
                self._drop_publisher()
            try:
                if self._publisher is None:
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        reader, writer = await _connect(self._url)
                    self._publish_parser = hiredis.Reader()
                    await _authenticate(reader, writer, self._url, self._publish_parser)
                    self._publisher = reader, writer
                reader, writer = self._publisher
                writer.write(
                    b"".join(
                        _publish_command(channel.encode(), self._payload(message))
                        for channel, message in events
                    )
                )
                for _ in events:
                    await _reply(reader, self._publish_parser)
            except (OSError, TimeoutError, BusUnavailable) as exc:
                self._drop_publisher()
                raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
            except BaseException:
                self._drop_publisher()  # cancelled mid-batch: replies would be misread
                raise

    def _payload(self, message: dict[str, Any]) -> bytes:
        payload = orjson.dumps(message)
        return payload if self.echo else payload[:-1] + self._origin_suffix

    def _drop_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher[1].close()
            self._publisher = None

    @asynccontextmanager
    async def subscribe(self, *patterns: str) -> AsyncIterator[AsyncIterator[Event]]:
        """A pattern subscription on a connection of its own, read with hiredis directly:
        one read takes every message that has arrived, and a lost connection or a
        cancellation surfaces at once instead of inside redis-py's retries."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await _connect(self._url)
        except (OSError, TimeoutError) as exc:
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
        try:
            await _handshake(reader, writer, self._url, patterns)
            yield _messages(reader, writer, None if self.echo else self._origin_suffix)
        except (OSError, TimeoutError) as exc:
            raise BusUnavailable(f"Redis subscription lost: {type(exc).__name__}") from exc
        finally:
            writer.close()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except REDIS_DOWN as exc:
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        self._drop_publisher()
        await self.client.aclose()


def _closed_by_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    return writer.is_closing() or reader.at_eof() or reader.exception() is not None


def _publish_command(channel: bytes, payload: bytes) -> bytes:
    """`PUBLISH channel payload` in RESP, made in one step (it runs once per event)."""
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(channel),
        channel,
        len(payload),
        payload,
    )


def _command(*parts: str | bytes) -> bytes:
    encoded = [p.encode() if isinstance(p, str) else p for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return await asyncio.open_unix_connection(parts.path)
    return await asyncio.open_connection(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        ssl=True if parts.scheme == "rediss" else None,
    )


async def _reply(reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
    while (item := parser.gets()) is False:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            data = await reader.read(READ_SIZE)
        if not data:
            raise ConnectionResetError("Redis closed the connection")
        parser.feed(data)
    if isinstance(item, hiredis.ReplyError):
        raise BusUnavailable(f"Redis refused: {item}")
    return item


async def _authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    url: str,
    parser: hiredis.Reader,
) -> None:
    parts = urlsplit(url)
    if parts.password:
        credentials = (
            [unquote(parts.username), unquote(parts.password)]
            if parts.username
            else [unquote(parts.password)]
        )
        writer.write(_command("AUTH", *credentials))
        await _reply(reader, parser)


async def _handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    url: str,
    patterns: tuple[str, ...],
) -> None:
    parser = hiredis.Reader()
    await _authenticate(reader, writer, url, parser)
    writer.write(_command("PSUBSCRIBE", *patterns))
    for _ in patterns:
        await _reply(reader, parser)


async def _messages(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, own_suffix: bytes | None
) -> AsyncIterator[Event]:
    """Published messages until the connection fails; a quiet link is probed with PING.
    Messages ending in `own_suffix` (this process published them) are skipped unparsed;
    another process's origin tag is dropped.

    Reads are bounded with asyncio.timeout, not wait_for: on Python 3.11, wait_for returns
    the data of a read that completes as the task is cancelled and drops the cancellation,
    so a busy subscription could not be stopped."""
    parser = hiredis.Reader()
    probing = False
    while True:
        try:
            async with asyncio.timeout(HEALTH_INTERVAL_S):
                data = await reader.read(READ_SIZE)
        except TimeoutError:
            if probing:
                raise BusUnavailable("Redis did not answer a PING") from None
            writer.write(_command("PING"))
            probing = True
            continue
        if not data:
            raise BusUnavailable("Redis closed the subscription")
        probing = False
        parser.feed(data)
        while (item := parser.gets()) is not False:
            if isinstance(item, list) and item and item[0] == b"pmessage":
                payload = item[3]
                if own_suffix is not None and payload.endswith(own_suffix):
                    continue
                message = orjson.loads(payload)
                message.pop("o", None)
                yield item[2].decode(), message
