"""Items waiting on a held host wait in the fetch's waiting room, not in its request slots.

A host held back (here E, paused by its site's Retry-After date) keeps its items waiting
inside the client; they must not take the workers the other hosts' items need
(``_pipeline/fetch.py`` ``stage_workers``, ``StageSpec.slots``). Everything is observed
from what the arena's hosts saw and from the results, never from the clock.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

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


async def test_the_progress_line_tells_requests_out_from_items_waiting() -> None:
    """While E is held, its items wait in the fetch's room: the live line counts the
    requests out (at most ``concurrency``) apart from the items waiting, rather than
    one "in flight" figure far above ``--concurrency``."""
    from conveyor._observe import Progress

    async with run_arena(HELD) as arena:
        stream = io.StringIO()
        progress = Progress(mode="plain", plain_interval=0.0, stream=stream)
        pipeline = cv.Pipeline(interleaved(arena, 40)).fetch(concurrency=4, per_host=4, **FAST)
        waiting: list[tuple[int, int]] = []
        async for response in pipeline.stream(observers=(progress,)):
            if str(response.url).startswith(arena.url("F")):
                for _ in range(200):  # a bound on the wait for a tick, not a measure of time
                    waiting = [
                        (int(m[1]), int(m[2]))
                        for m in re.finditer(
                            r"fetch (\d+) in flight, (\d+) waiting", stream.getvalue()
                        )
                    ]
                    if waiting:
                        break
                    await asyncio.sleep(0.05)
                break
        assert waiting  # E's items were shown waiting
        assert all(out <= 4 and out + held <= 80 for out, held in waiting)


@pytest.mark.parametrize(("loops", "count"), [(1, 40), (2, 40), (2, 120)])
async def test_ctrl_c_leaves_the_items_waiting_on_a_held_host_for_the_next_run(
    tmp_path: Path, loops: int, count: int
) -> None:
    """A run on E (held 30 s) and F, interleaved, with a grace of 600 s: once every F
    row is committed, Ctrl-C. E's items wait in the waiting room with nothing sent: the
    stop leaves them at once, unrecorded (neither done nor deferred in the journal), for
    the next run; the grace would have let them wait out E's pause and be fetched. With
    two loop processes the stop reaches each loop's client; with 120 items of each, more
    of E's wait than the parent keeps out in the loops unasked (the 4 slots and 64 in
    transit): only the loops' word of their parked items lets F's by."""
    from conveyor._io import read_counts

    async with run_arena(HELD) as arena:
        urls = interleaved(arena, count)
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
        out = tmp_path / "out.jsonl"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.polite.stop_job", str(tmp_path / "urls.txt"),
            str(out), str(loops),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
        )  # fmt: skip
        f_host = arena.url("F")
        while proc.returncode is None:  # until every F row is committed (or the run ends)
            rows = out.read_bytes().splitlines() if out.exists() else []
            if sum(orjson.loads(row)["url"].startswith(f_host) for row in rows) == count:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = await proc.communicate()
        e = arena.stats["E"]
        e_seen = (e.statuses[200], e.requests <= 4)
    assert proc.returncode == 130, stderr.decode()
    assert e_seen == (0, True)  # the run ended while E was held: nothing waited it out
    rows = [orjson.loads(row) for row in out.read_bytes().splitlines()]
    fetched = sorted(r["url"] for r in rows if r["url"].startswith(f_host))
    assert fetched == sorted(u for u in urls if u.startswith(f_host))
    # E's rows: only an item whose retry its host's budget refused (with two loops, each
    # holds half of it) ends on E's refusal; the others were left, recorded nowhere.
    assert all(r["status"] == 503 for r in rows if not r["url"].startswith(f_host))
    counts = read_counts(f"{out}.journal")
    assert counts is not None
    assert (counts.done, counts.deferred, counts.failed) == (len(rows), 0, 0)


def cpu_heavy_row(response: Any) -> tuple[str, int]:
    """A row that costs ~1 ms of CPU, so the run's loop is CPU-bound and ``loops="auto"``
    moves the fetch (module-level: it moves with the head)."""
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return str(response.url), response.status


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="auto moves with a core to spare")
async def test_at_the_move_a_held_hosts_waiting_items_wait_out_its_pause() -> None:
    """``loops="auto"``: the fetch starts on the run's loop and moves to loop processes
    once that loop is CPU-bound. E's items waiting there on E's pause when it moves have
    sent nothing: they are let go to the loop processes rather than run on the busy
    loop, but only once the pause is over, since the loop processes never heard of it.
    E sees no request before its date but those on their way with its first refusal
    (at most ``per_host`` in all), and every item ends once, fetched."""
    names = ["E", "F", "G", "H", "I"]
    async with run_arena(ArenaSettings(hosts=9, e_retry_after=4.0)) as arena:
        urls = [arena.url(name, f"/item/{n}") for n in range(400) for name in names]
        out: list[tuple[str, int]] = []
        result = await (
            cv.Pipeline(iter(urls))  # of no known length: auto may move
            .fetch(concurrency=8, per_host=4, **FAST)
            .map(cpu_heavy_row, on="inline")
            .run_async(sink=out, loops="auto")
        )
        e = arena.stats["E"]
    assert result.stages[0].reason.startswith("moved to"), result.stages[0].reason
    assert sorted(out) == sorted((url, 200) for url in urls)
    assert e.early <= 3, e.early
