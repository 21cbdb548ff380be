"""The writer's commits: a commit cancelled while the batch before it is still being
written loses nothing it had gathered (the run's tick is cancelled as the run ends)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conveyor._engine.writer import Writer
from conveyor._io import JsonLines


class SlowFirstWrite(JsonLines):
    """JSON lines whose first write waits until the test lets it go: the batch stays
    in flight on the writer's thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.release = threading.Event()
        self.started = threading.Event()
        self._first = True

    def write(self, results: Sequence[Any]) -> None:
        if self._first:
            self._first = False
            self.started.set()
            self.release.wait(30)  # a bound, not a measure: the test sets it at once
        super().write(results)


async def test_a_commit_cancelled_behind_a_batch_in_flight_loses_nothing(tmp_path: Path) -> None:
    sink = SlowFirstWrite(tmp_path / "out.jsonl")
    with ThreadPoolExecutor(1) as thread:
        writer = Writer(sink, None, thread, commit_every=10_000, commit_interval=0.0)
        await writer.open()
        writer.add_result({"n": 0})
        await writer.commit()  # the first batch, held on the thread by its write
        await asyncio.get_running_loop().run_in_executor(None, sink.started.wait, 30)
        for n in range(1, 5):
            writer.add_result({"n": n})
        behind = asyncio.ensure_future(writer.commit())  # waits for the first batch
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        behind.cancel()  # as the run's tick is, when the run ends
        await asyncio.gather(behind, return_exceptions=True)
        sink.release.set()
        await writer.finish()
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(row["n"] for row in rows) == [0, 1, 2, 3, 4]
