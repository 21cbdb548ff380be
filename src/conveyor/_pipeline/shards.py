"""A sharded job's output folder: slices, parts, attempts and the manifest. No Ray here.

A job run on a cluster (``backend="ray"``) splits its input into ``shards`` by a stable hash
of each item's route key (a fetch's host:port, so one host has one owner, as with loops).
Everything lives in one output folder that every node sees::

    OUTDIR/part-00003.jsonl            shard 3's output (the format: the extension)
    OUTDIR/part-00003.jsonl.journal    its resume journal
    OUTDIR/_shards/plan.json           the job's fingerprint and shard count: written last
    OUTDIR/_shards/slice-00003.jsonl   shard 3's items, written by the driver before any task
    OUTDIR/_shards/00003/attempt-N     one empty file per attempt (the fence)
    OUTDIR/_shards/00003/lock          held by the attempt that runs (``Fence.hold``)
    OUTDIR/_shards/00003/done.json     the shard finished (attempt, records)
    OUTDIR/_shards/00003/progress.json its running attempt's records by outcome, each second
    OUTDIR/_MANIFEST.json              the job committed: parts, counts, fingerprint

The input is read once, by the driver. A shard attempt claims the next attempt number by
creating ``attempt-N`` exclusively (``O_EXCL``: atomic on local filesystems and NFSv3+);
an attempt that sees a higher number than its own has been replaced and may no longer
write or commit (``Fence``). Attempts also take turns: each holds an exclusive lock on the
shard's ``lock`` file while it runs, and a new attempt waits for it, so an older attempt
that passed its last fence check is through with its write or commit before the newer one
reads the journal and cuts the part back to it; the older one then meets the fence at its
next write and ends. The job is finished only when ``_MANIFEST.json`` exists: it is
written to a temporary name and renamed, so a reader sees all of it or none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._engine.loops import route_index
from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._errors import SinkError

SHARDS_DIR = "_shards"
MANIFEST = "_MANIFEST.json"
PLAN = "plan.json"
FORMATS = (".jsonl", ".csv", ".parquet", ".db")


class ShardFenced(SinkError):
    """A newer attempt of this shard has started: this one may not write or commit."""


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
        return self.control / f"slice-{index:05d}.jsonl"

    def shard_dir(self, index: int) -> Path:
        return self.control / f"{index:05d}"

    def done(self, index: int) -> Path:
        return self.shard_dir(index) / "done.json"

    def progress(self, index: int) -> Path:
        return self.shard_dir(index) / "progress.json"


def shard_of(route_key: str, shards: int) -> int:
    """The shard that owns ``route_key``: the same stable hash the loops route by."""
    return route_index(route_key, shards)


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
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
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


def split(items: Iterable[Any], route: Callable[[Any], str], layout: Layout) -> list[int]:
    """Write each item (as ``{"item": text}``) to the slice of the shard its route key names;
    return how many each slice holds. Slices are fsynced before the caller writes the plan."""
    texts = (str(item) for item in items)
    return fan_out(
        ((shard_of(route(text), layout.shards), {"item": text}) for text in texts),
        [layout.slice(i) for i in range(layout.shards)],
        lambda batch: b"".join(orjson.dumps(entry) + b"\n" for entry in batch),
        layout.control,
    )


def fan_out(
    entries: Iterable[tuple[int, Any]],
    paths: Sequence[Path],
    encode: Callable[[list[Any]], bytes],
    folder: Path,
    batch: int = 4096,
) -> list[int]:
    """Write each ``(shard, value)`` to ``paths[shard]``, ``batch`` values at a time as
    ``encode`` turns them into bytes; fsync every file; return how many each holds."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = [0] * len(paths)
    buffers: list[list[Any]] = [[] for _ in paths]
    handles = [open(path, "wb") for path in paths]
    try:
        for index, value in entries:
            buffers[index].append(value)
            counts[index] += 1
            if len(buffers[index]) >= batch:
                handles[index].write(encode(buffers[index]))
                buffers[index] = []
        for handle, buffer in zip(handles, buffers, strict=True):
            if buffer:
                handle.write(encode(buffer))
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    return counts


# -- attempts and the fence -----------------------------------------------------------------


def _attempts(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [int(n[8:]) for n in names if n.startswith("attempt-") and n[8:].isdigit()]


def current_attempt(folder: Path) -> int:
    """The newest attempt claimed in a shard's folder (0: none yet)."""
    return max(_attempts(folder), default=0)


def claim_attempt(folder: Path) -> int:
    """Claim the next attempt number: exclusive creation, so two attempts never share one."""
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        number = current_attempt(folder) + 1
        try:
            os.close(os.open(folder / f"attempt-{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # another attempt took it: take the next
        _fsync_dir(folder)
        return number


@dataclass(frozen=True)
class Fence:
    """Attempt ``attempt`` of the shard whose folder is ``folder``."""

    folder: Path
    attempt: int

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Run this attempt under the shard's lock: wait until no older attempt holds it
        (one that is replaced stops at its next fence check, and its process ending lets
        go of the lock too; on NFS, a lease that lapses does). ``flock`` is the advisory
        lock Linux maps onto NFS byte-range locks."""
        import fcntl  # Unix: Ray's nodes

        with open(self.folder / "lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def check(self) -> None:
        newest = current_attempt(self.folder)
        if newest != self.attempt:
            raise ShardFenced(
                f"shard {self.folder.name}: attempt {self.attempt} was replaced by attempt "
                f"{newest}; it stops without writing"
            )


class FencedSink:
    """A sink that checks its fence before it opens, writes and commits: a replaced attempt
    (a node cut off, then given up on by Ray) cannot add to the part or move the journal on,
    because the writer records keys only after ``flush`` returns."""

    def __init__(self, inner: Sink, fence: Fence) -> None:
        self.inner = inner
        self.fence = fence

    def describe(self) -> Any:
        describe = getattr(self.inner, "describe", None)
        return describe() if callable(describe) else type(self.inner).__name__

    def open(self, position: Any = None) -> None:
        self.fence.check()
        self.inner.open(position)

    def write(self, results: Sequence[Any]) -> None:
        self.fence.check()
        self.inner.write(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.fence.check()
        self.inner.write_failures(failures)

    def flush(self) -> Any:
        self.fence.check()
        position = self.inner.flush()
        self.fence.check()  # replaced while flushing: the journal must not record it
        return position

    def close(self) -> None:
        self.inner.close()


# -- the manifest ---------------------------------------------------------------------------


def write_manifest(layout: Layout, fingerprint: Any, records: Sequence[int]) -> None:
    parts = [{"name": layout.part(i).name, "records": n} for i, n in enumerate(records)]
    manifest = {
        "version": 1,
        "format": layout.extension.lstrip("."),
        "shards": layout.shards,
        "records": sum(records),
        "parts": parts,
        "fingerprint": fingerprint,
    }
    write_atomic(layout.manifest, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def read_manifest(outdir: Path) -> dict[str, Any] | None:
    manifest = read_json(outdir / MANIFEST)
    return manifest if isinstance(manifest, dict) else None
