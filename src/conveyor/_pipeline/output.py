"""Turning ``run(sink=..., journal=...)`` arguments into a sink, a journal and a position.

The journal's fingerprint names what decides the output — the source, the stage functions
in order, the key function and the sink — and not how fast it runs: resuming with another
concurrency, rate or retry count is the same job. A job on Ray keeps the same fingerprint
in its plan (with its shard count and parts' format added: ``_shards/plan.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .._engine.outcomes import Failure
from .._engine.ports import Ledger, Sink
from .._engine.spec import StageSpec
from .._errors import UsageError

if TYPE_CHECKING:
    from .._io.journal.hooks import JournalHook


class Built(Protocol):
    """What output needs of a built pipeline (``Pipeline`` is one)."""

    @property
    def source(self) -> Any: ...

    @property
    def key(self) -> Callable[[Any], Hashable] | None: ...

    @property
    def stages(self) -> tuple[StageSpec, ...]: ...


@dataclass(frozen=True, slots=True)
class Output:
    sink: Sink | None
    # Opens the journal; called on the writer thread, which then owns the connection.
    open_ledger: Callable[[], Ledger] | None


class ListSink:
    """``run(sink=some_list)``: append results to a list (failures go to the RunResult)."""

    def __init__(self, target: list[Any]) -> None:
        self.target = target

    def open(self, position: Any = None) -> None:
        return None

    def write(self, results: Sequence[Any]) -> None:
        self.target.extend(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        return None

    def flush(self) -> Any:
        return len(self.target)

    def close(self) -> None:
        return None


class CallbackSink(ListSink):
    """``run(sink=fn)``: call ``fn(result)`` for each result, on the writer thread."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__([])
        self.fn = fn

    def write(self, results: Sequence[Any]) -> None:
        for result in results:
            self.fn(result)


def coerce_sink(sink: Any) -> Sink | None:
    if sink is None or isinstance(sink, Sink):
        return sink
    if isinstance(sink, list):
        return ListSink(sink)
    if isinstance(sink, str | os.PathLike):
        from .._io import sink_for

        made: Sink = sink_for(os.fspath(sink))
        return made
    if callable(sink):
        return CallbackSink(sink)
    raise UsageError(
        f"sink={sink!r}: give a sink (conveyor.JsonLines('out.jsonl') …), an output path, "
        "a list, a function, or None"
    )


def describe(obj: Any) -> Any:
    """A stable, JSON-able description of a source, function or sink for the fingerprint."""
    own = getattr(obj, "describe", None)
    if callable(own) and not isinstance(obj, type):
        try:
            return own()
        except TypeError:
            pass
    if callable(obj):
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    return type(obj).__qualname__


def fingerprint(pipeline: Built, sink: Sink | None) -> dict[str, Any]:
    """What makes two runs one job: the one rule, for a journal and for a plan on Ray."""
    return {
        "source": describe(pipeline.source),
        "key": describe(pipeline.key) if pipeline.key else "position",
        "stages": [
            [s.kind, s.name, describe(s.fn) if s.fn else s.batch_size] for s in pipeline.stages
        ],
        "sink": describe(sink) if sink is not None else None,
    }


def prepare_output(
    pipeline: Built,
    sink: Any,
    *,
    journal: str | os.PathLike[str] | None,
    restart: bool,
    retry_failed: bool,
    hook: JournalHook | None = None,
) -> Output | None:
    """The run's sink and a way to open its journal; ``hook``: the journal's hook (a
    crawl's frontier)."""
    the_sink = coerce_sink(sink)
    if journal is None:
        if restart or retry_failed:
            raise UsageError(
                "restart= and retry_failed= need a journal: pass journal='run.journal'"
            )
        return Output(the_sink, None) if the_sink is not None else None
    from .._io import open_journal

    print_ = fingerprint(pipeline, the_sink)

    def open_ledger() -> Ledger:
        opened: Ledger = open_journal(
            os.fspath(journal),
            fingerprint=print_,
            restart=restart,
            retry_failed=retry_failed,
            hook=hook,
        )
        return opened

    return Output(the_sink, open_ledger)
