"""PerLoop: one object per running event loop; objects of closed loops are dropped."""

import asyncio
import itertools

import pytest

from mlplatform.loops import PerLoop


@pytest.fixture
def per_loop():
    """A PerLoop whose objects say which one they were made as (0, 1, 2, ...)."""
    made = itertools.count()
    return PerLoop(lambda: [next(made)])


def test_one_object_per_running_loop(per_loop):
    async def twice():
        return per_loop.get(), per_loop.get()

    first, again = asyncio.run(twice())
    assert first is again and first == [0]
    other, other_again = asyncio.run(twice())  # another loop: made anew
    assert other is other_again and other is not first and other == [1]


def test_a_loop_in_another_thread_gets_its_own_object(per_loop):
    async def get():
        return per_loop.get(), len(per_loop._objects)

    async def main():
        mine = per_loop.get()
        # a second loop, in a worker thread, while this one still runs
        theirs, kept = await asyncio.to_thread(asyncio.run, get())
        return mine, theirs, kept, per_loop.get()

    mine, theirs, kept, mine_again = asyncio.run(main())
    assert mine == [0] and theirs == [1] and mine_again is mine
    assert kept == 2  # a loop that is still running keeps its object when another loop asks


def test_objects_of_closed_loops_are_dropped_when_a_new_loop_asks(per_loop):
    async def get():
        return per_loop.get(), asyncio.get_running_loop()

    for made in range(4):
        obj, loop = asyncio.run(get())
        assert obj == [made]
        assert list(per_loop._objects) == [loop]  # only this loop's (now closed) object is left
        assert loop.is_closed()

    async def current():
        per_loop.get()
        return list(per_loop._objects.items()), asyncio.get_running_loop()

    items, loop = asyncio.run(current())
    assert items == [(loop, [4])]


def test_clear_forgets_every_object(per_loop):
    async def main():
        before = per_loop.get()
        per_loop.clear()
        emptied = len(per_loop._objects)
        return before, emptied, per_loop.get()

    before, emptied, after = asyncio.run(main())
    assert emptied == 0 and before == [0] and after == [1]
    per_loop.clear()
    assert per_loop._objects == {}


def test_get_outside_a_running_loop_raises(per_loop):
    with pytest.raises(RuntimeError):
        per_loop.get()
    assert per_loop._objects == {}
