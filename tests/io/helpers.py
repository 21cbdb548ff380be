"""Reading outputs back, and running the crash job in a child process."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = {"jsonl": "jsonl", "csv": "csv", "sqlite": "db", "parquet": "parquet"}


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
