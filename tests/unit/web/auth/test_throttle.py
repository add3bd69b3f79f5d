from __future__ import annotations

import contextlib

import pytest

from web.auth.throttle import LoginThrottle, LoginThrottled


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_throttle(clock: FakeClock, per_account: int = 5, per_address: int = 10) -> LoginThrottle:
    return LoginThrottle(
        max_failures_per_account=per_account,
        max_failures_per_address=per_address,
        window_s=60,
        clock=clock,
    )


def refused(throttle: LoginThrottle, account: str, address: str) -> LoginThrottled:
    with pytest.raises(LoginThrottled) as caught:
        throttle.begin_attempt(account, address)
    return caught.value


def test_one_address_guessing_one_account_backs_off_exponentially(clock: FakeClock) -> None:
    throttle = make_throttle(clock)
    for _ in range(3):  # the free failures
        throttle.begin_attempt("alice", "10.6.6.6")

    waits = []
    for _ in range(4):
        waits.append(refused(throttle, "alice", "10.6.6.6").retry_after_s)
        clock.now += waits[-1]
        throttle.begin_attempt("alice", "10.6.6.6")
    assert waits == [1, 2, 4, 8]


def test_a_stranger_cannot_lock_the_owner_out(clock: FakeClock) -> None:
    throttle = make_throttle(clock)
    for _ in range(30):
        with contextlib.suppress(LoginThrottled):
            throttle.begin_attempt("alice", "10.6.6.6")
        clock.now += 1

    assert refused(throttle, "alice", "10.6.6.6").scope == "account"
    throttle.record_success(throttle.begin_attempt("alice", "192.168.1.20"))


def test_many_addresses_get_one_guess_each_once_the_account_is_under_attack(
    clock: FakeClock,
) -> None:
    throttle = make_throttle(clock, per_account=5)
    for n in range(5):
        throttle.begin_attempt("alice", f"10.0.0.{n}")

    # An address with failures of its own meets the account's back-off ...
    assert refused(throttle, "alice", "10.0.0.1").scope == "account"
    # ... and so does one that just failed elsewhere.
    throttle.begin_attempt("bob", "10.0.0.99")
    assert refused(throttle, "alice", "10.0.0.99").scope == "account"
    # A clean address still gets its one try.
    throttle.begin_attempt("alice", "10.0.0.200")


def test_an_address_spraying_accounts_is_refused(clock: FakeClock) -> None:
    throttle = make_throttle(clock, per_address=4)
    for name in ("a", "b", "c", "d"):
        throttle.begin_attempt(name, "10.6.6.6")

    caught = refused(throttle, "e", "10.6.6.6")
    assert caught.scope == "address"
    assert caught.retry_after_s == 60
    clock.now += 60
    throttle.begin_attempt("e", "10.6.6.6")


def test_the_right_password_forgives_the_account(clock: FakeClock) -> None:
    throttle = make_throttle(clock, per_account=2)
    throttle.begin_attempt("alice", "a")
    throttle.begin_attempt("alice", "b")
    throttle.record_success(throttle.begin_attempt("alice", "c"))

    throttle.begin_attempt("alice", "a")
    throttle.begin_attempt("alice", "a")


def test_concurrent_attempts_count_before_their_outcome_is_known(clock: FakeClock) -> None:
    throttle = make_throttle(clock)
    for _ in range(3):
        throttle.begin_attempt("alice", "a")

    assert refused(throttle, "alice", "a").scope == "account"


def test_tracked_keys_are_bounded(clock: FakeClock) -> None:
    throttle = LoginThrottle(
        max_failures_per_account=1,
        max_failures_per_address=1000,
        window_s=60,
        clock=clock,
        max_keys=10,
    )
    for n in range(50):
        throttle.begin_attempt(f"user{n}", "a")

    assert len(throttle._failures) <= 10
