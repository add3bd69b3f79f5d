"""Many callers, one lookup: what callers waiting together share, and what they never share
(an answer from before they asked, another group's failure)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from db.coalesce import CoalescedLookups


class Table:
    """A store stand-in whose lookups the test releases one at a time."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.asked: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_next: Exception | None = None
        self._asked_more = asyncio.Condition()

    async def until_asked(self, times: int) -> None:
        async with self._asked_more:
            await self._asked_more.wait_for(lambda: len(self.asked) >= times)

    async def lookup(self, keys: Sequence[str]) -> Mapping[str, int]:
        async with self._asked_more:
            self.asked.append(sorted(keys))
            self._asked_more.notify_all()
        # Read when the lookup starts, as a query's snapshot would.
        found = {key: self.rows[key] for key in keys if key in self.rows}
        await self.release.wait()
        self.release.clear()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return found


async def test_callers_asking_together_share_one_lookup_and_get_their_own_answers() -> None:
    table = Table()
    table.rows = {"a": 1, "b": 2}
    lookups = CoalescedLookups(table.lookup, missing=0)
    answers = asyncio.gather(lookups.get("a"), lookups.get("b"), lookups.get("a"), lookups.get("x"))
    await table.until_asked(1)
    table.release.set()
    assert await answers == [1, 2, 1, 0]
    assert table.asked == [["a", "b", "x"]]


async def test_a_caller_arriving_during_a_lookup_waits_for_the_next_one() -> None:
    table = Table()
    table.rows = {"a": 1}
    lookups = CoalescedLookups(table.lookup, missing=0)
    early = asyncio.ensure_future(lookups.get("a"))
    await table.until_asked(1)
    # Written after the running lookup began: the late caller must see it.
    table.rows["a"] = 5
    late = asyncio.ensure_future(lookups.get("a"))
    table.release.set()
    assert await early == 1
    await table.until_asked(2)
    table.release.set()
    assert await late == 5
    assert table.asked == [["a"], ["a"]]


async def test_a_failed_lookup_fails_its_callers_only() -> None:
    table = Table()
    table.rows = {"a": 1}
    lookups = CoalescedLookups(table.lookup, missing=0)
    table.fail_next = ConnectionError("store down")
    first = asyncio.ensure_future(lookups.get("a"))
    await table.until_asked(1)
    second = asyncio.ensure_future(lookups.get("a"))
    table.release.set()
    with pytest.raises(ConnectionError):
        await first
    await table.until_asked(2)
    table.release.set()
    assert await second == 1
