"""Finished input positions as ``[start, stop)`` runs: what the journal keeps of them."""

from __future__ import annotations

from collections.abc import Sequence


def spans_of(positions: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` runs covering the positions (which need not come sorted)."""
    if not positions:
        return []
    ordered = sorted(positions)  # nearly sorted already, as items finish: cheap
    count = len(ordered)
    missing = ordered[-1] - ordered[0] + 1 - count  # positions never repeat
    if not missing:
        return [(ordered[0], ordered[-1] + 1)]
    if missing * 8 > count:  # many gaps, so many short runs: one step per position
        return short_spans(ordered)
    spans = []
    start = 0
    while start < count:
        # Along a run, position - index stays the same, and it only grows after one. So
        # the run's end is found by galloping (1, 2, 4, ... ahead) and then bisecting: a
        # run of length L costs about 2 log L steps, not L, and a short one a step or two.
        offset = ordered[start] - start
        last, step = start, 1
        while True:
            probe = last + step
            if probe >= count or ordered[probe] - probe != offset:
                beyond = min(probe, count)
                break
            last, step = probe, step * 2
        while beyond - last > 1:
            middle = (last + beyond) // 2
            if ordered[middle] - middle == offset:
                last = middle
            else:
                beyond = middle
        spans.append((ordered[start], ordered[last] + 1))
        start = last + 1
    return spans


def short_spans(ordered: list[int]) -> list[tuple[int, int]]:
    spans = []
    start = previous = ordered[0]
    for position in ordered:
        if position > previous + 1:
            spans.append((start, previous + 1))
            start = position
        previous = position
    spans.append((start, previous + 1))
    return spans
