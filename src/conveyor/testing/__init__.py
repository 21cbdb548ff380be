"""Public testing helpers: a local HTTP site that misbehaves on purpose, with counters.

Used by conveyor's own tests, the ``conveyor demo`` command and the benchmarks, and meant
for users who want to test their pipelines offline::

    from conveyor.testing import run_site

    async with run_site() as site:
        url = site.url("/flaky/a?fail=2")

``run_arena`` serves the arena: one host per loopback address, each misbehaving in one
way a polite client must handle (refusing, slowing, going down, stalling, pausing us).

``FakeClock`` is the clock to inject into conveyor's pure timing decisions in tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import FakeClock

if TYPE_CHECKING:
    from .arena import ArenaSettings as ArenaSettings
    from .arena import RunningArena as RunningArena
    from .arena import run_arena as run_arena
    from .site import RunningSite as RunningSite
    from .site import SiteStats as SiteStats
    from .site import make_app as make_app
    from .site import run_site as run_site

__all__ = [
    "ArenaSettings",
    "FakeClock",
    "RunningArena",
    "RunningSite",
    "SiteStats",
    "make_app",
    "run_arena",
    "run_site",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m conveyor.testing.site`` does not import the module twice.
    if name in ("RunningSite", "SiteStats", "make_app", "run_site"):
        from . import site

        return getattr(site, name)
    if name in ("ArenaSettings", "RunningArena", "run_arena"):
        from . import arena

        return getattr(arena, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
