"""The hub's per-client buffer: filter, overflow, end."""

from __future__ import annotations

import asyncio

import pytest

from web.hub import RESYNC, Filter, Listener


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


class Client:
    """A sender that records what it sent; while `blocked` is set, each send waits for it
    to be released, as a send to a full socket buffer waits for the socket to drain."""

    def __init__(self, *, blocking: bool = False, failure: Exception | None = None) -> None:
        self.sent: list[dict[str, object]] = []
        self.blocked = asyncio.get_running_loop().create_future() if blocking else None
        self.failure = failure

    def listener(self, keep: Filter | None = None) -> Listener:
        """A listener that sends to this client directly."""
        listener = Listener("*", capacity=4, keep=keep)
        listener.send_directly(self.send)
        return listener

    async def send(self, message: dict[str, object]) -> None:
        if self.failure is not None:
            raise self.failure
        if self.blocked is not None:
            await self.blocked
        self.sent.append(message)


async def waiting_reader(listener: Listener) -> asyncio.Task[dict[str, object] | None]:
    reader = asyncio.create_task(listener.next())
    await asyncio.sleep(0)
    assert not reader.done()
    return reader


async def test_an_idle_reader_sleeps_on_while_its_events_are_sent_directly() -> None:
    client = Client()
    listener = client.listener(keep=completed)
    reader = await waiting_reader(listener)
    listener.offer({"n": 1, "status": "completed"})
    listener.offer({"n": 2, "status": "pending"})
    listener.offer(RESYNC)
    # Sent within the offers themselves: nothing queued, the reader never woken.
    assert client.sent == [{"n": 1, "status": "completed"}, RESYNC]
    assert listener.pending == 0
    await asyncio.sleep(0)
    assert not reader.done()
    listener.end()
    assert await asyncio.wait_for(reader, 1) is None


async def test_without_a_waiting_reader_events_are_queued_for_it() -> None:
    client = Client()
    listener = client.listener()
    listener.offer({"n": 1})
    assert client.sent == []
    assert await listener.next() == {"n": 1}


async def test_a_send_that_must_wait_is_finished_by_the_reader_before_what_came_after() -> None:
    client = Client(blocking=True)
    listener = client.listener()
    reader = await waiting_reader(listener)
    listener.offer({"n": 1})  # starts, then waits for the socket
    listener.offer({"n": 2})  # the reader has work now: queued
    assert client.sent == []
    assert listener.pending == 1
    await asyncio.sleep(0)
    assert not reader.done()  # finishing the first send holds the second back
    assert client.blocked is not None
    client.blocked.set_result(None)
    assert await asyncio.wait_for(reader, 1) == {"n": 2}
    assert client.sent == [{"n": 1}]


async def test_cancelling_the_reader_reaches_the_send_it_was_finishing() -> None:
    client = Client(blocking=True)
    listener = client.listener()
    reader = await waiting_reader(listener)
    listener.offer({"n": 1})
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader, 1)
    assert client.blocked is not None and client.blocked.cancelled()
    assert client.sent == []


async def test_a_failed_direct_send_is_raised_to_the_reader() -> None:
    client = Client(failure=ConnectionResetError("the client left"))
    listener = client.listener()
    reader = await waiting_reader(listener)
    listener.offer({"n": 1})
    with pytest.raises(ConnectionResetError, match="the client left"):
        await asyncio.wait_for(reader, 1)
