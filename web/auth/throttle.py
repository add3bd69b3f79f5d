"""Login throttling: failed attempts per account and per client address, in a sliding window.

The counts live in this process. Several server processes each count on their own, so the
effective limit is the configured one times the number of processes; a restart forgets them.
The client address is the TCP peer: behind a reverse proxy every client shares the proxy's.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable

from attrs import frozen

MAX_TRACKED_KEYS = 100_000


class LoginThrottled(Exception):
    def __init__(self, scope: str, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins for this {scope}")
        self.scope, self.retry_after_s = scope, retry_after_s


@frozen
class Attempt:
    account_key: str
    address_key: str
    at: float


class LoginThrottle:
    """An attempt counts as a failure from the moment it starts until it is known to succeed,
    so concurrent guesses cannot slip past the limit while their passwords are being checked."""

    def __init__(
        self,
        *,
        max_failures_per_account: int,
        max_failures_per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._limits = {"account": max_failures_per_account, "address": max_failures_per_address}
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def begin_attempt(self, account: str, address: str) -> Attempt:
        """Raises LoginThrottled when either the account or the address is over its limit."""
        now = self._clock()
        keys = {"account": f"account:{account}", "address": f"address:{address}"}
        for scope, key in keys.items():
            failures = self._recent(key, now)
            if len(failures) >= self._limits[scope]:
                retry_after = failures[0] + self._window_s - now
                raise LoginThrottled(scope, max(1, math.ceil(retry_after)))
        for key in keys.values():
            self._failures.setdefault(key, deque()).append(now)
        self._evict_oldest_keys()
        return Attempt(keys["account"], keys["address"], now)

    def record_success(self, attempt: Attempt) -> None:
        self._failures.pop(attempt.account_key, None)
        failures = self._failures.get(attempt.address_key)
        if failures is not None and attempt.at in failures:
            failures.remove(attempt.at)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _evict_oldest_keys(self) -> None:
        excess = len(self._failures) - self._max_keys
        if excess > 0:
            for key in list(itertools.islice(self._failures, excess)):
                del self._failures[key]
