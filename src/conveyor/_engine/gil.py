"""Letting the run's threads have the GIL while the event loop is busy.

A busy event loop starves every other thread of the GIL. It lets go of the GIL at every
turn of the loop (around ``epoll``), but takes it straight back. The thread that waits
for it is woken each time and finds it taken. CPython forces a switch only after a
thread has waited a full switch interval (5 ms) *with no release in between*, so that
never happens. Measured on CPython 3.11 with uvloop: a thread that sleeps 1 ms waited a
median 220 ms, and up to 550 ms, for the GIL back. ``sys.setswitchinterval`` does not
change that. The run's threads are the writer, the journal, the source reader and
``on="threads"`` stages, so each hand-over cost the loop a long wait.

The fix: every ``PERIOD`` seconds the loop calls ``time.sleep(0)``. That lets go of the
GIL in a way the waiting thread can catch. It costs the loop a few microseconds each
time (unmeasurable in the benchmarks), and a waiting thread then gets the GIL within
``PERIOD``.
"""

from __future__ import annotations

import asyncio
import time

PERIOD = 0.002


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
        time.sleep(0)  # releases the GIL so that a waiting thread can take it
        self._handle = self._loop.call_later(self._period, self._tick)
