"""Per-input bookkeeping: when is an input item finished, and in what order to release it.

Pure and synchronous; the runner calls it from the event loop's thread only.

Each admitted input (a *root*) has a count of live envelopes derived from it: 1 when it
enters, +1 for each ``flat_map`` child, and -1 for each envelope that reaches an end
(result, failure, filtered, deferred, or consumed by a ``flat_map``/``batch``). At zero
the root is finished: its outputs are released and its outcome is recorded exactly once.

A root any of whose envelopes was deferred (``_errors.Deferred``) is deferred as a whole:
its held outputs are dropped and the journal records it deferred, so the next run takes
it up and writes its outputs once. (Without a journal or order, outputs are not held, and
those of its parts that ended before are written.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .ports import KeyOutcome


@dataclass(slots=True)
class Finished:
    """Keys finished since the journal's last commit, gathered for ``Ledger.record``.

    Keys that finished plainly (results, no failure) are the bulk of a run and are kept
    bare in ``done``; only the others get a ``KeyOutcome``. One object per item is what a
    journaled run would otherwise pay on the event loop.
    """

    done: list[Hashable] = field(default_factory=list)
    others: list[KeyOutcome] = field(default_factory=list)
    # (key, extra) of finished items whose service's result carried one (``ports.Carry``).
    extras: list[tuple[Hashable, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.done) + len(self.others)

    def take(self) -> tuple[list[Hashable], list[KeyOutcome]]:
        """What has gathered, leaving this empty (the same lists: a bound ``append``
        stays good)."""
        done, others = self.done.copy(), self.others.copy()
        self.done.clear()
        self.others.clear()
        return done, others

    def take_extras(self) -> list[tuple[Hashable, Any]]:
        """The extras gathered with the keys ``take`` took, leaving none."""
        extras, self.extras = self.extras, []
        return extras


@dataclass(slots=True)
class _Root:
    key: Hashable
    live: int = 1
    failed_kind: str | None = None
    attempts: int = 1
    results: int = 0
    outputs: list[tuple[tuple[int, ...], Any]] | None = None  # held ones, made when needed
    extra: Any = None  # what its service's result carried for the ledger (``ports.Carry``)
    deferred: str | None = None  # the reason one of its envelopes was deferred
    until: float | None = None  # and the time before which trying it again is pointless


class RootTracker:
    """Counts live envelopes per root and releases outputs when roots finish.

    Args:
        ordered: release finished roots strictly in input order (a reorder buffer).
        hold: keep a root's outputs until the root finishes, even when unordered, so a
            journal never records a root whose outputs were only partly written.
        finished: where each finished root's key and outcome go (only a journal needs them).
        single: every root travels as one envelope, start to end (no ``flat_map`` or
            ``batch`` stage), and in no particular order: then a root is finished when its
            envelope ends, and nothing needs keeping per root.
    """

    def __init__(
        self,
        *,
        ordered: bool,
        hold: bool,
        finished: Finished | None = None,
        single: bool = False,
    ) -> None:
        self._ordered = ordered
        self.finished = finished
        self.single = single and not ordered
        self._hold = hold or ordered
        self._roots: dict[int, _Root] = {}
        self._finished: set[int] = set()
        self.next_root = 0  # ordered: the lowest root not yet released
        self.ended = 0  # roots finished (and so handed to ``finished``) in this run
        self.deferred: Counter[str] = Counter()  # roots ended deferred, by reason
        # Outputs of deferred roots, held and then dropped: (results, failures).
        self.dropped = [0, 0]

    def __len__(self) -> int:
        return len(self._roots)

    def admit(self, root: int, key: Hashable) -> None:
        if not self.single:
            self._roots[root] = _Root(key)

    def forget(self, root: int) -> None:
        self._roots.pop(root, None)

    def spawn(self, root: int) -> None:
        self._roots[root].live += 1

    def end(
        self,
        roots: tuple[int, ...],
        pos: tuple[int, ...],
        output: Any,
        *,
        failed: str | None = None,
        attempts: int = 1,
        result: bool = False,
        key: Hashable = None,
        extra: Any = None,
        deferred: str | None = None,
        until: float | None = None,
    ) -> list[Any]:
        """One envelope ended; return the outputs now releasable (in release order).

        ``failed`` is a failure's kind, or, with ``result``, the kind of a result that
        leaves its key retryable (``retry_on_resume``): either way the root is recorded as
        failed, and a result is released like any other. ``key`` is the envelope's key;
        only ``single`` tracking needs it. ``extra`` is what the envelope carries for the
        ledger, which goes with its root's key. ``deferred``: the envelope was deferred,
        for this reason (and ``until`` then): so is its root.
        """
        if self.single:
            return self._end_single(key, output, failed, attempts, result, extra, deferred, until)
        released: list[Any] = []
        first = roots[0]
        if extra is not None:
            self._roots[first].extra = extra
        for root in roots:
            state = self._roots[root]
            if deferred is not None and state.deferred is None:
                state.deferred, state.until = deferred, until
            if failed is not None and state.failed_kind is None:
                state.failed_kind = failed
                state.attempts = attempts
            if result and root == first:
                state.results += 1
            state.live -= 1
        if output is not _NOTHING:
            state = self._roots[first]
            # The common case, a root's one output as it finishes, needs no holding when
            # nothing of that root is held and nothing before it is waited for.
            if self._hold and (
                state.live or state.outputs or (self._ordered and first != self.next_root)
            ):
                if state.outputs is None:
                    state.outputs = []
                state.outputs.append((pos, output))
            else:
                released.append(output)
        for root in dict.fromkeys(roots) if len(roots) > 1 else roots:  # a batch may repeat one
            if self._roots[root].live == 0:
                self._finish(root, released)
        return released

    def _end_single(
        self,
        key: Hashable,
        output: Any,
        failed: str | None,
        attempts: int,
        result: bool,
        extra: Any = None,
        deferred: str | None = None,
        until: float | None = None,
    ) -> list[Any]:
        finished = self.finished
        self.ended += 1
        if deferred is not None:
            self.deferred[deferred] += 1
        if finished is not None:
            if extra is not None:
                finished.extras.append((key, extra))
            if deferred is not None:
                finished.others.append(KeyOutcome(key, "deferred", deferred, attempts, until))
            elif failed is not None:
                finished.others.append(KeyOutcome(key, "failed", failed, attempts))
            elif result:
                finished.done.append(key)
            else:
                finished.others.append(KeyOutcome(key, "filtered", None, attempts))
        return [] if output is _NOTHING else [output]

    def _finish(self, root: int, released: list[Any]) -> None:
        if not self._ordered:
            state = self._roots.pop(root)
            self._release(state, released)
            return
        self._finished.add(root)
        while self.next_root in self._finished:
            self._finished.discard(self.next_root)
            self._release(self._roots.pop(self.next_root), released)
            self.next_root += 1

    def unfinished(self, reason: str) -> int:
        """End every root still here as deferred for ``reason`` (the run was cut short:
        its ``deadline``), dropping what they held; how many there were. Only roots
        tracked one by one (not ``single``) are known here."""
        count = 0
        for state in self._roots.values():
            if state.deferred is None:
                state.deferred = reason
            self._release(state, [])
            count += 1
        self._roots.clear()
        self._finished.clear()
        return count

    def _release(self, state: _Root, released: list[Any]) -> None:
        if state.deferred is not None:
            # Deferred as a whole: nothing of it is written now; the next run does it all.
            for _, (is_failure, _value) in state.outputs or ():
                self.dropped[1 if is_failure else 0] += 1
            self.ended += 1
            self.deferred[state.deferred] += 1
            if self.finished is not None:
                if state.extra is not None:
                    self.finished.extras.append((state.key, state.extra))
                self.finished.others.append(
                    KeyOutcome(state.key, "deferred", state.deferred, state.attempts, state.until)
                )
            return
        if state.outputs:
            if len(state.outputs) > 1:
                state.outputs.sort(key=lambda pair: pair[0])
            released.extend(output for _, output in state.outputs)
        finished = self.finished
        self.ended += 1
        if finished is None:
            return
        if state.extra is not None:
            finished.extras.append((state.key, state.extra))
        if state.failed_kind is not None:
            finished.others.append(
                KeyOutcome(state.key, "failed", state.failed_kind, state.attempts)
            )
        elif state.results:
            finished.done.append(state.key)
        else:
            finished.others.append(KeyOutcome(state.key, "filtered", None, state.attempts))


class _Nothing:
    pass


_NOTHING: Any = _Nothing()
NOTHING: Any = _NOTHING
