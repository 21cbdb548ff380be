"""The job in its folder: planned once (slices, then ``plan.json``), committed once
(``_MANIFEST.json``), and found again by every later run.

The plan's fingerprint is the pipeline's own (the one a local run's journal keeps:
source, key, stages) with the shard count and the parts' format added, so one rule says
when two runs are the same job, on one machine or on many. Both files are written whole
or not at all (``write_atomic``): the plan after the slices it names, the manifest after
every shard is done, so a reader sees all of either or none.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._errors import JobMismatchError, UsageError
from .._io import read_counts
from .fence import current_attempt
from .layout import MANIFEST, PLAN, SHARDS_DIR, Layout, clear, layout_for, read_json, write_atomic
from .slices import Route, split


@dataclass(frozen=True)
class Plan:
    layout: Layout
    fingerprint: dict[str, Any]
    items: list[int]  # per shard


def _canonical(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint as it reads back from ``plan.json``, to compare like with like."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(dict(fingerprint), default=str))
    return loaded


def prepare(
    outdir: Path,
    *,
    fingerprint: Mapping[str, Any],
    source: Iterable[Any],
    route: Route,
    shards: int | None,
    default_shards: int,
    restart: bool,
) -> Plan:
    """The job's plan in ``outdir``: an earlier run's (checked against this job), or a new
    one, for which the source is read, here, once.

    Raises:
        UsageError: ``outdir`` is a file, or holds files but no job (and no ``restart``),
            or the job there was cut into another number of shards.
        JobMismatchError: ``outdir`` holds another job.
    """
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(
            f"{outdir} is a file; a job on Ray writes a folder of parts: give a new folder name"
        )
    if restart:
        clear(layout_for(outdir, 1))
    plan = read_json(outdir / SHARDS_DIR / PLAN)
    if isinstance(plan, dict):
        count = int(plan["fingerprint"]["shards"])
        if shards is not None and shards != count:
            raise UsageError(
                f"{outdir} holds a job cut into {count} shards, not {shards}; leave the shard "
                "count out to resume it, or pass restart=True (--restart) to begin again"
            )
        layout = layout_for(outdir, count)
        expected = _canonical({**fingerprint, "shards": count, "format": layout.extension})
        if plan["fingerprint"] != expected:
            old = plan["fingerprint"]
            changed = ", ".join(k for k in sorted(set(old) | set(expected))
                                if old.get(k) != expected.get(k))  # fmt: skip
            raise JobMismatchError(
                f"{outdir} holds another job ({changed} changed); pass restart=True "
                "(--restart) to begin again, or choose another folder"
            )
        return Plan(layout, expected, [int(n) for n in plan["items"]])
    if not restart and outdir.exists() and any(_visible(outdir)):
        raise UsageError(f"{outdir} is not empty and holds no sharded job; choose a new folder")
    outdir.mkdir(parents=True, exist_ok=True)
    layout = layout_for(outdir, shards or default_shards)
    items = split(source, route, layout)  # the input is read once, here
    made = _canonical({**fingerprint, "shards": layout.shards, "format": layout.extension})
    write_atomic(
        layout.plan, orjson.dumps({"fingerprint": made, "items": items}, option=orjson.OPT_INDENT_2)
    )
    return Plan(layout, made, items)


def _visible(folder: Path) -> Iterable[str]:
    """Names in ``folder`` but hidden ones (``.DS_Store``, NFS's ``.nfs…``)."""
    return (name for name in os.listdir(folder) if not name.startswith("."))


def finished(layout: Layout, index: int, *, retry_failed: bool = False) -> int | None:
    """A shard's record count if it is done (by its newest attempt), else None: it runs.
    With ``retry_failed``, a done shard whose journal holds failed keys runs again too."""
    done = read_json(layout.done(index))
    if not (
        isinstance(done, dict) and done.get("attempt") == current_attempt(layout.shard_dir(index))
    ):
        return None
    if retry_failed:
        counts = read_counts(layout.journal(index))
        if counts is None or counts.failed:  # unreadable now: its own run will know
            return None
    return int(done["records"])


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
