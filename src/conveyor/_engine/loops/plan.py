"""How many loop processes a run gets, and which one owns an item.

``route_index`` is the one routing rule (``routing.py``: a stable hash of the item's route
key, so a host has one owner). ``resolve_loops`` and ``measured_loops`` are the policy of
``loops="auto"`` (how many at most, and moved to by measurement: ``grow.py``), kept apart
so it can change without touching the pool.
"""

from __future__ import annotations

import os
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

from ..._errors import UsageError
from ..routing import route_index
from .warm import WarmLoops

__all__ = ["measured_loops", "resolve_loops", "resolve_loops_for_file", "route_index"]

AUTO_MIN_ITEMS = 20_000  # below this, starting processes costs more than they save
_BYTES_PER_URL = 50  # for a file source, whose size is known at once (its count is not)


def resolve_loops(loops: int | str | WarmLoops, source: Any) -> int:
    """``loops=`` as a number: for ``"auto"``, the most the run may grow to (one per
    usable core; ``measured_loops``), or 1 when the source is known to be too small to
    pay for starting them (under 20,000 items, or a file under 1 MB); loop processes
    started ahead (``WarmLoops``) are as many as they are."""
    if isinstance(loops, WarmLoops):
        return loops.count
    if loops == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
        return cores if cores > 1 and not _small(source) else 1
    if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
        raise UsageError(f"loops={loops!r} must be a whole number of at least 1, or 'auto'")
    return loops


def measured_loops(loops: int | str | WarmLoops) -> bool:
    """Whether the run decides by measurement (``"auto"``): the head starts on the run's
    own loop and moves to the loop processes once that loop is CPU-bound (``grow.py``)."""
    return loops == "auto"


def resolve_loops_for_file(loops: int | str, path: str) -> int:
    """``resolve_loops`` for a source read from the file at ``path`` (``-``: stdin), before
    the source itself is made (the CLI starts loop processes early: ``warm.py``)."""
    return resolve_loops(loops, _FileOnly(path))


@dataclass(frozen=True)
class _FileOnly:
    path: str


def _small(source: Any) -> bool:
    """Known to be too small for loop processes: a sized source, or a file, under the
    mark; a source of unknown size (a generator, stdin) is not."""
    if isinstance(source, Sized):
        return len(source) < AUTO_MIN_ITEMS
    path = getattr(source, "path", None)  # a conveyor file source (read_lines ...)
    if isinstance(path, str | os.PathLike):
        try:
            return os.path.getsize(path) < AUTO_MIN_ITEMS * _BYTES_PER_URL
        except OSError:
            return False
    return False
