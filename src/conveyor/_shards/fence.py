"""Attempts of a shard, and the fence that stops a replaced one.

A shard attempt claims the next attempt number by creating ``_shards/0000N/attempt-K``
exclusively (``O_EXCL``: atomic on local filesystems and NFSv3+); an attempt that sees a
higher number than its own has been replaced and may no longer write or commit
(``Fence.check``, ``FencedSink``). Attempts also take turns: each holds an exclusive lock on
the shard's ``lock`` file while it runs, and a new attempt waits for it, so an older attempt
that passed its last fence check is through with its write or commit before the newer one
reads the journal and cuts the part back to it; the older one then meets the fence at its
next write and ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._errors import ShardFenced
from .._io.sinks.forward import Forward
from .layout import fsync_dir


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
        fsync_dir(folder)
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


class FencedSink(Forward):
    """A sink that checks its fence before it opens, writes and commits: a replaced attempt
    (a node cut off, then given up on by Ray) cannot add to the part or move the journal on,
    because the writer records keys only after ``flush`` returns."""

    def __init__(self, inner: Sink, fence: Fence) -> None:
        super().__init__(inner)
        self.fence = fence

    def open(self, position: Any = None) -> None:
        self.fence.check()
        super().open(position)

    def write(self, results: Sequence[Any]) -> None:
        self.fence.check()
        super().write(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.fence.check()
        super().write_failures(failures)

    def flush(self) -> Any:
        self.fence.check()
        position = super().flush()
        self.fence.check()  # replaced while flushing: the journal must not record it
        return position
