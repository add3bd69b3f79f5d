"""Cyclic subscriptions of this process: kept in memory only (another process, or this one
after a restart, does not know them), bounded per user and per process, all ended at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from attrs import define, field

# How often a subscription reads its resource, at most (SOVD names, seconds).
INTERVALS_S = {"fast": 0.05, "normal": 0.2, "slow": 0.5}
MAX_PER_USER = 10
MAX_PER_PROCESS = 1000


@define(eq=False)
class CyclicSubscription:
    subscription_id: str
    vehicle_id: UUID
    component_id: str
    data_key: str
    owner_id: UUID
    interval: str
    expires_at: datetime
    # When the subscription ends, on the event loop's clock.
    deadline: float
    ended: asyncio.Event = field(factory=asyncio.Event)
    _stream_lock: asyncio.Lock = field(factory=asyncio.Lock)
    _newest_stream: asyncio.Event | None = None

    @property
    def period_s(self) -> float:
        return INTERVALS_S[self.interval]

    def seconds_left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    @contextlib.asynccontextmanager
    async def streaming(self) -> AsyncIterator[asyncio.Event]:
        """The right to read the resource. The event is set when a newer stream of the same
        subscription takes over (a browser's EventSource reconnecting): the older one ends
        after its read in flight, so one read at most is ever in flight."""
        replaced = asyncio.Event()
        if self._newest_stream is not None:
            self._newest_stream.set()
        self._newest_stream = replaced
        try:
            async with self._stream_lock:
                yield replaced
        finally:
            if self._newest_stream is replaced:
                self._newest_stream = None


class SubscriptionLimitReached(Exception):
    def __init__(self, message: str, *, per_user: bool, retry_after_s: float) -> None:
        super().__init__(message)
        self.per_user = per_user
        self.retry_after_s = retry_after_s


class SubscriptionRegistry:
    def __init__(
        self, *, max_per_user: int = MAX_PER_USER, max_per_process: int = MAX_PER_PROCESS
    ) -> None:
        self.max_per_user = max_per_user
        self.max_per_process = max_per_process
        self._by_id: dict[str, CyclicSubscription] = {}

    def _forget_expired(self) -> None:
        now = asyncio.get_running_loop().time()
        for subscription in [s for s in self._by_id.values() if s.deadline <= now]:
            self.remove(subscription.subscription_id)

    def add(self, subscription: CyclicSubscription) -> None:
        """Raises SubscriptionLimitReached when the owner or the process has all it may."""
        self._forget_expired()
        owned = [s for s in self._by_id.values() if s.owner_id == subscription.owner_id]
        if len(owned) >= self.max_per_user:
            raise SubscriptionLimitReached(
                f"A user may hold {self.max_per_user} cyclic subscriptions at a time.",
                per_user=True,
                retry_after_s=min(s.seconds_left() for s in owned),
            )
        if len(self._by_id) >= self.max_per_process:
            raise SubscriptionLimitReached(
                f"This server holds {self.max_per_process} cyclic subscriptions already.",
                per_user=False,
                retry_after_s=min(s.seconds_left() for s in self._by_id.values()),
            )
        self._by_id[subscription.subscription_id] = subscription

    def get(self, subscription_id: str) -> CyclicSubscription | None:
        self._forget_expired()
        return self._by_id.get(subscription_id)

    def owned_by(
        self, owner_id: UUID, vehicle_id: UUID, component_id: str
    ) -> list[CyclicSubscription]:
        self._forget_expired()
        return [
            s
            for s in self._by_id.values()
            if s.owner_id == owner_id
            and s.vehicle_id == vehicle_id
            and s.component_id == component_id
        ]

    def remove(self, subscription_id: str) -> bool:
        """Forgets the subscription and ends its stream."""
        subscription = self._by_id.pop(subscription_id, None)
        if subscription is None:
            return False
        subscription.ended.set()
        return True

    def end_all(self) -> None:
        for subscription_id in list(self._by_id):
            self.remove(subscription_id)

    def __len__(self) -> int:
        return len(self._by_id)
