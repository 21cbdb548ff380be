"""A stage's service whose keys are spread over the loops and that tells its peers: the
engine's relay (``ports.Peered``) shown without HTTP. Module-level, so loop processes can
import it.

``"tell"`` makes the service tell its peers ``("paused", its pid)``; ``"listen"`` waits
(bounded) until its service heard something, and returns what it heard.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from conveyor._engine.ports import Budget, Peers

_LISTEN_FOR = 30.0  # seconds "listen" waits for a notice before it gives up


class PeerService:
    def __init__(self) -> None:
        self.peers: Peers | None = None
        self.heard: list[Any] = []

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: str) -> tuple[str, int, list[Any]]:
        if item == "tell" and self.peers is not None:
            self.peers.tell(("paused", os.getpid()))
        if item == "listen":
            for _ in range(int(_LISTEN_FOR / 0.01)):
                if self.heard:
                    break
                await asyncio.sleep(0.01)
        return item, os.getpid(), list(self.heard)

    def join(self, peers: Peers) -> None:
        self.peers = peers

    def hear(self, notice: Any) -> None:
        self.heard.append(notice)

    def report(self) -> None:
        return None

    def attempts(self, result: Any) -> int:
        return 1


class PeerFactory:
    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[PeerService]:
        yield PeerService()

    def share(self, index: int, loops: int, *, spread: bool = False) -> PeerFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> PeerFactory:
        return self
