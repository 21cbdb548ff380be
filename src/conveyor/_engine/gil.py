"""Letting the run's threads have the GIL while the event loop is busy.

A busy event loop starves every other thread of the GIL. It lets go of the GIL at every
turn of the loop (around ``epoll``), but takes it straight back. The thread that waits
for it is woken each time and finds it taken. CPython forces a switch only after a
thread has waited a full switch interval (5 ms) *with no release in between*, so that
never happens. Measured on CPython 3.11 with uvloop: a thread that sleeps 1 ms waited a
median 220 ms, and up to 550 ms, for the GIL back. ``sys.setswitchinterval`` does not
change that. The run's threads are the writer, the journal, the source reader and
``on="threads"`` stages, so each hand-over cost the loop a long wait.

The fix: while some of the run's work is on a thread (``in_thread`` counts it), the loop
calls ``time.sleep(0)`` every ``PERIOD`` seconds. That lets go of the GIL in a way the
waiting thread can catch, and the thread then gets it within ``PERIOD``. With no thread
work pending the loop does not yield. ``sleep(0)`` can hand the CPU to another process
(the server, in the benchmarks), which cost a fetch run 2-3%.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeVar

T = TypeVar("T")

PERIOD = 0.002

_in_threads = 0  # work handed to threads and not done yet (changed on the loop's thread)


def in_thread(future: asyncio.Future[T]) -> asyncio.Future[T]:
    """Count ``future``, the result of work handed to a thread, until it is done."""
    global _in_threads
    _in_threads += 1
    future.add_done_callback(_done)
    return future


def _done(_: object) -> None:
    global _in_threads
    _in_threads -= 1


class GilYield:
    """Started with a run, stopped at its end: a periodic ``time.sleep(0)`` on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = PERIOD) -> None:
        self._loop = loop
        self._period = period
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = self._loop.call_later(self._period, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        if _in_threads:
            time.sleep(0)  # releases the GIL so that a waiting thread can take it
        self._handle = self._loop.call_later(self._period, self._tick)
