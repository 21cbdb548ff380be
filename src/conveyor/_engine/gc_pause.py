"""Fewer garbage collections while a run goes on.

CPython collects its youngest generation every 700 net allocations of container objects.
A run keeps thousands of them alive at any moment (each request in flight holds dozens:
aiohttp's request and response, headers, coroutines, futures), so every such collection
walks all of them, and they come often: at 12,000 pages a second that was 5% of the
run's CPU, for reference cycles that a run hardly makes. So while any run is going, the
first threshold is raised to ``THRESHOLD``: cycles are still collected, a little later.
The thresholds are put back when the last run ends, unless someone changed them meanwhile.

Set ``CONVEYOR_GC_THRESHOLD=0`` in the environment to leave the collector alone.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLD = 20_000

_lock = threading.Lock()
_runs = 0
_saved: tuple[int, int, int] | None = None
_ours: tuple[int, int, int] | None = None


def _threshold() -> int:
    text = os.environ.get("CONVEYOR_GC_THRESHOLD", "")
    try:
        return int(text) if text else THRESHOLD
    except ValueError:
        return THRESHOLD


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the youngest generation's threshold for the duration (runs may nest)."""
    global _runs, _saved, _ours
    with _lock:
        _runs += 1
        wanted = _threshold()
        current = gc.get_threshold()
        if _runs == 1 and wanted > current[0]:
            _saved = current
            _ours = (wanted, current[1], current[2])
            gc.set_threshold(*_ours)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0 and _saved is not None:
                if gc.get_threshold() == _ours:  # nobody else changed it meanwhile
                    gc.set_threshold(*_saved)
                _saved = _ours = None
