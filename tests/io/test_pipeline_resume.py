"""End to end: ``Pipeline.run(sink=..., journal=...)`` killed, interrupted and resumed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from .helpers import (
    SUFFIX,
    journal_done,
    keys_of,
    kill_loop,
    read_records,
    sink_folders,
    start_job,
    write_input,
)


@pytest.mark.slow
def test_sigkill_ten_times_then_resume_gives_each_of_5000_keys_once(tmp_path: Path) -> None:
    folders, keys = sink_folders(tmp_path, 5000, duplicates=25)
    # ~500 items/s (4 threads sleeping 8 ms each), a commit a second: each kill comes after
    # a chosen amount of progress (a commit of its own run, or not, then some records
    # more), so ten runs do not finish the job; the last run, at full speed, does.
    kill_loop(folders, "pipeline", rounds=10, delay=0.008, grow=(1, 30_000), done=journal_done)
    for sink, folder in folders.items():
        records = read_records(folder / f"out.{SUFFIX[sink]}")
        assert len(records) == 5000, sink
        assert keys_of(records) == sorted(keys), sink


@pytest.mark.slow
def test_position_keys_survive_sigkill_and_every_line_ends_once(tmp_path: Path) -> None:
    """Default keys (input positions) are journaled as spans: a repeated line is an item
    of its own, and each of the 3,025 lines is written exactly once."""
    folders, keys = sink_folders(tmp_path, 3000, duplicates=25, sinks=("jsonl", "sqlite"))
    lines = keys + keys[: 25 * 7 : 7]
    kill_loop(folders, "positions", rounds=8, delay=0.008, grow=(1, 20_000), done=journal_done)
    for sink, folder in folders.items():
        assert keys_of(read_records(folder / f"out.{SUFFIX[sink]}")) == sorted(lines), sink


@pytest.mark.parametrize("sink", ["jsonl", "parquet"])
def test_sigint_stops_cleanly_says_how_to_resume_and_resuming_finishes(
    sink: str, tmp_path: Path
) -> None:
    keys = write_input(tmp_path / "input.txt", 5000, duplicates=10)
    proc = start_job("pipeline", sink, tmp_path, delay=0.002)
    deadline = time.monotonic() + 30
    while journal_done(tmp_path) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first commit
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "run the same command again to resume" in err
    done_before = journal_done(tmp_path)
    assert 0 < done_before < 5000

    proc = start_job("pipeline", sink, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"skipped={done_before + 10}" in out  # done keys and the duplicates
    assert keys_of(read_records(tmp_path / f"out.{SUFFIX[sink]}")) == sorted(keys)


def test_full_disk_in_a_pipeline_is_one_line_and_resumes(tmp_path: Path) -> None:
    keys = write_input(tmp_path / "input.txt", 3000)
    proc = start_job("pipeline", "jsonl", tmp_path, fsize=256 * 1024, payload=400)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert "run again to resume" in err
    proc = start_job("pipeline", "jsonl", tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert keys_of(read_records(tmp_path / "out.jsonl")) == sorted(keys)
