"""Reading outputs back, and running the crash job in a child process."""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = {"jsonl": "jsonl", "csv": "csv", "sqlite": "db", "parquet": "parquet"}
SINKS = list(SUFFIX)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record in an output written by one of the four file sinks."""
    name = path.name
    if name.endswith(".jsonl"):
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    if name.endswith(".csv"):
        with path.open(newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    if name.endswith(".db"):
        db = sqlite3.connect(path)
        try:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM results ORDER BY rowid")]
        finally:
            db.close()
    if name.endswith(".parquet"):
        import pyarrow.dataset as ds

        rows: list[dict[str, Any]] = ds.dataset(path).to_table().to_pylist()
        return rows
    raise AssertionError(name)


def write_input(path: Path, count: int, duplicates: int = 0) -> list[str]:
    """``count`` distinct keys, one a line, plus ``duplicates`` repeated lines."""
    keys = [f"item-{i}" for i in range(count)]
    lines = keys + keys[: duplicates * 7 : 7]
    path.write_text("# crash test input\n" + "\n".join(lines) + "\n")
    return keys


def start_job(
    mode: str, sink: str, folder: Path, *, delay: float = 0.0, fsize: int = 0, payload: int = 40
) -> subprocess.Popen[str]:
    output = folder / f"out.{SUFFIX[sink]}"
    command = [
        sys.executable, "-m", "tests.io.crash_job", mode, sink, str(output),
        str(folder / "job.journal"), str(folder / "input.txt"), "--delay", str(delay),
        "--fsize", str(fsize), "--payload", str(payload),
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])},
    )


def keys_of(records: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(str(record["key"]) for record in records)


def written_bytes(path: Path) -> int:
    """How much of the output is on disk: the file (with SQLite's WAL), or every file in
    the folder of a Parquet output (hidden parts in progress included)."""
    if path.is_dir():
        candidates = [entry for entry in path.iterdir() if entry.is_file()]
    else:
        candidates = [path, Path(f"{path}-wal")]
    total = 0
    for candidate in candidates:
        try:
            total += candidate.stat().st_size
        except FileNotFoundError:
            # Not written yet, or gone between the listing and the look: a Parquet part
            # in progress is renamed when it is finished (seen on a busy machine).
            pass
    return total


@dataclass
class _Round:
    """One job of a kill round, and the progress it must show before it is killed."""

    proc: subprocess.Popen[str]
    output: Path
    folder: Path
    commits: bool  # wait for a journal commit of this run first
    grow: int  # then for the output to grow by this many bytes
    done_at_start: int
    size_mark: int | None = None  # the output's size when the byte count started


def kill_loop(
    folders: dict[str, Path],
    mode: str,
    *,
    rounds: int,
    delay: float,
    grow: tuple[int, int],
    done: Callable[[Path], int],
) -> None:
    """Start one job per sink and SIGKILL each once it has made a chosen amount of
    progress, ``rounds`` times; then run each to its end.

    The kill moments come from what each job is seen to do, never from the clock, so they
    land mid-job however busy the machine is: every third round waits for a journal commit
    of its own run first (so the journal moves on), and each then waits until the output
    has grown by a random number of bytes in ``grow`` (so the kill lands anywhere: before
    the first commit, mid-batch, mid-flush, mid-commit)."""
    rng = random.Random(4)
    killed = {sink: 0 for sink in folders}
    progress: dict[str, set[int]] = {sink: set() for sink in folders}
    for number in range(rounds):
        jobs = {
            sink: _Round(
                start_job(mode, sink, folder, delay=delay),
                folder / f"out.{SUFFIX[sink]}",
                folder,
                commits=number % 3 == 1,
                grow=rng.randint(*grow),
                done_at_start=done(folder),
            )
            for sink, folder in folders.items()
        }
        live = dict(jobs)
        try:
            while live:  # bounded: each job either shows its progress or ends by itself
                for sink, job in list(live.items()):
                    if job.proc.poll() is not None:
                        del live[sink]
                    elif _progressed(job, done):
                        job.proc.send_signal(signal.SIGKILL)
                        del live[sink]
                time.sleep(0.01)
        except BaseException:
            for job in jobs.values():  # no job outlives a failed round, nor its pipes
                job.proc.kill()
                job.proc.communicate()
            raise
        for sink, job in jobs.items():
            _, err = job.proc.communicate(timeout=60)
            assert job.proc.returncode in (0, -signal.SIGKILL), f"{sink}: {err}"
            killed[sink] += job.proc.returncode == -signal.SIGKILL
            progress[sink].add(done(folders[sink]))
    for sink in folders:  # the kills landed mid-job, and at different points of it
        assert killed[sink] >= rounds // 2, (sink, killed)
        assert len(progress[sink]) >= 3, (sink, progress)
    for sink, folder in folders.items():
        proc = start_job(mode, sink, folder, delay=0.0)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{sink}: {err}"


def _progressed(job: _Round, done: Callable[[Path], int]) -> bool:
    """Has this job done what its round waits for before the kill?"""
    if job.size_mark is None:
        if job.commits and done(job.folder) <= job.done_at_start:
            return False
        job.size_mark = written_bytes(job.output)
    return written_bytes(job.output) - job.size_mark >= job.grow


def journal_done(folder: Path) -> int:
    """Keys the job's journal records as done (read with plain SQLite, read-only; a
    rollback journal left hot by a kill is rolled back first, which takes a writer)."""
    path = folder / "job.journal"
    if not path.exists():
        return 0
    uri = f"file:{path}?mode=ro" if not Path(f"{path}-journal").exists() else f"file:{path}"
    db = sqlite3.connect(uri, uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'done'").fetchone()
    finally:
        db.close()
    return int(row[0])


def sink_folders(
    base: Path,
    n: int,
    *,
    duplicates: int,
    sinks: Sequence[str] = ("jsonl", "csv", "sqlite", "parquet"),
) -> tuple[dict[str, Path], list[str]]:
    """One folder per sink kind, each with the same input of ``n`` keys; the keys."""
    folders: dict[str, Path] = {}
    keys: list[str] = []
    for sink in sinks:
        folder = base / sink
        folder.mkdir()
        keys = write_input(folder / "input.txt", n, duplicates=duplicates)
        folders[sink] = folder
    return folders, keys
