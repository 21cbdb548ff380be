"""The engine's ports: what it needs from the outside world, as typed protocols.

Two kinds of port. At the end of a pipeline, ``Sink`` and ``Ledger`` (``_io`` implements
them: JSON lines, CSV, Parquet, SQLite sinks; the SQLite journal). And at a stage that
brings its own per-run resource (the fetch's HTTP client), ``ServiceFactory``,
``Service``, ``Budget`` and ``StageReport`` (``_pipeline/fetch.py`` and ``_http``
implement them). The engine reads no attribute by name off the objects it is given: what
it may ask is declared here, and mypy checks the implementations.

**A stage's service.** ``make_stage(..., factory=...)`` gives a stage a ``ServiceFactory``.
The runner enters ``factory()`` when the run starts, once per event loop, and calls
``service.call(item)`` for each item; it exits it when the run ends. With loop processes
(``loops/``), the factory is first shared out (``share(index, loops, spread=...)``: loop
``index`` of ``loops``; a global rate is divided, say, and, when every key's items are
spread over all loops, each key's own limits too: ``spreads``) and pickled to each loop
process, which binds it to the concurrency budget all loops share (``bind(budget)``)
before entering it. A service of spread keys that must tell the others something at once
(a site asked for a pause) is ``Peered``: the loops relay what it tells. With
``loops="auto"``, a service that times its calls (``Timed``) says whether the run's loop
is a large part of them, and one that learns about its keys (``Learns``) hands what it
learnt to the loop processes at the move. The
service says what it is doing through ``report()``: a ``StageReport``, a frozen dataclass
whose fields each say how two of them merge (``merge_by``), so the loop pool adds N loops'
reports up without knowing their fields, and a service grows its report by adding
fields, never by changing the engine. A service that retries inside (the HTTP client)
says how many tries an item took: ``attempts(result)`` for a result, and an exception's
``ItemError.attempts`` for a failure.

**The writer's order.** ``Sink`` and ``Ledger`` methods are all called on one writer
thread, never on the event loop, in this order (except ``admit``, which runs on a thread
of its own, alongside the others, and ``admit_now``, its I/O-free answer asked on the
loop first)::

    sink.open(position)              once, first; position is None, or the journal's durable
                                     position on resume: cut the output back to it
    ledger.admit(keys)               for each batch of input keys, a few batches ahead
    ledger.take(limit)               instead, when the source is a ``Feed``: its items
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

**A run its ledger feeds** (a crawl: ``_pipeline/crawl``). Its source is a ``Feed``: the
items come from the ledger itself (``Ledger.take``, on the writer's thread, after every
batch handed over before), and a stage's service may return its result as a ``Carry``,
whose ``extra`` (a page's links) reaches the ledger with the item's key when the item is
finished (``extras`` of ``stage`` and ``record``): so what a finished item found is stored
in the transaction that records the item, and the next ``take`` sees it. The run ends when
``take`` finds nothing, nothing is in flight and nothing is said to come later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from .outcomes import Failure


class KeyOutcome(NamedTuple):
    """How one input key finished: all its results written, failed, filtered out, or
    deferred (``_errors.Deferred``: left for the next run, which takes it up again;
    ``kind`` is then the deferral's reason).

    Made only for keys that failed, were filtered out or deferred; plain successes reach
    the ledger as bare keys (``record``'s ``done``).
    """

    key: Hashable
    status: Literal["done", "failed", "filtered", "deferred"]
    kind: str | None = None
    attempts: int = 1
    until: float | None = None  # deferred: no use trying before this Unix time (or None)


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


class Carry(NamedTuple):
    """A service's result that brings something for the ledger along (a crawl's page and
    the links found on it).

    A stage with a service (``ServiceFactory``; on loop processes, the head's first stage)
    may return one from ``call``: ``value`` goes on down the pipeline, or, with ``drop``,
    the item ends there, counted as filtered; ``extra`` travels with the item and is given
    to the ledger with the item's key when the item is finished (``Ledger.stage`` and
    ``record``, ``extras``), whatever its outcome. It must pickle (it crosses from loop
    processes). ``deferred``, with ``drop``: the item ends deferred for this reason rather
    than filtered (as if the service had raised ``_errors.Deferred``), its extra kept.
    """

    value: Any
    extra: Any
    drop: bool = False
    deferred: str | None = None


class Taken(NamedTuple):
    """What ``Ledger.take`` hands a run its ledger feeds.

    ``items`` are ``(key, value)`` pairs, each handed out once; with none ready,
    ``retry_in`` is the seconds after which some may be (items put aside until then),
    or None when nothing is waiting at all.
    """

    items: list[tuple[Hashable, Any]]
    retry_in: float | None = None


class Feed:
    """The source of a run whose items come from its own ledger (``Ledger.take``) rather
    than from an iterable: a crawl's frontier, which the finished items grow (``Carry``).

    A subclass describes itself for the job's fingerprint (``describe``). The run needs a
    ledger; it ends when ``take`` has nothing, no item is in flight and ``retry_in`` is
    None.
    """

    def describe(self) -> Any:
        return type(self).__qualname__


class Ledger(Protocol):
    """The engine's view of a resume journal."""

    def admit(self, keys: Sequence[Hashable]) -> Sequence[bool]:
        """For each key: True to process it; False when already done or a duplicate."""
        ...

    def prepare(self) -> None:
        """Get ready to write (open files, sync a new one), on the writer's thread, while
        the run begins: called once, after opening, before any ``stage`` or ``record``."""
        ...

    def stage(
        self,
        outcomes: Sequence[KeyOutcome],
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        """Store finished keys for the next ``record`` to commit; a crash before it loses
        them, as if they had never finished. ``extras``: ``(key, Carry.extra)`` of the
        finished items whose service's result carried one."""
        ...

    def admit_now(self, keys: Sequence[Hashable]) -> Sequence[bool] | None:
        """``admit``'s answer, given on the event loop when it needs no I/O; else None.

        Asked only when no ``admit`` is in progress on the journal's thread.
        """
        ...

    def record(
        self,
        outcomes: Sequence[KeyOutcome],
        position: Any,
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        """Commit finished keys (these and those staged) and the sink's durable position in
        one transaction.

        ``done`` are keys that finished plainly (all results written, no failure), given
        bare: the bulk of a run, with no ``KeyOutcome`` made for each. ``extras``: as in
        ``stage``.
        """
        ...

    def take(self, limit: int) -> Taken:
        """Up to ``limit`` items for a run this ledger feeds (its source is a ``Feed``),
        each handed out once; it sees what every ``stage`` before it stored."""
        ...

    def close(self) -> None: ...

    @property
    def sink_position(self) -> Any:
        """The sink's durable position recorded by the last commit (None when fresh)."""
        ...


# -- a stage's per-run service ----------------------------------------------------------


class Budget(Protocol):
    """Slots several holders share: never more than its total out at once, in all of them.

    The loop processes' shared slots (``loops/slots.py``) implement it; a service bound to
    one takes a slot right before each unit of work it limits (a request) and gives it
    back right after.
    """

    def take_nowait(self) -> bool:
        """Take a slot if one is free now; never waits."""
        ...

    def give(self) -> None:
        """Give back a slot this holder took."""
        ...


Merge = Callable[[Any, Any], Any]
_MERGE = "conveyor.merge"
R = TypeVar("R", bound="StageReport")


def merge_by(rule: Merge) -> dict[str, Merge]:
    """A report field's metadata: how two values of it merge, e.g.
    ``field(default=0, metadata=merge_by(same))``. A field without it is added up."""
    return {_MERGE: rule}


def add(a: Any, b: Any) -> Any:
    """Counts of work done or in progress: the parts add up."""
    return a + b


def same(a: Any, b: Any) -> Any:
    """A setting every part was given alike (a limit): either one."""
    return a


def larger(a: Any, b: Any) -> Any:
    return a if a >= b else b


def by_key(rule: Merge) -> Merge:
    """Mappings merged key by key; a key in both merges its values by ``rule``."""

    def merge(a: Mapping[Any, Any], b: Mapping[Any, Any]) -> dict[Any, Any]:
        merged = dict(a)
        for key, value in b.items():
            merged[key] = rule(merged[key], value) if key in merged else value
        return merged

    return merge


class Mergeable(Protocol):
    def merge(self, other: Any) -> Any: ...


def nested(a: Mergeable, b: Mergeable) -> Any:
    """A value that merges itself (a report inside a report; a host's figures, mapped by
    host with ``by_key(nested)``): its own ``merge``."""
    return a.merge(b)


class StageReport:
    """What a stage's service says of itself: a frozen dataclass deriving from this.

    Each field says how two values merge (``merge_by``; a field without it is added up),
    so reports from several loop processes become one without the engine knowing their
    fields. It must pickle (it crosses from loop processes, and ``RunResult`` goes
    through Ray).
    """

    __slots__ = ()

    def merge(self: R, other: R) -> R:
        """This report and ``other`` (of the same type) as one."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(self).__name__} with {type(other).__name__}")
        merged = {
            spec.name: spec.metadata.get(_MERGE, add)(
                getattr(self, spec.name), getattr(other, spec.name)
            )
            for spec in dataclasses.fields(self)  # type: ignore[arg-type]
        }
        return dataclasses.replace(self, **merged)  # type: ignore[type-var]


class Service(Protocol):
    """A stage's per-run resource, open for the run (the fetch's HTTP client)."""

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        """What the stage calls with each item (an async function, looked up once)."""
        ...

    def report(self) -> StageReport | None:
        """What it is doing now (asked a few times a second), or None: nothing to say."""
        ...

    def attempts(self, result: Any) -> int:
        """How many tries ``call`` took for ``result`` (1 when it does not retry inside)."""
        ...


def part(total: int, index: int, parts: int) -> int:
    """Part ``index`` of ``total`` cut into ``parts`` whole parts that add up to it (what
    a ``ServiceFactory.share`` gives loop ``index`` of a limit, say)."""
    return total // parts + (1 if index < total % parts else 0)


class ServiceFactory(Protocol):
    """Opens a stage's ``Service`` for a run. Picklable: loop processes open their own."""

    def __call__(self) -> AbstractAsyncContextManager[Service]: ...

    def share(self, index: int, loops: int, *, spread: bool = False) -> ServiceFactory:
        """The factory for loop process ``index`` of ``loops``: what it divides (a
        global rate) divided; what the loops share (the budget) left whole. ``spread``:
        every key's items go to all the loops (``spreads`` said they may), so each key's
        own limits (per host) are divided as well, into parts that add up to the whole."""
        ...

    def spreads(self, loops: int) -> bool:
        """Whether every key's own limits divide among ``loops`` loops (each part at
        least one), so that a key's items may be spread over all of them; else each key
        has one loop, which holds its limits whole."""
        ...

    def bind(self, budget: Budget) -> ServiceFactory:
        """The factory whose service holds its concurrency within ``budget``, a budget
        shared with the other loop processes' services."""
        ...


class WaitingRoom(Protocol):
    """The seats of a stage's workers beyond its slots (``room.py``): a ``Parks`` service
    says when an item starts and stops waiting inside it with nothing out."""

    def grow(self) -> None:
        """An item waits on its key now (a held host): one more worker may take an item."""
        ...

    def shrink(self) -> None:
        """A waiting item goes on, or ends."""
        ...


@runtime_checkable
class Parks(Protocol):
    """A ``Service`` whose calls may wait inside it on their key with nothing out (a
    fetch's request waiting for its host), so that the stage's workers beyond its
    ``slots`` (``StageSpec.slots``) are worth letting in only while some do. Asked with
    ``isinstance``; the stage hands it its room when it opens it. A service that does not
    say so gets every worker at once."""

    def park_in(self, room: WaitingRoom) -> None:
        """From now on, tell ``room`` of each item that starts or stops waiting here."""
        ...


class Peers(Protocol):
    """The services of the other loop processes holding the same keys (``Peered``)."""

    def tell(self, notice: Any) -> None:
        """Send ``notice`` (picklable) to every other loop's service, now."""
        ...


@runtime_checkable
class Peered(Protocol):
    """A ``Service`` that tells the other loops' services what they must know at once,
    when its keys are spread over several loops: a site's pause of a host, which every
    loop sending to that host must keep. Asked with ``isinstance``; the loop worker
    joins it to its peers when it opens it, and hands it what they told."""

    def join(self, peers: Peers) -> None:
        """From now on, tell ``peers`` what they must know."""
        ...

    def hear(self, notice: Any) -> None:
        """What another loop's service told (``Peers.tell``): keep it as if it were ours."""
        ...


class CallTimes(NamedTuple):
    """How long a service's own calls took (``Timed``), waits for its slots left out."""

    calls: int
    mean: float  # seconds
    fastest: float  # seconds


@runtime_checkable
class Timed(Protocol):
    """A ``Service`` that times its calls' own work, apart from any wait for a slot (a
    fetch: a request from its send to its answer's head). ``loops="auto"`` asks it while
    the run's loop is CPU-bound: where the mean call is not much slower than the fastest
    (100 ms answers, each read a few ms late), that loop's lag is a small part of each
    call, more loops would buy little, and the head stays (``loops/grow.py``)."""

    def call_times(self) -> CallTimes | None:
        """The calls ended since the last ask; None when none did."""
        ...


@runtime_checkable
class Learns(Protocol):
    """A ``Service`` that learns about its keys as it runs (a fetch: each host's
    concurrency limit), which services opened later for the same keys should start from
    rather than learn again. Asked with ``isinstance`` at ``loops="auto"``'s move
    (``loops/grow.py``): what the service on the run's loop learnt is told to the loop
    processes' services (``Peered.hear``) before their first item."""

    def learnt(self) -> Any:
        """What it learnt, as a notice (picklable) for ``Peered.hear``; None: nothing."""
        ...


Holds = Mapping[str, tuple[str, float]]
"""Keys (hosts) a service holds back for a time their site set, kept across runs:
key -> (reason, until as a Unix time). A service's report carries its holds
(``HoldingReport``), the run keeps them in its journal at each commit, and the next run
hands them back to the factory (``Holding``), so that it does not hit those hosts early."""


@runtime_checkable
class HoldingReport(Protocol):
    """A ``StageReport`` that says which keys its service holds back now (``Holds``)."""

    @property
    def holds(self) -> Holds: ...


@runtime_checkable
class Holding(Protocol):
    """A ``ServiceFactory`` whose services can take up the holds an earlier run kept."""

    def holding(self, holds: Holds) -> ServiceFactory:
        """The factory whose services hold these keys back until their times (a time
        already past holds nothing)."""
        ...


# The reason of the ``Deferred`` a service raises for an item it gave up on because the
# run was stopped (``WindDown("stop")``): not a deferral, the run records nothing of the
# item (no output, no journal row), so the next run takes it up as if never read.
STOPPED = "stopped"


class WindDown(NamedTuple):
    """The run's word to its services, heard as a notice (``Peered.hear``, with one loop
    as with several): ``reason`` "tail" once the ``finish_at`` share of the input has
    ended (defer the items of keys whose forecast would hold the run's end), "deadline"
    when the run's time is up (defer every item not started yet; those in flight get a
    short grace, then the run defers them), "stop" when the run was stopped (Ctrl-C:
    every item waiting inside the service with nothing sent for it yet raises
    ``Deferred`` with reason ``STOPPED`` at once, and the run leaves it unrecorded for
    the next run; what was sent gets the grace). ``elapsed``: seconds the run has run."""

    reason: str
    elapsed: float


class LoopBound(NamedTuple):
    """The engine's word to a service (``Peered.hear``) on the loop it runs on: that loop
    is CPU-bound now (``bound``), or no longer, as ``loops/measure.py`` measures it.
    While it is, what the service measures of its calls' latency is partly its own
    loop's lag: a fast server read late looks like a slow one."""

    bound: bool


@runtime_checkable
class HeldReport(Protocol):
    """A ``StageReport`` that says which keys (hosts) its service holds back right now,
    politely, at their sites' word: key -> (reason, seconds left). The run does not call
    a quiet spell a stall while every key it has work for is held (``RunStatistics.stall``)."""

    @property
    def held(self) -> Mapping[str, tuple[str, float]]: ...


@runtime_checkable
class KeepsHolds(Protocol):
    """A ``Ledger`` that keeps the run's ``Holds`` across runs (the journal)."""

    def hold(self, holds: Holds) -> None:
        """The holds as they are now, to be written with the next ``record`` (in its
        transaction); they replace the ones kept before."""
        ...

    def held(self) -> Holds:
        """The holds the last run kept that have not expired yet."""
        ...
