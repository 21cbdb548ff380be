"""The main job behind ``conveyor fetch`` (and ``conveyor demo``): fetch, make the row, write.

    read URLs ──► fetch (loop) + its row (the same worker: ``record.response_row``)
              ──► the user's --process stage (threads or processes) ──► row sink

Every URL ends as one row (``record.py``): the page's summary, or its failure.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from .. import Pipeline
from .._engine.loops import WarmLoops
from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._engine.stats import RunResult
from .._errors import UsageError
from .._io.sinks.forward import Forward
from .errors import fail
from .record import failure_row, response_row, response_row_with_body


@dataclass
class FetchJob:
    input: str
    output: str
    column: str | None = None
    fetch_options: dict[str, Any] = field(default_factory=dict)
    process: str | None = None
    on: Literal["threads", "processes"] = "threads"
    workers: int | None = None
    loops: int | Literal["auto"] | WarmLoops = "auto"  # WarmLoops: started ahead (fetch.py)
    journal: str | None = None
    restart: bool = False
    retry_failed: bool = False
    # Pipeline.run's tail options (``polite.run_options_of``): deadline=, finish_at=.
    run_options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the job reads, for the report's title."""
        return self.input

    def make_sink(self, on_rows: Callable[[Sequence[dict[str, Any]]], None]) -> Sink:
        return output_sink(self.output, on_rows)

    def run(self, sink: Sink, observers: tuple[Any, ...]) -> RunResult:
        return run_job(self, sink, observers)

    def finish_report(self, report: Any, result: RunResult) -> None:
        """Add what is the job's own to the report (``conveyor crawl``'s section)."""


class MergeInto:
    """Run the user's function on a record and merge the dict it returns into the record.

    A module-level class holding a module-level function, so it pickles for processes; the
    body is dropped inside the worker so it is not sent back.
    """

    def __init__(self, fn: Callable[[dict[str, Any]], Any], name: str) -> None:
        self.fn = fn
        self.name = name

    def describe(self) -> str:
        """For the journal's fingerprint: which function, not which object."""
        return f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', '?')}"

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        extra = self.fn(record)
        record.pop("body", None)
        if extra is None:
            return record
        if not isinstance(extra, dict):
            raise TypeError(f"{self.name} returned {type(extra).__name__}; it must return a dict")
        record.update(extra)
        return record


def load_function(target: str) -> Callable[[dict[str, Any]], Any]:
    module_name, _, function_name = target.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules beside the user work
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        fail(f"--process {target}: cannot import {module_name} ({exc}); is it on PYTHONPATH?")
    fn = getattr(module, function_name, None)
    if not callable(fn):
        fail(f"--process {target}: {module_name} has no function {function_name}")
    return fn  # type: ignore[no-any-return]


