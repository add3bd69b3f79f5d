from __future__ import annotations

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


def make_throttle(clock: FakeClock, per_account: int = 3, per_address: int = 10) -> LoginThrottle:
    return LoginThrottle(
        max_failures_per_account=per_account,
        max_failures_per_address=per_address,
        window_s=60,
        clock=clock,
    )


def test_an_account_is_throttled_after_its_failures_until_the_oldest_leaves_the_window(
    clock: FakeClock,
) -> None:
    throttle = make_throttle(clock)
    for step in range(3):
        throttle.begin_attempt("alice", "10.0.0.1")
        clock.now += 10 if step < 2 else 5

    with pytest.raises(LoginThrottled) as caught:
        throttle.begin_attempt("alice", "10.0.0.2")
    assert caught.value.scope == "account"
    assert caught.value.retry_after_s == 35  # first failure at 1000, now 1025, window 60

    clock.now = 1060.0
    throttle.begin_attempt("alice", "10.0.0.1")


def test_success_clears_the_account_but_not_other_failures_of_the_address(
    clock: FakeClock,
) -> None:
    throttle = make_throttle(clock, per_account=2, per_address=3)
    throttle.begin_attempt("alice", "10.0.0.1")
    throttle.begin_attempt("bob", "10.0.0.1")
    throttle.record_success(throttle.begin_attempt("alice", "10.0.0.1"))

    throttle.begin_attempt("alice", "10.0.0.9")
    throttle.begin_attempt("alice", "10.0.0.9")  # alice's earlier failure was forgotten
    throttle.begin_attempt("dave", "10.0.0.1")  # the address holds 3 failures now
    with pytest.raises(LoginThrottled) as caught:
        throttle.begin_attempt("carol", "10.0.0.1")
    assert caught.value.scope == "address"


def test_concurrent_attempts_count_before_their_outcome_is_known(clock: FakeClock) -> None:
    throttle = make_throttle(clock, per_account=2)
    throttle.begin_attempt("alice", "a")
    throttle.begin_attempt("alice", "b")

    with pytest.raises(LoginThrottled):
        throttle.begin_attempt("alice", "c")


def test_retry_after_is_at_least_one_second(clock: FakeClock) -> None:
    throttle = make_throttle(clock, per_account=1)
    throttle.begin_attempt("alice", "a")
    clock.now += 59.9

    with pytest.raises(LoginThrottled) as caught:
        throttle.begin_attempt("alice", "a")
    assert caught.value.retry_after_s == 1


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
