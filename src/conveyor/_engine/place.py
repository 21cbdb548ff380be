"""The placement a stage's spec asks for (``placement.py``, ``auto.py``).

Apart from both so that neither imports the other: ``auto.py`` builds on the
placements, and this picks among all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .auto import AutoPlacement
from .placement import (
    LoopPlacement,
    LoopsPlacement,
    Placement,
    ProcessPlacement,
    ThreadPlacement,
)
from .spec import StageSpec

if TYPE_CHECKING:
    from .loops.warm import WarmLoops


def placement_for(
    spec: StageSpec, fn: Callable[[Any], Any], *, warm: WarmLoops | None = None
) -> Placement:
    """The placement for ``spec``, calling ``fn``; ``warm``: loop processes started ahead,
    for a stage placed on loop processes."""
    if spec.place == "loops":
        if spec.measured:
            from .loops.grow import GrowingLoops  # here: a run with one loop never loads it

            return GrowingLoops(fn, spec, warm)
        return LoopsPlacement(fn, spec, warm)
    if spec.place == "auto":
        return AutoPlacement(fn, spec)
    if spec.place == "loop":
        return LoopPlacement(fn, spec)
    if spec.place == "threads":
        return ThreadPlacement(fn, spec)
    if spec.place == "processes":
        return ProcessPlacement(fn, spec)
    return Placement(fn, spec)
