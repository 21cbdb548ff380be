"""What the runner needs from the outside world at the end of a pipeline.

The engine writes outcomes through these two protocols and knows nothing of files:
``_io`` implements them (JSON lines, CSV, Parquet, SQLite sinks; the SQLite journal).
All their methods are called on one writer thread, never on the event loop, in this order
(except ``admit``, which runs on a thread of its own, alongside the others, and
``admit_now``, its I/O-free answer asked on the loop first)::

    sink.open(position)              once, first; position is None, or the journal's durable
                                     position on resume: cut the output back to it
    ledger.admit(keys)               for each batch of input keys, a few batches ahead
    sink.write(results)              batches of results, in delivery order
    sink.write_failures(failures)    batches of Failure records (only if the sink wants them)
    ledger.stage(outcomes, done)     after each batch between commits: finished keys, to be
                                     committed by the next record (invisible until then)
    position = sink.flush()          every N items or T seconds: make all written data durable
    ledger.record(outcomes, position, done)
                                     then, in one transaction: these keys are finished and
                                     the sink is durable up to ``position``
    sink.close(); ledger.close()     once, at the end (also after errors and Ctrl-C)

Because ``record`` always follows the ``flush`` that made those keys' results durable, a
crash at any moment leaves the journal pointing at a sink prefix that holds every recorded
key's results; on resume the sink is truncated back to that position and unrecorded keys
run again, so every item ends in the output exactly once.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .outcomes import Failure


class KeyOutcome(NamedTuple):
    """How one input key finished: all its results written, or failed.

    Made only for keys that failed or were filtered out; plain successes reach the ledger
    as bare keys (``record``'s ``done``).
    """

    key: Hashable
    status: Literal["done", "failed", "filtered"]
    kind: str | None = None
    attempts: int = 1


@runtime_checkable
class Sink(Protocol):
    """Where results go. Called on the writer thread only."""

    def open(self, position: Any = None) -> None:
        """Open for writing; given a position from ``flush()``, first cut the output back to it."""
        ...

    def write(self, results: Sequence[Any]) -> None: ...

    def write_failures(self, failures: Sequence[Failure]) -> None: ...

    def flush(self) -> Any:
        """Make everything written so far durable and return that position (JSON-able)."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """The engine's view of a resume journal."""

    def admit(self, keys: Sequence[Hashable]) -> Sequence[bool]:
        """For each key: True to process it; False when already done or a duplicate."""
        ...

    def prepare(self) -> None:
        """Get ready to write (open files, sync a new one), on the writer's thread, while
        the run begins: called once, after opening, before any ``stage`` or ``record``."""
        ...

    def stage(self, outcomes: Sequence[KeyOutcome], done: Sequence[Hashable] = ()) -> None:
        """Store finished keys for the next ``record`` to commit; a crash before it loses
        them, as if they had never finished."""
        ...

    def admit_now(self, keys: Sequence[Hashable]) -> Sequence[bool] | None:
        """``admit``'s answer, given on the event loop when it needs no I/O; else None.

        Asked only when no ``admit`` is in progress on the journal's thread.
        """
        ...

    def record(
        self, outcomes: Sequence[KeyOutcome], position: Any, done: Sequence[Hashable] = ()
    ) -> None:
        """Commit finished keys (these and those staged) and the sink's durable position in
        one transaction.

        ``done`` are keys that finished plainly (all results written, no failure), given
        bare: the bulk of a run, with no ``KeyOutcome`` made for each.
        """
        ...

    def close(self) -> None: ...

    @property
    def sink_position(self) -> Any:
        """The sink's durable position recorded by the last commit (None when fresh)."""
        ...
