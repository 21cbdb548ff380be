"""Deferred items end exactly once across runs, with runs killed (SIGKILL) mid-way: the
kill moments come from the journal's committed progress, never from the clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from conveyor._io import read_counts
from conveyor._io.journal.journal import JournalStatistics

from .defer_fns import DEFER

ROOT = Path(__file__).resolve().parents[2]
COUNT = 1500
KILLED: list[bool] = []  # whether each kill landed (for a look with -s; not asserted)


def _start(mode: str, folder: Path, rule: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tests.engine.defer_job", mode, str(folder / "out.jsonl"),
        str(folder / "job.journal"), str(folder / "input.txt"),
    ]  # fmt: skip
    env = {**os.environ, DEFER: rule}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _kill_once(
    proc: subprocess.Popen[str], journal: Path, moved: Callable[[JournalStatistics], bool]
) -> None:
    """SIGKILL the job once its journal shows ``moved`` progress (or let it be, when it
    ended first: then there was nothing to interrupt)."""
    for _ in range(60_000):  # a safety bound only: the job moves on by itself
        if proc.poll() is not None:
            break
        counts = read_counts(journal)
        if counts is not None and moved(counts):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate()
    KILLED.append(proc.returncode == -signal.SIGKILL)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out


@pytest.mark.parametrize("mode", ["threads", "loops"])
def test_deferred_items_end_once_across_killed_runs(tmp_path: Path, mode: str) -> None:
    (tmp_path / "input.txt").write_text("\n".join(f"item-{i}" for i in range(COUNT)) + "\n")
    journal = tmp_path / "job.journal"
    thirds = len(range(0, COUNT, 3))

    # Multiples of three are deferred: killed once the first commit is in, then finished.
    _kill_once(_start(mode, tmp_path, "third"), journal, lambda c: c.done + c.deferred > 0)
    _finish(_start(mode, tmp_path, "third"))
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.deferred, counts.failed) == (COUNT - thirds, thirds, 0)

    # The next runs take up only the deferred ones: killed once some ended, then finished.
    _kill_once(_start(mode, tmp_path, "none"), journal, lambda c: c.deferred < thirds)
    out = _finish(_start(mode, tmp_path, "none"))
    assert "deferred=0" in out
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.deferred, counts.failed) == (COUNT, 0, 0)
    rows = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert sorted(row["n"] for row in rows) == list(range(COUNT))  # each exactly once


def teardown_module() -> None:
    print(f"kills landed: {KILLED}")  # noqa: T201
