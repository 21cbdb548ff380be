"""Loop processes: the head of a pipeline on several event loops, one per process.

One event loop is one core. A fetch job whose loop is busy all the time (parsing HTTP,
building rows) goes faster only with more loops, and in Python that means processes. The
parent keeps everything that must happen once: it reads the input, keeps the journal and
writes the sink. The loop processes run the head of the pipeline: its async first stage
(the fetch) and the cheap plain maps after it.

Each item has a *route key* (for a fetch, the URL's host:port). When the first stage's
service can divide its per-key limits among the loops (``ServiceFactory.spreads``: a
fetch whose ``per_host`` is at least the number of loops), a key's items go to every
loop, each holding its part, so one busy host keeps every core busy; a site's pause is
relayed to all of them (``ports.Peered``). Otherwise each key is owned by one loop, by a
stable hash, and its limits hold there whole.

With ``loops="auto"`` the head starts on the run's own loop and moves to the loop
processes only once that loop is CPU-bound (``grow.py``, measured by ``measure.py``).

The package, a module a job:

- ``plan.py``: how many loops (``resolve_loops``, the ``loops="auto"`` policy) and which
  loop owns an item (``route_index``, the one rule of ``routing.py``);
- ``fold.py``: which stages make the head (``fold_head``), and how the first stage's
  service is shared out to the loops (``ServiceFactory.share``), spread or owned;
- ``measure.py``, ``grow.py``: ``loops="auto"``: is the run's loop CPU-bound, and the
  placement that moves the head to the loop processes when it is;
- ``slots.py``: the concurrency budget the loops' services share (a ``Budget``);
- ``warm.py``: starting loop processes, for a run or ahead of it (``start_ahead``);
- ``pool.py``: the parent's side (``LoopPool``: ``start``/``serve``/``call``/``close``/
  ``shutdown``, as ``ProcessPool``);
- ``worker.py``: a loop process's side; ``messages.py``: what they say to each other.
"""

from __future__ import annotations

from .fold import fold_head
from .plan import measured_loops, resolve_loops, resolve_loops_for_file, route_index
from .warm import WarmLoops, start_ahead

__all__ = [
    "WarmLoops",
    "fold_head",
    "measured_loops",
    "resolve_loops",
    "resolve_loops_for_file",
    "route_index",
    "start_ahead",
]
