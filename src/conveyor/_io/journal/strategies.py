"""The journal's two ways of keeping keys: input positions (the runner's default keys),
or keys a ``key=`` function gives.

Each decides which keys of a batch to admit, and what a batch of finished keys leaves in
the journal; ``Journal`` holds what they share (its connections, the counters, the input
position reached) and does the writing. A strategy sees its journal only through
``JournalState``, so this module does not import the journal's (which imports this one).

- ``PositionKeys``: keys that are the input positions themselves cannot repeat, and finished
  ones are kept as spans of positions, with a row only for a failure (or a retried one).
- ``KeyedKeys``: every finished key has a row, stored as ``keys.encode_key`` gives it, and
  finished positions are kept as spans too, which tell a duplicate from a key finished
  earlier. Keys admitted and not yet committed are held in ``pending``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from itertools import repeat
from typing import Any, NamedTuple, Protocol

import orjson

from ..._engine.ports import KeyOutcome
from . import schema
from .keys import encode_keys, travelled


class JournalState(Protocol):
    """What a strategy reads and changes on its journal (``journal.Journal`` is one)."""

    retry_failed: bool
    _next: int  # the input position of the next key admitted
    _dirty: bool  # admitted since the last commit: the counters changed
    _duplicates: int

    @property
    def _spans_end(self) -> int: ...  # positions below this may be finished

    @property
    def _keys_stored(self) -> bool: ...  # whether the file may hold a key

    @property
    def _retried(self) -> set[Any]: ...  # failed keys admitted again

    @property
    def _again(self) -> set[Any]: ...  # deferred keys admitted again (always)

    @property
    def _counts(self) -> dict[str, int]: ...  # the committed counters

    @property
    def _db(self) -> object: ...  # None until the file is made

    def _finished_in(self, start: int, stop: int) -> list[bool]: ...

    def _read(self, query: str, *params: Any) -> list[Any]: ...


class Finished(NamedTuple):
    """What a batch of finished keys leaves in the journal."""

    codes: list[Any]  # the keys as stored, for the counters and ``committed``
    done_rows: list[Any]  # keys for rows that say done
    rows: list[Any]  # [key, state, kind, attempts] rows for the others
    positions: list[int]  # finished input positions, made into spans at the commit
    remember: bool  # whether ``committed`` needs the codes


class Strategy(Protocol):
    def finished(
        self, plain: list[Hashable], others: list[KeyOutcome], retried: set[Any]
    ) -> Finished: ...

    def committed(self, codes: list[Any]) -> None: ...


class PositionKeys:
    """Keys that are the input positions: spans, not rows."""

    def __init__(self, journal: JournalState) -> None:
        self._journal = journal

    def admit(self, positions: range) -> list[bool]:
        """Past what earlier runs reached, no lookup; before it, one for the batch."""
        journal = self._journal
        journal._next = positions.stop
        if positions.start >= journal._spans_end:
            return [True] * len(positions)  # past every earlier run: all new
        answer = [not done for done in journal._finished_in(positions.start, positions.stop)]
        # Deferred positions are in spans, with a row (as failed ones are): every run
        # admits them again; failed ones with retry_failed.
        if journal.retry_failed or journal._counts["deferred"]:
            base = positions.start
            for key, state in journal._read(schema.AGAIN_IN, base, positions.stop):
                if state == schema.DEFERRED:
                    answer[key - base] = True
                    journal._again.add(key)
                elif journal.retry_failed:
                    answer[key - base] = True
                    journal._retried.add(key)
        return answer

    def finished(
        self, plain: list[Hashable], others: list[KeyOutcome], retried: set[Any]
    ) -> Finished:
        keys: list[Any] = plain + [outcome.key for outcome in others] if others else plain
        # Positions need no row when done: their spans say it. A retried failure's row
        # still says failed, so it is updated. A filtered position needs no row either,
        # unless it replaces a failure.
        done_rows = [key for key in plain if key in retried] if retried else []
        rows = [
            (key, schema.STATES[outcome.status], outcome.kind, outcome.attempts, outcome.until)
            for key, outcome in zip(keys[len(plain) :], others, strict=True)
            if not (outcome.status == "filtered" and key not in retried)
        ]
        # A retried position is in a span of an earlier run already.
        positions = [key for key in keys if key not in retried] if retried else keys
        return Finished(keys, done_rows, rows, positions, remember=bool(retried))

    def committed(self, codes: list[Any]) -> None:
        pass


class KeyedKeys:
    """Keys given by a ``key=`` function: a row each."""

    def __init__(self, journal: JournalState) -> None:
        self._journal = journal
        # Keys admitted in this run and not yet recorded, with their input positions: what
        # a duplicate is checked against until its first copy finishes. Bounded by the
        # items in flight.
        self.pending: dict[Any, int] = {}

    def admit(self, keys: Sequence[Hashable], *, lookup: bool) -> list[bool] | None:
        """Decide for the keys; without ``lookup``, None when the file may hold some of
        them (then nothing has changed here)."""
        journal = self._journal
        encoded, travelling = encode_keys(keys)
        start, count = journal._next, len(encoded)
        answer = [True] * count
        duplicates = 0
        pending = self.pending
        first: dict[Any, int] | None = None  # where each key is first in the batch
        if not pending.keys().isdisjoint(encoded) or len(set(encoded)) < count:
            # A key still in flight, or twice in this batch: decide key by key. (The
            # common case, checked above, runs in C.)
            first = {}
            for i, code in enumerate(encoded):
                if code in first or code in pending:
                    answer[i] = False
                    duplicates += 1
                else:
                    first[code] = i
        if lookup:
            first = self._admit_known(travelling, encoded, first, answer, start)
        elif journal._keys_stored:
            # Set on the writer's thread since the check above, before a commit: a key
            # not found in ``pending`` may have left it for the file.
            return None
        journal._next = start + count
        journal._dirty = True
        journal._duplicates += duplicates
        # Order matters for duplicates seen on this thread while record() runs on another:
        # a key enters ``pending`` before it can finish and leaves only after its row is
        # committed, so a later copy always finds it in one place or the other.
        if first is None:  # every key new to this run: all admitted
            pending.update(zip(encoded, range(start, start + count), strict=True))
        else:
            pending.update((code, start + i) for code, i in first.items() if answer[i])
        return answer

    def _admit_known(
        self,
        travelling: list[Any],
        encoded: list[Any],
        first: dict[Any, int] | None,
        answer: list[bool],
        start: int,
    ) -> dict[Any, int] | None:
        """Decide for the keys the file already holds, with one indexed lookup; returns
        ``first``, made when it was None and the file holds some of the keys."""
        journal = self._journal
        if not journal._keys_stored or journal._db is None:  # no key committed to a file yet
            return first
        found = journal._read(schema.LOOKUP, orjson.dumps(travelling))
        if not found:
            return first
        if first is None:  # the keys are all different
            first = dict(zip(encoded, range(len(encoded)), strict=True))
        finished = journal._finished_in(start, start + len(answer))
        for stored, state in found:
            # Each key comes back as it went (see keys), so it is in ``first`` unless it
            # was decided already: a later copy in this batch, or still in flight.
            i = first.get(travelled(stored))
            if i is None:
                continue
            answer[i] = False
            if not finished[i]:  # an earlier copy of the key finished, not this item
                journal._duplicates += 1
            elif state == schema.FAILED and journal.retry_failed:
                answer[i] = True
                journal._retried.add(encoded[i])
            elif state == schema.DEFERRED:  # left for this run: always admitted again
                answer[i] = True
                journal._again.add(encoded[i])
        return first

    def finished(
        self, plain: list[Hashable], others: list[KeyOutcome], retried: set[Any]
    ) -> Finished:
        keys = plain + [outcome.key for outcome in others] if others else plain
        codes, travelling = encode_keys(keys)
        rows = [
            (key, schema.STATES[outcome.status], outcome.kind, outcome.attempts, outcome.until)
            for key, outcome in zip(travelling[len(plain) :], others, strict=True)
        ]
        positions: list[Any] = list(map(self.pending.get, codes))
        # A retried key's position is in a span of an earlier run already, and a key this
        # run did not admit has none.
        if retried:
            positions = [p for p, c in zip(positions, codes, strict=True) if c not in retried]
        if None in positions:
            positions = [p for p in positions if p is not None]
        return Finished(codes, travelling[: len(plain)], rows, positions, remember=True)

    def committed(self, codes: list[Any]) -> None:
        # Forgotten only now that the rows are committed (see admit); in C, not a loop.
        deque(map(self.pending.pop, codes, repeat(None)), maxlen=0)
