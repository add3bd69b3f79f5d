"""The hub's per-client buffer: filter, overflow, end."""

from __future__ import annotations

import asyncio

from web.hub import RESYNC, Listener


def completed(message: dict[str, object]) -> bool:
    return message.get("status") == "completed"


async def test_a_filter_drops_events_before_they_are_queued_but_never_a_resync() -> None:
    listener = Listener("*", capacity=2, keep=completed)
    for status in ("pending", "in_progress", "completed", "failed"):
        listener.offer({"status": status})
    listener.offer(RESYNC)
    assert listener.pending == 2
    assert await listener.next() == {"status": "completed"}
    assert await listener.next() is RESYNC
    assert not listener.overflowed.is_set()


async def test_a_waiting_reader_is_woken_by_an_offer() -> None:
    listener = Listener("*", capacity=4)
    reader = asyncio.create_task(listener.next())
    await asyncio.sleep(0)
    assert not reader.done()
    listener.offer({"n": 1})
    assert await asyncio.wait_for(reader, 1) == {"n": 1}


async def test_ending_wakes_the_reader_after_what_is_queued() -> None:
    listener = Listener("*", capacity=4)
    listener.offer({"n": 1})
    listener.end()
    listener.offer({"n": 2})
    assert await listener.next() == {"n": 1}
    assert await listener.next() is None
    waiting = Listener("*", capacity=4)
    reader = asyncio.create_task(waiting.next())
    await asyncio.sleep(0)
    waiting.end()
    assert await asyncio.wait_for(reader, 1) is None


async def test_overflow_keeps_what_was_queued_then_ends() -> None:
    listener = Listener("*", capacity=2)
    for n in range(3):
        listener.offer({"n": n})
    assert listener.overflowed.is_set()
    assert [await listener.next() for _ in range(3)] == [{"n": 0}, {"n": 1}, None]


async def test_what_is_queued_can_be_taken_at_once_up_to_a_limit() -> None:
    listener = Listener("*", capacity=8)
    for n in range(3):
        listener.offer({"n": n})
    assert listener.take_queued(2) == [{"n": 0}, {"n": 1}]
    assert listener.take_queued(5) == [{"n": 2}]
    assert listener.take_queued(5) == []
