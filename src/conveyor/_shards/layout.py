"""Where each file of a sharded job lives, and which files are the job's.

Everything lives in one output folder that every node sees::

    OUTDIR/part-00003.jsonl            shard 3's output (the format: OUTDIR's extension)
    OUTDIR/part-00003.jsonl.journal    its resume journal
    OUTDIR/_shards/plan.json           the job's fingerprint and items per shard: written last
    OUTDIR/_shards/slice-00003.pickle  shard 3's items, written by the driver before any task
    OUTDIR/_shards/00003/attempt-N     one empty file per attempt (the fence)
    OUTDIR/_shards/00003/lock          held by the attempt that runs (``Fence.hold``)
    OUTDIR/_shards/00003/worker.pid    the process running the newest attempt
    OUTDIR/_shards/00003/done.json     the shard finished (attempt, records)
    OUTDIR/_shards/00003/progress.json its running attempt's records by outcome, each second
    OUTDIR/_shards/inbox/00003/        a crawl's links for shard 3 from the others (inbox.py)
    OUTDIR/_MANIFEST.json              the job committed: parts, counts, fingerprint

The folder may hold other things (a user's notes, a folder of theirs): ``clear`` removes
only the names above, so ``restart`` never deletes what the job did not write.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._engine.loops import route_index

SHARDS_DIR = "_shards"
MANIFEST = "_MANIFEST.json"
PLAN = "plan.json"
FORMATS = (".jsonl", ".csv", ".parquet", ".db")
# Other spellings of the four formats: the parts take the canonical one.
_SPELLINGS = {".sqlite": ".db", ".sqlite3": ".db", ".ndjson": ".jsonl"}
# What a shard's folder holds (``.name.tmp-PID``: a ``write_atomic`` cut short).
_SHARD_FILE = re.compile(r"(attempt-\d+|lock|worker\.pid|done\.json|progress\.json)")
_TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+")
# SQLite's files beside a database (parts in .db, every journal).
_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Layout:
    """Where each file of a sharded job lives in ``outdir``."""

    outdir: Path
    shards: int
    extension: str  # ".jsonl", ".csv", ".parquet" or ".db"

    @property
    def control(self) -> Path:
        return self.outdir / SHARDS_DIR

    @property
    def plan(self) -> Path:
        return self.control / PLAN

    @property
    def manifest(self) -> Path:
        return self.outdir / MANIFEST

    def part(self, index: int) -> Path:
        return self.outdir / f"part-{index:05d}{self.extension}"

    def journal(self, index: int) -> Path:
        return Path(f"{self.part(index)}.journal")

    def slice(self, index: int) -> Path:
        return self.control / f"slice-{index:05d}.pickle"

    def shard_dir(self, index: int) -> Path:
        return self.control / f"{index:05d}"

    def done(self, index: int) -> Path:
        return self.shard_dir(index) / "done.json"

    def progress(self, index: int) -> Path:
        return self.shard_dir(index) / "progress.json"

    def worker_pid(self, index: int) -> Path:
        return self.shard_dir(index) / "worker.pid"


def layout_for(outdir: str | os.PathLike[str], shards: int) -> Layout:
    """The one rule for the parts' format: OUTDIR's extension (``pages.jsonl`` →
    ``part-00000.jsonl``; ``.sqlite``/``.sqlite3`` → ``.db``, ``.ndjson`` → ``.jsonl``);
    a folder with no known extension gets JSON lines."""
    extension = os.path.splitext(os.fspath(outdir).rstrip("/"))[1].lower()
    extension = _SPELLINGS.get(extension, extension)
    return Layout(Path(outdir), shards, extension if extension in FORMATS else ".jsonl")


def shard_of(route_key: str, shards: int) -> int:
    """The shard that owns ``route_key``: the same stable hash the loops route by."""
    return route_index(route_key, shards)


def is_ours(layout: Layout, name: str) -> bool:
    """Whether ``name``, in OUTDIR, is a file the job's layout names (any shard count)."""
    temporary = _TEMPORARY.fullmatch(name)
    name = temporary.group(1) if temporary else name
    if name in (MANIFEST, SHARDS_DIR):
        return True
    part = re.escape(layout.extension)
    sidecar = "|".join(_SIDECARS)
    return bool(re.fullmatch(rf"part-\d{{5}}{part}(\.journal)?({sidecar})?", name))


def clear(layout: Layout) -> None:
    """``restart``: remove the job's files, and nothing else. In OUTDIR, the names the
    layout gives (parts, journals, the manifest); in ``_shards``, the plan, the slices and
    the shards' own files; a folder goes only once empty, so one the user put anywhere in
    OUTDIR stays, with all it holds."""
    control = layout.control
    if control.is_dir():
        for entry in control.iterdir():
            if entry.is_dir() and re.fullmatch(r"\d{5}", entry.name):
                for inner in entry.iterdir():
                    if _SHARD_FILE.fullmatch(inner.name) or _TEMPORARY.fullmatch(inner.name):
                        _remove(inner)
                _remove_if_empty(entry)
            elif entry.is_dir() and entry.name == "inbox":  # a crawl's links between shards
                shutil.rmtree(entry, ignore_errors=True)
            elif re.fullmatch(r"(plan\.json|slice-\d{5}\.pickle)", entry.name) or (
                _TEMPORARY.fullmatch(entry.name)
            ):
                _remove(entry)
        _remove_if_empty(control)
    with contextlib.suppress(FileNotFoundError):
        for entry in layout.outdir.iterdir():
            if entry.name != SHARDS_DIR and is_ours(layout, entry.name):
                _remove(entry)


def _remove(path: Path) -> None:
    # A Parquet part is a folder of the sink's own files: the layout names it whole.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: something of the user's is in it
        folder.rmdir()


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``path`` whole or not at all: a temporary name, fsync, rename, fsync the folder.
    ``durable=False``: no fsyncs, for what a crash may lose (a progress report)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)
    if durable:
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot open a folder for sync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing."""
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
