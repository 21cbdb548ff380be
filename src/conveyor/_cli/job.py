"""The main job behind ``conveyor fetch`` (and ``conveyor demo``): fetch, analyse, write.

    read URLs ──► fetch (loop) ──► analyse HTML (loop, or a thread for big pages)
              ──► the user's --process stage (threads or processes) ──► record sink

Every URL ends as one record: the page's summary, or its failure (error kind and message).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .. import Pipeline
from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._engine.stats import RunResult
from .._errors import UsageError
from .errors import fail
from .page import analyze, without_body

FIELDS = ("url", "final_url", "status", "content_type", "bytes", "elapsed_ms", "title",
          "description", "links", "sha256", "attempts", "error_kind", "error")  # fmt: skip


@dataclass
class FetchJob:
    input: str
    output: str
    column: str | None = None
    fetch_options: dict[str, Any] = field(default_factory=dict)
    process: str | None = None
    on: str = "threads"
    workers: int | None = None
    journal: str | None = None
    restart: bool = False
    retry_failed: bool = False


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


def failure_record(failure: Failure) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        url=str(failure.key),
        attempts=failure.attempts,
        error_kind=failure.kind,
        error=failure.message
        if failure.stage == "fetch"
        else f"{failure.stage}: {failure.message}",
    )
    return record


def ordered(record: dict[str, Any]) -> dict[str, Any]:
    """The fixed field order (for CSV and Parquet), then whatever --process added."""
    out = {name: record.get(name) for name in FIELDS}
    out.update((k, v) for k, v in record.items() if k not in out)
    return out


class RecordSink:
    """Wraps a file sink: results and failures both become records of the same shape."""

    def __init__(self, inner: Sink, on_record: Callable[[dict[str, Any]], None] | None) -> None:
        self.inner = inner
        self.on_record = on_record

    def describe(self) -> Any:
        describe = getattr(self.inner, "describe", None)
        return describe() if callable(describe) else type(self.inner).__name__

    def open(self, position: Any = None) -> None:
        self.inner.open(position)

    def write(self, results: Sequence[Any]) -> None:
        records = [ordered(r) for r in results]
        self._tell(records)
        self.inner.write(records)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        records = [failure_record(f) for f in failures]
        self._tell(records)
        self.inner.write(records)

    def _tell(self, records: list[dict[str, Any]]) -> None:
        if self.on_record is not None:
            for record in records:
                self.on_record(record)

    def flush(self) -> Any:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class StdoutSink:
    """``-o -``: JSON lines on standard output (no journal: stdout cannot be truncated)."""

    def open(self, position: Any = None) -> None:
        return None

    def write(self, results: Sequence[Any]) -> None:
        out = sys.stdout.buffer
        for record in results:
            out.write(orjson.dumps(record, default=str) + b"\n")

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.write([f.__conveyor_record__() for f in failures])

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


def output_sink(path: str, on_record: Callable[[dict[str, Any]], None] | None) -> Sink:
    if path == "-":
        return RecordSink(StdoutSink(), on_record)
    from .. import _io

    try:
        inner: Sink = _io.sink_for(path, failures=None)
    except UsageError as exc:
        fail(str(exc))
    return RecordSink(inner, on_record)


def build_pipeline(job: FetchJob, source: Any) -> Pipeline:
    pipeline = (
        Pipeline(source, key=_url_of)
        .fetch(**job.fetch_options)
        .map(analyze, on="loop", concurrency=job.fetch_options.get("concurrency", 100))
    )
    if job.process:
        fn = load_function(job.process)
        name = job.process.rpartition(":")[2]
        pipeline = pipeline.map(
            MergeInto(fn, name), on=job.on, workers=job.workers, name=f"process:{name}"
        )
    return pipeline.map(without_body, on="inline", name="record")


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
    )
