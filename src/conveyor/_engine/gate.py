"""Into a batch stage in input order, in an ordered run: ``OrderGate``.

An ordered run releases each root's outputs in input order (``tracker.py``), but that
cannot help a batch stage that grouped items as they came: workers finish out of order,
so a batch could hold roots 0 and 3 while 1 and 2 were still on their way, and whether
its output goes out before theirs or after, the order is broken (flattened by a later
``flat_map``, the items of 3 come out before those of 1). So in an ordered run a batch
stage takes its items through a gate, which lets them in by root, and within a root by
position: a root's envelopes go in once none of them is still upstream of the gate.

For that the gate counts, per root, the envelopes of it still upstream: one when the root
is admitted, one more for each child a ``flat_map`` upstream makes, one less for each that
ends upstream (a failure, a filter, a ``flat_map`` parent spent) and for each that reaches
the gate. The stages upstream tell it through ``watched``, the runner at admission.
Pure counting, but letting envelopes in waits for room in the inbox, so that part is
async, one caller at a time (the order must survive the waits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .channel import Channel
from .envelope import Envelope
from .outcomes import Failure
from .stages import StageSink


class OrderGate:
    """Lets envelopes into one batch stage's inbox in input order."""

    def __init__(self, inbox: Channel[Any]) -> None:
        self._inbox = inbox
        self._upstream: dict[int, int] = {}  # root -> its envelopes still upstream
        self._held: dict[int, list[Envelope]] = {}  # first root -> envelopes that came
        self._next = 0  # the lowest root not let in yet
        self._admitted = 0  # roots below this were admitted
        self._turn = asyncio.Lock()  # one caller at a time fills the inbox, in order

    def admit(self, root: int) -> None:
        self._upstream[root] = 1
        self._admitted = root + 1

    def forget(self, root: int) -> None:
        """The root was admitted but never entered (the run stopped meanwhile)."""
        self._upstream[root] = 0

    def spawn(self, root: int) -> None:
        """A ``flat_map`` upstream made a child of ``root``."""
        self._upstream[root] += 1

    async def ended(self, roots: Sequence[int]) -> None:
        """An envelope of ``roots`` ended upstream: it will never come."""
        for root in roots:
            self._upstream[root] -= 1
        await self._let_in()

    async def arrive(self, envelope: Envelope) -> None:
        """``envelope`` reached the gate: hold it until its turn, then let it in."""
        for root in envelope.roots():
            self._upstream[root] -= 1
        self._held.setdefault(envelope.root, []).append(envelope)
        await self._let_in()

    async def _let_in(self) -> None:
        # What is ready is taken under the lock: a caller that finds the lock held leaves
        # its roots to whoever holds it or comes next, and none goes in before an earlier.
        async with self._turn:
            for envelope in self._ready():
                await self._inbox.put(envelope)

    def _ready(self) -> list[Envelope]:
        ready: list[Envelope] = []
        while self._next < self._admitted and not self._upstream.get(self._next):
            root = self._next
            self._upstream.pop(root, None)
            held = self._held.pop(root, None)
            if held:
                if len(held) > 1:
                    held.sort(key=lambda e: e.pos)
                ready.extend(held)
            self._next += 1
        return ready


def watched(sink: StageSink, gates: Sequence[OrderGate]) -> StageSink:
    """``sink`` for a stage upstream of ``gates``: what ends or is born there is counted."""
    if not gates:
        return sink

    async def fail(envelope: Envelope, failure: Failure, exc: BaseException) -> None:
        await sink.fail(envelope, failure, exc)
        for gate in gates:
            await gate.ended(envelope.roots())

    async def drop(envelope: Envelope, filtered: bool) -> None:
        await sink.drop(envelope, filtered)
        for gate in gates:
            await gate.ended(envelope.roots())

    def spawn(root: int) -> None:
        sink.spawn(root)
        for gate in gates:
            gate.spawn(root)

    return StageSink(sink.emit, fail, drop, spawn)
