"""Cutting the source into one slice per shard, and reading a slice back in its task.

The driver reads the source once. Each item goes to the shard its route key names, by a
stable hash (``layout.shard_of``): the first stage's own route key (a fetch's host:port,
so one host has one owner, as with loops), else the item's key, else its position. A slice
is the items pickled in batches (with Ray's cloudpickle the stages cross too, so lambdas
work; the items are plain ``pickle``), fsynced before the plan that names them is written.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._engine.spec import StageSpec
from .layout import Layout, shard_of

# Items per pickled batch: small enough that a slice is read back lazily.
_BATCH = 1024

Route = Callable[[int, Any], str]  # (position, item) -> the route key


def route_for(stages: Sequence[StageSpec], key: Callable[[Any], Hashable] | None) -> Route:
    """How the job's items are cut: by the first stage's route key, else by the item's
    key, else by its position."""
    first = stages[0] if stages else None
    if first is not None and first.route is not None:
        route = first.route
        return lambda _, item: str(route(item))
    if key is not None:
        key_of = key
        return lambda _, item: str(key_of(item))
    return lambda position, _: str(position)


def split(items: Iterable[Any], route: Route, layout: Layout) -> list[int]:
    """Write each item to the slice of the shard its route key names; return how many each
    slice holds."""
    return _fan_out(
        ((shard_of(route(position, item), layout.shards), item)
         for position, item in enumerate(items)),
        [layout.slice(i) for i in range(layout.shards)],
        lambda batch: pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL),
        layout.control,
    )  # fmt: skip


def _fan_out(
    entries: Iterable[tuple[int, Any]],
    paths: Sequence[Path],
    encode: Callable[[list[Any]], bytes],
    folder: Path,
    batch: int = _BATCH,
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


class SliceSource:
    """A shard's items, read back lazily from the pickled batches the driver wrote."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def describe(self) -> str:
        """For the shard journal's fingerprint: which slice (the plan holds the job's)."""
        return f"slice:{os.path.basename(self.path)}"

    def __iter__(self) -> Iterator[Any]:
        with open(self.path, "rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)
                except EOFError:
                    return
                yield from batch
