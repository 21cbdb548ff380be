"""Items waiting on a held host wait in the fetch's waiting room, not in its request slots.

A host held back (here E, paused by its site's Retry-After date) keeps its items waiting
inside the client; they must not take the workers the other hosts' items need
(``_pipeline/fetch.py`` ``stage_workers``, ``StageSpec.slots``). Everything is observed
from what the arena's hosts saw and from the results, never from the clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import conveyor as cv
from conveyor.testing import ArenaSettings, run_arena

from .conftest import FAST

ROOT = Path(__file__).resolve().parents[2]

# E's pause is shorter than the run's patience (60 s), so the run waits it out rather
# than deferring E: only the waiting room lets F's items by meanwhile.
HELD = ArenaSettings(hosts=6, e_retry_after=30.0)


def interleaved(arena: Any, count: int) -> list[str]:
    return [
        u
        for n in range(count)
        for u in (arena.url("E", f"/item/{n}"), arena.url("F", f"/item/{n}"))
    ]


async def test_a_held_hosts_items_leave_the_request_slots_to_the_others() -> None:
    """E's first answer pauses it for 30 s; its 39 other items, interleaved with F's 40,
    wait. At ``concurrency=4`` they took every worker, and F's items waited out E's pause
    behind them; now F's items all finish while E has still seen one request."""
    async with run_arena(HELD) as arena:
        f_host = arena.url("F")
        fetched_f = 0
        e_seen: tuple[int, int] | None = None
        pipeline = cv.Pipeline(interleaved(arena, 40)).fetch(concurrency=4, per_host=4, **FAST)
        async for response in pipeline:
            if str(response.url).startswith(f_host):
                assert response.status == 200
                fetched_f += 1
                if fetched_f == 40:
                    e = arena.stats["E"]
                    # What E saw by now: no request answered (its date had not come),
                    # and no more than were on their way with its first refusal.
                    e_seen = (e.statuses[200], e.requests <= 4)
                    break  # the run is aborted: E's items are left undone
        assert e_seen == (0, True)  # every F item done while E was held
        assert arena.stats["F"].max_in_flight <= 4
