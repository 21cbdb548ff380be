"""``retry_on_resume``: a result that is written yet leaves its key to ``retry_failed``.

A plain ``Pipeline`` and a real journal and JSON-lines file: the first run writes every
result and journals the retryable ones as failed; a plain resume runs nothing; a resume
with ``retry_failed=True`` runs exactly those keys (and the failures) again, appending
their new results after the old ones.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

import conveyor as cv

# What the "server" answers on each call, per item: the calls are counted here, so the
# function stays the same object across runs (the journal's fingerprint names it).
CALLS: Counter[str] = Counter()
ITEMS = ["ok", "gone", "busy", "slow", "boom"]
ANSWERS = {"ok": [200], "gone": [404], "busy": [503, 200], "slow": [429, 429], "boom": []}


def answer(item: str) -> dict[str, Any]:
    CALLS[item] += 1
    statuses = ANSWERS[item]
    if not statuses:
        raise ConnectionError(f"{item}: no response")
    status = statuses[min(CALLS[item], len(statuses)) - 1]
    return {"item": item, "status": status, "attempts": 2}


def split(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A flat_map that keeps the row: the tracker then keeps each root (not ``single``)."""
    return [row]


def retryable(row: dict[str, Any]) -> tuple[str, int] | None:
    status = row["status"]
    return (f"http-{status}", row["attempts"]) if status >= 500 or status == 429 else None


def lines(path: Path) -> list[tuple[str, Any]]:
    """(item, status) for each result, (item, error kind) for each failure, in file order."""
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    # A failure's record has its key: the item itself, or its input position.
    named = [
        r.get("item") or (ITEMS[r["key"]] if type(r["key"]) is int else r["key"]) for r in rows
    ]
    return [(n, r.get("status") or r.get("error_kind")) for n, r in zip(named, rows, strict=True)]


SHAPES = {
    "map, keyed": dict(key=True, flat=False, ordered=False),
    "map, positions": dict(key=False, flat=False, ordered=False),
    "flat_map, ordered": dict(key=True, flat=True, ordered=True),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_retryable_results_are_written_and_run_again_only_with_retry_failed(
    shape: str, tmp_path: Path
) -> None:
    options = SHAPES[shape]
    items = ITEMS
    pipeline = cv.Pipeline(items, key=(lambda item: item) if options["key"] else None)
    pipeline = pipeline.map(answer, on="inline")
    if options["flat"]:
        pipeline = pipeline.flat_map(split)
    out, journal = tmp_path / "out.jsonl", str(tmp_path / "run.journal")
    CALLS.clear()

    def run(**more: Any) -> cv.RunResult:
        return pipeline.run(
            str(out), journal=journal, retry_on_resume=retryable, ordered=options["ordered"],
            **more,
        )  # fmt: skip

    first = run()
    assert (first.results, first.failed) == (4, 1)  # a retryable result is a result
    written = lines(out)
    assert sorted(written) == sorted(
        [("ok", 200), ("gone", 404), ("busy", 503), ("slow", 429), ("boom", "error")]
    )
    key = {item: (item if options["key"] else i) for i, item in enumerate(items)}

    # A plain resume: every key is finished, the retryable ones as failed.
    again = run()
    assert (again.items, again.skipped) == (0, 5)
    assert lines(out) == written
    assert sum(CALLS.values()) == 5

    # --retry-failed: the 503, the 429 and the failure run again; their new outcomes are
    # appended after everything the first run wrote, which stays as it was.
    retried = run(retry_failed=True)
    assert (retried.items, retried.skipped) == (3, 2)
    assert CALLS == Counter(ok=1, gone=1, busy=2, slow=2, boom=2)
    now = lines(out)
    assert now[: len(written)] == written
    assert sorted(now[len(written) :]) == sorted([("busy", 200), ("slow", 429), ("boom", "error")])

    # Only what is still retryable (the 429 again) or failed is left for the next one.
    with contextlib.closing(sqlite3.connect(journal)) as db:
        failed = db.execute("SELECT key, kind, attempts FROM keys WHERE state = 2").fetchall()
    assert sorted(failed, key=str) == sorted(
        [(key["slow"], "http-429", 2), (key["boom"], "error", 1)], key=str
    )


def test_retry_on_resume_needs_a_journal_and_a_function(tmp_path: Path) -> None:
    pipeline = cv.Pipeline(["ok"]).map(answer, on="inline")
    with pytest.raises(cv.UsageError, match="retry_on_resume= needs a journal"):
        pipeline.run([], retry_on_resume=retryable)
    with pytest.raises(cv.UsageError, match="must be a function"):
        pipeline.run([], journal=str(tmp_path / "j"), retry_on_resume="http-503")  # type: ignore[arg-type]


def broken(row: dict[str, Any]) -> str | None:
    raise KeyError("state")


def test_a_predicate_that_raises_ends_the_run_with_its_error(tmp_path: Path) -> None:
    pipeline = cv.Pipeline(["ok", "gone"]).map(answer, on="inline")
    with pytest.raises(KeyError) as raised:
        pipeline.run(str(tmp_path / "o.jsonl"), journal=str(tmp_path / "j"), retry_on_resume=broken)
    assert "retry_on_resume raised" in "".join(raised.value.__notes__)
