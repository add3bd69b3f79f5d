"""Redis pub/sub event bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.events import BusUnavailable, Event

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))


class RedisBus:
    kind = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> RedisBus:
        return cls(
            redis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
            )
        )

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
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*patterns)
        except REDIS_DOWN as exc:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise BusUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc

        async def events() -> AsyncIterator[Event]:
            try:
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
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
