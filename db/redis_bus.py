"""Redis pub/sub event bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.events import BusUnavailable, Event

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
POLL_INTERVAL_S = 1.0


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))


class RedisBus:
    """Publishes through a pooled client; subscribes through a second one that never
    retries on its own, so a lost connection (or a cancellation) reaches the subscriber's
    supervisor instead of being retried, or swallowed, inside redis-py."""

    kind = "redis"

    def __init__(self, client: redis.Redis, subscriber: redis.Redis | None = None) -> None:
        self.client = client
        self._subscriber = subscriber or client

    @classmethod
    def from_url(cls, url: str) -> RedisBus:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        subscriber = redis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=5,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, subscriber)

    async def publish_many(self, events: Sequence[Event]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for channel, message in events:
                    pipe.publish(channel, orjson.dumps(message))
                await pipe.execute()
        except REDIS_DOWN as exc:
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc

    @asynccontextmanager
    async def subscribe(self, *patterns: str) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*patterns)
        except REDIS_DOWN as exc:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc

        async def events() -> AsyncIterator[Event]:
            try:
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=POLL_INTERVAL_S
                    )
                    if message is not None and message["type"] == "pmessage":
                        yield message["channel"].decode(), orjson.loads(message["data"])
            except REDIS_DOWN as exc:
                raise BusUnavailable(f"Redis subscription lost: {type(exc).__name__}") from exc

        try:
            yield events()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except REDIS_DOWN as exc:
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self.client.aclose()
        if self._subscriber is not self.client:
            await self._subscriber.aclose()
