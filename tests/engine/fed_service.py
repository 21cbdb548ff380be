"""A run its ledger feeds, without HTTP: a tree of numbers explored from its root.

``TreeFactory``'s service answers item ``n`` with ``Carry(n, children)``: its children
``2n+1`` and ``2n+2`` below ``size`` go to the ledger with ``n``'s key when ``n`` is
finished, and ``TreeLedger`` hands them out by ``take``. Items in ``drop`` end at the
service (``Carry(..., drop=True)``). Module-level, so loop processes can import it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from conveyor._engine.ports import Budget, Carry, Feed, KeyOutcome, Taken


class Tree(Feed):
    def describe(self) -> Any:
        return "tree"


class TreeService:
    def __init__(self, size: int, drop: frozenset[int]) -> None:
        self.size = size
        self.drop = drop

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, n: int) -> Carry:
        children = [c for c in (2 * n + 1, 2 * n + 2) if c < self.size]
        return Carry(n, children, drop=n in self.drop)

    def report(self) -> None:
        return None

    def attempts(self, result: Any) -> int:
        return 1


class TreeFactory:
    def __init__(self, size: int, drop: frozenset[int] = frozenset()) -> None:
        self.size = size
        self.drop = drop

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[TreeService]:
        yield TreeService(self.size, self.drop)

    def share(self, index: int, loops: int, *, spread: bool = False) -> TreeFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return False

    def bind(self, budget: Budget) -> TreeFactory:
        return self


class TreeLedger:
    """An in-memory ledger that feeds its run: the root first, then what finished
    items carried. ``hold``: items handed out only after the first empty ``take``."""

    def __init__(self, hold: Sequence[int] = ()) -> None:
        self.pending: deque[int] = deque([0])
        self.held = list(hold)
        self.seen = {0, *hold}
        self.finished: dict[Hashable, str] = {}
        self.extras: dict[Hashable, Any] = {}
        self.takes = 0

    # the Ledger protocol
    sink_position = None

    def admit(self, keys: Sequence[Hashable]) -> list[bool]:
        raise AssertionError("a fed run admits nothing")

    def admit_now(self, keys: Sequence[Hashable]) -> None:
        raise AssertionError("a fed run admits nothing")

    def prepare(self) -> None:
        pass

    def stage(
        self,
        outcomes: Sequence[KeyOutcome],
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        for key in done:
            self.finished[key] = "done"
        for outcome in outcomes:
            self.finished[outcome.key] = outcome.status
        for key, children in extras:
            assert key not in self.extras, f"{key} carried twice"
            self.extras[key] = children
            for child in children:
                if child not in self.seen:
                    self.seen.add(child)
                    self.pending.append(child)

    def record(
        self,
        outcomes: Sequence[KeyOutcome],
        position: Any,
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        self.stage(outcomes, done, extras)

    def take(self, limit: int) -> Taken:
        self.takes += 1
        items = []
        while self.pending and len(items) < limit:
            n = self.pending.popleft()
            items.append((n, n))
        if not items and self.held:
            if self.takes > 1:
                self.pending.extend(self.held)
                self.held = []
            return Taken([], retry_in=0.01)
        return Taken(items)

    def close(self) -> None:
        pass
