"""Is the run's own event loop CPU-bound? Measured on the loop's thread as the run goes.

``loops="auto"`` starts the pipeline's head on the run's own loop and moves it to loop
processes only once that loop is CPU-bound (``grow.py``): a job waiting on slow servers
gains nothing from more loops and would pay for starting them.

CPU-bound means the loop's thread wants a core all the time: it is on one, or waiting in
the kernel's run queue for one. Linux counts both per thread (``/proc/thread-self/
schedstat``: nanoseconds run, nanoseconds waited to run), so a loop that gets half a core
on a machine busy with other work still reads as bound (it waited the other half), and a
loop waiting on the network does not. Where that file is missing, the thread's CPU time
alone stands in (a busy machine then hides a bound loop: it stays on one loop).

Measured on the busy 2-core machine these figures come from: a loop fetching from nginx
reads 0.92-1.0 in every quarter second, one waiting on 100 ms answers 0.4-0.6.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BOUND = 0.8  # share of a window the loop's thread spent running or ready to run
WINDOW = 0.25  # seconds between two looks
WINDOWS = 2  # bound windows in a row before the head moves (one burst is not a job)

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
    with open(_SCHEDSTAT, "rb") as stats:
        ran, waited, _ = stats.read().split()
    return (int(ran) + int(waited)) / 1e9


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
