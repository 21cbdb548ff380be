"""Starting loop processes: for a run, or ahead of it (a warm start).

A loop process takes ~0.2 s to start: an interpreter and its imports. ``conveyor fetch``
knows how many it will need right after reading its options, long before its run is
built, so it starts them then (``start_ahead``) and hands the ``WarmLoops`` to the run as
its ``loops=``: their start-up overlaps the parent's own. A loop process gets its head
as the first message on its socket, so it can wait for it. The run's ``LoopPool`` takes
them over when it needs as many and the same shared budget, and ends them otherwise;
``WarmLoops.close`` ends them if no run took them (they end with this process anyway:
their socket's end, and ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..guard import refuse_in_bootstrap
from .slots import SharedSlots
from .worker import loop_main

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

Started = list[tuple["BaseProcess", socket.socket]]


def spawn_context() -> Any:
    import multiprocessing  # here: a run with one loop never loads it

    return multiprocessing.get_context("spawn")


def spawn_loop(
    context: Any, index: int, slots: SharedSlots | None, modules: Sequence[str]
) -> tuple[BaseProcess, socket.socket, socket.socket]:
    """A loop process, not yet started, and the two ends of its socket (the child's to
    close once the process has started)."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = context.Process(
        target=loop_main,
        args=(child_end, None if slots is None else slots.for_loop(index), tuple(modules)),
        name=f"conveyor-loop-{index}",
        daemon=True,
    )
    return process, parent_end, child_end


class WarmLoops:
    """Loop processes started ahead of their run (``start_ahead``); give it to the run as
    ``loops=``."""

    def __init__(self, count: int, shared: int | None, slots: SharedSlots | None) -> None:
        self.count = count
        self.shared = shared
        self._slots = slots
        self._processes: Started = []

    def take(self, count: int, shared: int | None) -> tuple[Started, SharedSlots | None] | None:
        """The processes and their slots, for a run of ``count`` loops sharing ``shared``
        slots; None (having ended them) when they were started for another shape, or
        taken already."""
        if self._processes and count == self.count and shared == self.shared:
            processes, self._processes = self._processes, []
            return processes, self._slots
        self._end()  # called on the event loop: killed, not waited for (reaped later)
        return None

    def close(self) -> None:
        """End the processes no run took, and wait until they have."""
        for process, _ in self._end():
            process.join(5.0)

    def _end(self) -> Started:
        processes, self._processes = self._processes, []
        for process, parent_end in processes:
            parent_end.close()
            process.kill()
        return processes


def start_ahead(count: int, *, shared: int | None, modules: Sequence[str] = ()) -> WarmLoops:
    """Start ``count`` loop processes now, importing ``modules``, for a run to come whose
    first stage's service shares ``shared`` slots (None: it has no service)."""
    refuse_in_bootstrap()  # an unguarded script, re-run inside a loop: see guard.py
    context = spawn_context()
    slots = None if shared is None else SharedSlots(context, shared, count)
    warm = WarmLoops(count, shared, slots)
    try:
        for index in range(count):
            process, parent_end, child_end = spawn_loop(context, index, slots, modules)
            with child_end:
                process.start()
            warm._processes.append((process, parent_end))
    except BaseException:
        warm.close()
        raise
    return warm
