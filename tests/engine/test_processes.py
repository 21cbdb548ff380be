"""Process stages with real worker processes: results, crashes, segfaults, timeouts."""

from __future__ import annotations

import os

import pytest

import conveyor as cv

from . import procfns

pytestmark = pytest.mark.usefixtures("no_leftovers")


def test_results_come_back_from_worker_processes() -> None:
    out: list[int] = []
    result = cv.Pipeline(range(500)).map(procfns.square, on="processes", workers=2).run(sink=out)
    assert sorted(out) == [n * n for n in range(500)]
    assert result.stages[0].place == "processes"


def test_work_really_runs_in_other_processes() -> None:
    pids = set(cv.Pipeline(range(40)).map(procfns.pid, on="processes", workers=2))
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


def test_a_worker_that_exits_fails_only_its_item_and_the_run_goes_on() -> None:
    out: list[int] = []
    result = (
        cv.Pipeline(range(40)).map(procfns.exit_on_seven, on="processes", workers=2).run(sink=out)
    )
    assert sorted(out) == [n * 10 for n in range(40) if n != 7]
    assert [(f.key, f.kind) for f in result.failures] == [(7, "worker-crashed")]
    assert "exit code 3" in result.failures[0].message


def test_a_segfault_is_a_worker_crash() -> None:
    out: list[int] = []
    result = (
        cv.Pipeline(range(12))
        .map(procfns.segfault_on_five, on="processes", workers=2)
        .run(sink=out)
    )
    assert sorted(out) == [n for n in range(12) if n != 5]
    assert [(f.key, f.kind) for f in result.failures] == [(5, "worker-crashed")]


def test_a_crashed_item_is_retried_when_retries_allow(tmp_path: os.PathLike[str]) -> None:
    marker = os.path.join(tmp_path, "crashed-once")
    items = [(marker, n) for n in range(10)]
    out: list[int] = []
    result = (
        cv.Pipeline(items)
        .map(procfns.exit_once, on="processes", workers=2, retries=cv.Retry(2, backoff=0))
        .run(sink=out)
    )
    assert sorted(out) == list(range(10))
    assert result.failed == 0
    assert result.stages[0].retried == 1


def test_a_timeout_replaces_the_worker() -> None:
    out: list[int] = []
    result = (
        cv.Pipeline(range(8))
        .map(procfns.sleep_on_three, on="processes", workers=2, timeout=0.5)
        .run(sink=out)
    )
    assert sorted(out) == [0, 1, 2, 4, 5, 6, 7]
    assert [(f.key, f.kind) for f in result.failures] == [(3, "timeout")]


def test_exceptions_travel_back_even_unpicklable_ones() -> None:
    result = cv.Pipeline(range(6)).map(procfns.raise_on_odd, on="processes", workers=2).run()
    assert sorted(f.key for f in result.failures) == [1, 3, 5]
    assert {f.error_type for f in result.failures} == {"ValueError"}
    result = cv.Pipeline(range(2)).map(procfns.raise_unpicklable, on="processes", workers=1).run()
    assert result.failed == 2
    assert {(f.error_type, f.message) for f in result.failures} == {
        ("Unpicklable", "bad 0"),
        ("Unpicklable", "bad 1"),
    }
    # Described in the worker, so its traceback is the worker's own.
    assert all("raise_unpicklable" in (f.traceback or "") for f in result.failures)


def test_unpicklable_functions_are_refused_before_the_run() -> None:
    def local(x: int) -> int:
        return x

    with pytest.raises(cv.NotPicklableError, match="define it with `def` at module level"):
        cv.Pipeline([1]).map(local, on="processes")
