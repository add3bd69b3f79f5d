"""Login throttling that a stranger cannot turn against a user (OWASP authentication
guidance): failures count per client address and per account-and-address pair, and an
account's back-off applies only to addresses that have failed recently.

- An address past `max_failures_per_address` failures in the window is refused (one source
  spraying many accounts).
- An account-and-address pair backs off exponentially: after `free_failures` failures each
  further attempt waits 1, 2, 4, ... seconds (at most the window) after the last failure.
- An account with `max_failures_per_account` recent failures from all addresses backs off
  the same way, but only for addresses with failures of their own in the window: its owner,
  typing the right password from a clean address, still gets in, while a many-address guesser
  gets one try per address.

The counts live in this process. Several server processes each count on their own; a restart
forgets them. The client address is the TCP peer: behind a reverse proxy every client shares
the proxy's.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable

from attrs import frozen

MAX_TRACKED_KEYS = 100_000
FREE_FAILURES_PER_PAIR = 3


class LoginThrottled(Exception):
    def __init__(self, scope: str, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins for this {scope}")
        self.scope, self.retry_after_s = scope, retry_after_s


@frozen
class Attempt:
    keys: tuple[str, str, str]
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
        free_failures_per_pair: int = FREE_FAILURES_PER_PAIR,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._max_per_account = max_failures_per_account
        self._max_per_address = max_failures_per_address
        self._free_per_pair = free_failures_per_pair
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def begin_attempt(self, account: str, address: str) -> Attempt:
        """Raises LoginThrottled with the scope that refused and when to retry."""
        now = self._clock()
        account_key, address_key = f"account:{account}", f"address:{address}"
        pair_key = f"pair:{account}\x1f{address}"
        by_address = self._recent(address_key, now)
        if len(by_address) >= self._max_per_address:
            raise LoginThrottled("address", self._retry_after(by_address[0] + self._window_s, now))
        self._back_off("account", self._recent(pair_key, now), self._free_per_pair, now)
        if by_address:
            account_failures = self._recent(account_key, now)
            self._back_off("account", account_failures, self._max_per_account, now)
        for key in (account_key, address_key, pair_key):
            self._failures.setdefault(key, deque()).append(now)
        self._evict_oldest_keys()
        return Attempt((account_key, address_key, pair_key), now)

    def record_success(self, attempt: Attempt) -> None:
        """The right password: the account's failures are forgiven, and the attempt itself
        was none for its address."""
        account_key, address_key, pair_key = attempt.keys
        self._failures.pop(pair_key, None)
        self._failures.pop(account_key, None)
        failures = self._failures.get(address_key)
        if failures is not None and attempt.at in failures:
            failures.remove(attempt.at)

    def _back_off(self, scope: str, failures: deque[float], free: int, now: float) -> None:
        """Past `free` failures, the next attempt waits 1, 2, 4, ... s after the last one."""
        extra = len(failures) - free
        if extra < 0:
            return
        wait = min(self._window_s, float(2 ** min(extra, 30)))
        allowed_at = failures[-1] + wait
        if now < allowed_at:
            raise LoginThrottled(scope, self._retry_after(allowed_at, now))

    @staticmethod
    def _retry_after(at: float, now: float) -> int:
        return max(1, math.ceil(at - now))

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
