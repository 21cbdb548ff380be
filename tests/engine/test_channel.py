"""``Channel``: order, bounds, and no item lost or doubled when a waiting task is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from conveyor._engine.channel import Channel


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_items_come_out_in_order_and_a_full_channel_holds_the_putter() -> None:
    async def main() -> list[int]:
        channel: Channel[int] = Channel(2)
        channel.put_nowait(0)
        await channel.put(1)
        with pytest.raises(asyncio.QueueFull):
            channel.put_nowait(2)
        putter = asyncio.create_task(channel.put(2))
        await asyncio.sleep(0)
        assert not putter.done()  # no room yet
        got = [await channel.get()]
        await putter
        got += [await channel.get(), await channel.get()]
        assert channel.qsize() == 0
        return got

    assert run(main()) == [0, 1, 2]


def test_waiting_getters_are_served_first_come_first_served() -> None:
    async def main() -> list[tuple[str, int]]:
        channel: Channel[int] = Channel(4)
        got: list[tuple[str, int]] = []

        async def getter(name: str) -> None:
            got.append((name, await channel.get()))

        tasks = [asyncio.create_task(getter(name)) for name in "ab"]
        await asyncio.sleep(0)
        channel.put_nowait(1)
        channel.put_nowait(2)
        await asyncio.gather(*tasks)
        return got

    assert run(main()) == [("a", 1), ("b", 2)]


def test_a_getter_cancelled_after_being_woken_wakes_the_next_one() -> None:
    """A batch stage waits for items under a timeout: a get cancelled just after it was
    woken for an item must leave that item to the next getter, not strand it."""

    async def main() -> int:
        channel: Channel[int] = Channel(4)
        first = asyncio.create_task(channel.get())
        second = asyncio.create_task(channel.get())
        await asyncio.sleep(0)
        channel.put_nowait(7)  # wakes `first`, which has not run yet
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(second, 1)

    assert run(main()) == 7


def test_items_start_in_order_even_when_a_running_task_asks_first() -> None:
    """A woken getter takes the oldest item when it runs, so a task that did not wait
    cannot start a newer item before an older one."""

    async def main() -> list[int]:
        channel: Channel[int] = Channel(4)
        waiting = asyncio.create_task(channel.get())
        await asyncio.sleep(0)
        channel.put_nowait(1)  # wakes `waiting`
        channel.put_nowait(2)
        first = await channel.get()  # this task runs before `waiting` does
        return [first, await waiting]

    assert run(main()) == [1, 2]


def test_a_cancelled_getter_is_skipped_and_the_item_queued() -> None:
    async def main() -> int:
        channel: Channel[int] = Channel(1)
        waiting = asyncio.create_task(channel.get())
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        channel.put_nowait(5)
        assert channel.qsize() == 1
        return await channel.get()

    assert run(main()) == 5


def test_a_putter_cancelled_after_being_woken_passes_the_room_on() -> None:
    async def main() -> list[int]:
        channel: Channel[int] = Channel(1)
        channel.put_nowait(0)
        first = asyncio.create_task(channel.put(1))
        second = asyncio.create_task(channel.put(2))
        await asyncio.sleep(0)
        assert await channel.get() == 0  # room for one: `first` is woken
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.wait_for(second, 1)  # the room went to `second` instead
        return [await channel.get()]

    assert run(main()) == [2]


def test_a_batch_refills_the_channel_when_half_empty_and_never_overfills_it() -> None:
    async def main() -> list[int]:
        channel: Channel[int] = Channel(4)
        batch = list(range(10))
        done = channel.put_some(batch, 0)
        assert done == 4  # up to the bound, no further
        assert channel.qsize() == 4
        refill = asyncio.create_task(channel.refill())
        got = [await channel.get()]  # 3 left: not yet half empty
        await asyncio.sleep(0)
        assert not refill.done()
        got.append(await channel.get())  # 2 left: half
        await asyncio.wait_for(refill, 1)
        done = channel.put_some(batch, done)
        assert done == 6
        assert channel.qsize() == 4
        while channel.qsize():
            got.append(await channel.get())
        return got

    assert run(main()) == [0, 1, 2, 3, 4, 5]
