"""A sink that hands every call on: the base of the sinks that wrap another (a shard's
fence and counts around its part, the command line's rows around its file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._engine.outcomes import Failure
from ..._engine.ports import Sink


class Forward:
    """Hands every call to ``inner``; a wrapper overrides the calls it adds to."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner

    def describe(self) -> Any:
        """The inner sink's, for the shard journal's fingerprint."""
        describe = getattr(self.inner, "describe", None)
        return describe() if callable(describe) else type(self.inner).__name__

    def open(self, position: Any = None) -> None:
        self.inner.open(position)

    def write(self, results: Sequence[Any]) -> None:
        self.inner.write(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self.inner.write_failures(failures)

    def flush(self) -> Any:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()