class RowSink(Forward):
    """Wraps a file sink: results are rows already; failures become rows here. Each batch
    of rows is also shown to ``on_rows`` (the report's tally), on the writer thread."""

    def __init__(self, inner: Sink, on_rows: Callable[[Sequence[dict[str, Any]]], None]) -> None:
        super().__init__(inner)
        self.on_rows = on_rows

    def write(self, results: Sequence[Any]) -> None:
        self.on_rows(results)
        self.inner.write(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        rows = [failure_row(f) for f in failures]
        self.on_rows(rows)
        self.inner.write(rows)


class StdoutSink:
    """``-o -``: JSON lines on standard output (no journal: stdout cannot be truncated)."""

    def open(self, position: Any = None) -> None:
        return None

    def write(self, results: Sequence[Any]) -> None:
        out = sys.stdout.buffer
        for record in results:
            out.write(orjson.dumps(record, default=str) + b"\n")

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.write([failure_row(f) for f in failures])

    def flush(self) -> Any:
        sys.stdout.flush()
        return None

    def close(self) -> None:
        sys.stdout.flush()


def open_source(path: str, column: str | None) -> Any:
    from .. import _io

    lower = path.lower()
    try:
        if lower.endswith((".csv", ".csv.gz")):
            return _io.read_csv(path, column=column or "url")
        if lower.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            return _io.read_jsonl(path, field=column or "url")
        if lower.endswith(".parquet"):
            return _io.read_parquet(path, column=column or "url")
        return _io.read_lines(path)
    except UsageError as exc:
        fail(str(exc))


def check_input(path: str) -> None:
    if path == "-":
        return
    target = Path(path)
    if not target.exists():
        fail(f"input {path} does not exist; give a file of URLs, one per line (or - for stdin)")
    if target.is_dir():
        fail(f"input {path} is a directory; give a file of URLs, one per line")
    if not os.access(target, os.R_OK):
        fail(f"input {path} cannot be read (permission denied); check its permissions")


def check_output(path: str) -> None:
    if path == "-":
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        fail(f"cannot write {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
        fail(f"cannot write {path}: permission denied; choose another output path")


def is_warc(path: str) -> bool:
    """A WARC output: the responses themselves are written, not rows."""
    return path.lower().endswith((".warc", ".warc.gz"))


def output_sink(
    path: str,
    on_rows: Callable[[Sequence[dict[str, Any]]], None],
    *,
    rows: Callable[[Sink, Callable[[Sequence[dict[str, Any]]], None]], Sink] | None = None,
    failure_rows: Callable[[Failure], dict[str, Any]] | None = None,
) -> Sink:
    """The output's sink: rows (``rows`` wraps the file sink: ``RowSink``, or a crawl's),
    or, for a WARC file, the responses themselves with ``failure_rows`` for the tally."""
    wrap = rows or RowSink
    if path == "-":
        return wrap(StdoutSink(), on_rows)
    from .. import _io

    try:
        inner: Sink = _io.sink_for(path, failures="inline" if is_warc(path) else None)
    except UsageError as exc:
        fail(str(exc))
    if is_warc(path):
        return WarcTally(inner, on_rows, failure_rows or failure_row)
    return wrap(inner, on_rows)


class WarcTally(Forward):
    """A WARC sink that shows the summary's tally what it writes: the status, URL (and a
    crawl's depth) of each response, and each failure's row; no row is made for the
    file, which takes the responses themselves (``__conveyor_warc__``)."""

    def __init__(
        self,
        inner: Sink,
        on_rows: Callable[[Sequence[dict[str, Any]]], None],
        failure_rows: Callable[[Failure], dict[str, Any]] = failure_row,
    ) -> None:
        super().__init__(inner)
        self.on_rows = on_rows
        self.failure_rows = failure_rows

    def write(self, results: Sequence[Any]) -> None:
        self.on_rows(
            [
                {
                    "url": response.url,
                    "status": response.status,
                    "error_kind": None,
                    "depth": getattr(response, "depth", None),
                }
                for response in results
            ]
        )
        super().write(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.on_rows([self.failure_rows(f) for f in failures])
        super().write_failures(failures)


def build_pipeline(job: FetchJob, source: Any) -> Pipeline:
    pipeline = Pipeline(source, key=_url_of).fetch(**job.fetch_options)
    if is_warc(job.output):
        # The responses go to the WARC file as they are: no row to make.
        if job.process:
            fail("--process makes rows, which a WARC file cannot hold; write .jsonl instead")
        return pipeline
    row = response_row_with_body if job.process else response_row
    if "save_to" in job.fetch_options:
        # The body is read back from its file: blocking I/O, so on a thread.
        pipeline = pipeline.map(row, on="threads", name="record")
    else:
        # A plain function right after the fetch runs in the fetch's own worker (fused):
        # a page's scan (its cost: _crawl/page.py) is less than a hand-off to another stage
        # or thread would cost.
        pipeline = pipeline.map(row, on="inline", name="record")
    if job.process:
        fn = load_function(job.process)
        name = job.process.rpartition(":")[2]
        pipeline = pipeline.map(
            MergeInto(fn, name), on=job.on, workers=job.workers, name=f"process:{name}"
        )
    return pipeline


def retryable_status(row: Any) -> tuple[str, int] | None:
    """Whether a URL whose row this is stays retryable on resume (``--retry-failed``): a
    5xx or 429 status, after the fetch's own retries, is; any other status is done (a 4xx
    says the request itself is wrong, and asking again gets the same answer)."""
    if type(row) is dict:
        status, attempts = row.get("status"), row.get("attempts")
    else:  # a response itself (a WARC output)
        status, attempts = getattr(row, "status", None), getattr(row, "attempts", None)
    if type(status) is int and (500 <= status <= 599 or status == 429):
        return f"http-{status}", attempts if type(attempts) is int else 1
    return None


def _url_of(item: Any) -> str:
    return str(getattr(item, "url", item))


def default_journal(output: str) -> str | None:
    return None if output == "-" else f"{output}.journal"


def check_not_empty(source: Any, path: str) -> None:
    if path == "-":
        return  # stdin can be read only once
    for _ in source:
        return
    fail(f"{path} has no URLs (blank lines and # comments are skipped); add one URL per line")


def run_job(job: FetchJob, sink: Sink, observers: tuple[Any, ...]) -> RunResult:
    check_input(job.input)
    check_output(job.output)
    source = open_source(job.input, job.column)
    check_not_empty(source, job.input)
    pipeline = build_pipeline(job, source)
    return pipeline.run(
        sink,
        journal=job.journal,
        restart=job.restart,
        retry_failed=job.retry_failed,
        observers=observers,
        loops=job.loops,
        retry_on_resume=retryable_status if job.journal is not None else None,
        **job.run_options,
    )
