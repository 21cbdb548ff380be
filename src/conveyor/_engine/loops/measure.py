"""Is the run's own event loop CPU-bound? Measured on the loop's thread as the run goes.

``loops="auto"`` starts the pipeline's head on the run's own loop and moves it to loop
processes only once that loop is CPU-bound and the head's calls show its lag
(``grow.py``): a job waiting on slow servers gains nothing from more loops and would pay
for starting them. Each loop process measures
its own loop the same way and tells its service when it is bound (``ports.LoopBound``,
``worker.py``): a fetch then does not take its own lag for its hosts' latency.

CPU-bound means the loop's thread wants a core all the time: it is on one, or waiting in
the kernel's run queue for one. Linux counts both per thread (``/proc/thread-self/
schedstat``: nanoseconds run, nanoseconds waited to run), so a loop that gets half a core
on a machine busy with other work still reads as bound (it waited the other half), and a
loop waiting on the network does not. Where that file is missing, the thread's CPU time
alone stands in (a busy machine then hides a bound loop: it stays on one loop).

Measured on the busy 2-core machine these figures come from: a loop fetching from nginx
reads 0.88-1.0 in every tenth of a second, one waiting on 100 ms answers 0.32-0.55 (its
first tenth, opening 500 connections, ~0.65), higher while other processes take a core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

BOUND = 0.85  # share of a window the loop's thread spent running or ready to run
WINDOW = 0.1  # seconds between two looks
# Bound windows in a row before the head moves: one burst is not a job, nor a moment when
# another process took the core (a waiting loop's waits then add up to a bound-looking
# window: a run that waits on 100 ms answers moved once, with three in a row at 0.8).
WINDOWS = 4

_SCHEDSTAT = "/proc/thread-self/schedstat"


def demand_clock() -> Callable[[], float]:
    """A function giving the seconds the calling thread has run or waited to run so far
    (``schedstat``), or, where the kernel does not say, its CPU seconds. Call it, and the
    function it gives, on the thread measured."""
    try:
        _schedstat()
    except (OSError, ValueError):
        return time.thread_time
    return _schedstat


def _schedstat() -> float:
    # The run time lags by up to a scheduler tick (a few ms): nothing over a window.
    with open(_SCHEDSTAT, "rb") as stats:
        ran, waited, _ = stats.read().split()
    return (int(ran) + int(waited)) / 1e9


class ThreadWaits:
    """The run-queue waits of the thread that makes it (``on="auto"``'s GIL probe:
    ``auto.py``): ``seconds()`` is how long it has waited for a core so far. Linux only:
    ``open()`` gives None elsewhere.

    Read with the GIL held (``ctypes.PyDLL``), so that asking does not hand the GIL to
    another thread mid-measure (a plain read would); a wait is counted as it ends, so the
    figure is up to date whenever the thread runs (the run time in the same file is not:
    the kernel brings it up to date only at its next tick)."""

    def __init__(self, fd: int, pread: Any, buffer: Any) -> None:
        self._fd = fd
        self._pread = pread
        self._buffer = buffer

    @classmethod
    def open(cls) -> ThreadWaits | None:
        try:
            fd = os.open(_SCHEDSTAT, os.O_RDONLY)
        except OSError:
            return None
        import ctypes  # here: only the GIL probe needs it

        pread = ctypes.PyDLL(None).pread
        pread.restype = ctypes.c_ssize_t
        pread.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
        waits = cls(fd, pread, ctypes.create_string_buffer(128))
        try:
            waits.seconds()
        except (OSError, ValueError, IndexError):
            waits.close()
            return None
        return waits

    def seconds(self) -> float:
        size = self._pread(self._fd, self._buffer, len(self._buffer), 0)
        if size <= 0:
            raise OSError("schedstat could not be read")
        return int(self._buffer.raw[:size].split()[1]) / 1e9

    def close(self) -> None:
        os.close(self._fd)


class Demand:
    """Pure: fed the wall clock and the thread's demand (``demand_clock``) once a
    ``WINDOW``, says when the last ``windows`` windows were all bound.

    Only windows the caller calls working count (it had items in flight); any other
    sample starts the count again.
    """

    def __init__(self, *, bound: float = BOUND, windows: int = WINDOWS) -> None:
        self.bound = bound
        self.windows = windows
        self.share = 0.0  # the last window's demand, as a share of its wall time
        self.leaning = False  # the last window was bound: the next may confirm it
        self._last: tuple[float, float] | None = None
        self._run = 0

    def sample(self, wall: float, busy: float, *, working: bool = True) -> bool:
        """Take one sample; True once ``windows`` bound windows came in a row."""
        last, self._last = self._last, (wall, busy)
        if last is None or wall <= last[0]:
            return False
        self.share = (busy - last[1]) / (wall - last[0])
        if working and self.share >= self.bound:
            self._run += 1
        else:
            self._run = 0
        self.leaning = self._run > 0
        return self._run >= self.windows
