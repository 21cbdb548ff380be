"""A concurrency budget shared by loop processes: never more than ``total`` at once in all.

With several loop processes (``pool.py``), the first stage's ``concurrency`` (a fetch's)
must hold across all of them, yet a loop owning the busy hosts should be able to use all
of it. The parent could keep the budget by never sending more than ``concurrency`` items
out, but then each slot is also held while its item travels to a loop process and its
result back (~10 ms on a busy 2-core machine: a tenth of a 100 ms request's time). So the
slots live in a semaphore all loop processes share, taken by the stage's service right
before a unit of its work leaves (a request) and given back right after it ends, and the
parent sends a few more items than that, which wait in the loop processes.

A loop process killed while holding slots would leak them; each loop counts what it holds
in shared memory (written by that loop alone), and the parent gives a dead loop's slots
back before it starts the replacement (``reclaim``). A kill between the semaphore and the
count can leak one slot, never add one: the budget is never exceeded.
"""

from __future__ import annotations

from typing import Any


class SharedSlots:
    """Made by the parent; ``for_loop(i)`` is what loop ``i`` takes (sent when it spawns)."""

    def __init__(self, context: Any, total: int, loops: int) -> None:
        self.total = total
        self._semaphore = context.Semaphore(total)
        self._held = context.RawArray("i", loops)

    def for_loop(self, index: int) -> LoopSlots:
        return LoopSlots(self._semaphore, self._held, index)

    def take_nowait(self) -> bool:
        """A slot for the parent itself (items it has out on its own loop while the head
        moves to the loop processes: ``grow.py``); back with ``give``."""
        return bool(self._semaphore.acquire(False))

    def give(self) -> None:
        self._semaphore.release()

    def reclaim(self, index: int) -> int:
        """Give back what loop ``index`` held when it died (call once it is dead)."""
        held: int = max(0, self._held[index])
        self._held[index] = 0
        for _ in range(held):
            self._semaphore.release()
        return held


class LoopSlots:
    """One loop's handle on the shared slots: the ``Budget`` (``ports.py``) its stage's
    service is bound to. ``take_nowait`` never blocks."""

    def __init__(self, semaphore: Any, held: Any, index: int) -> None:
        self._semaphore = semaphore
        self._held = held
        self._index = index

    def take_nowait(self) -> bool:
        if self._semaphore.acquire(False):
            self._held[self._index] += 1
            return True
        return False

    def give(self) -> None:
        self._held[self._index] -= 1
        self._semaphore.release()
