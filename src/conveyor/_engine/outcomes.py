"""Outcomes: every input item ends as results or as exactly one ``Failure``."""

from __future__ import annotations

import traceback
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .._errors import ItemError, failure_kind


class RemoteFailure(Exception):
    """An item's failure in another process (a loop process), as it was described there."""

    def __init__(self, stage: str, kind: str, message: str, attempts: int, error_type: str):
        super().__init__(message)
        self.stage = stage
        self.kind = kind
        self.attempts = attempts
        self.error_type = error_type

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.stage, self.kind, str(self), self.attempts, self.error_type)
        return (RemoteFailure, args)


@dataclass(frozen=True, slots=True)
class Failure:
    """One item that did not make it through a stage.

    Attributes:
        key: the item's key (its input position unless a ``key=`` function was given).
        stage: the name of the stage where it failed.
        kind: a stable lowercase string: ``"timeout"``, ``"worker-crashed"``, ``"error"``,
            or an HTTP kind such as ``"dns"`` or ``"too-large"``.
        message: the error message.
        attempts: how many times the stage tried the item.
        error_type: the exception's class name, e.g. ``"ValueError"``.
        item: the input value the stage received (not stored in journals).
        traceback: the formatted traceback of an exception raised by user code; None for
            conveyor's own outcomes (timeouts, crashed workers, HTTP failures).
    """

    key: Hashable
    stage: str
    kind: str
    message: str
    attempts: int
    error_type: str
    item: Any = field(default=None, repr=False, compare=False)
    traceback: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, key: Hashable, stage: str, attempts: int, item: Any
    ) -> Failure:
        if isinstance(exc, RemoteFailure):  # already described where it happened
            return cls(key, exc.stage, exc.kind, str(exc), exc.attempts, exc.error_type, item)
        # A stage that retries internally (the HTTP client) reports its own attempt count.
        own_attempts = getattr(exc, "attempts", None)
        return cls(
            key=key,
            stage=stage,
            kind=failure_kind(exc),
            message=str(exc) or type(exc).__name__,
            attempts=own_attempts if isinstance(own_attempts, int) else attempts,
            error_type=type(exc).__name__,
            item=item,
            # Formatting a traceback costs ~1 ms (3.11 parses each frame's source for its
            # carets): worth it for an exception from user code, not for conveyor's own
            # outcomes (a timeout, a crashed worker, an HTTP failure), whose message says
            # it all. A run of a million bad URLs would otherwise spend minutes on them.
            traceback=None
            if isinstance(exc, ItemError)
            else "".join(traceback.format_exception(exc)),
        )

    def __conveyor_record__(self) -> dict[str, Any]:
        """The record a sink writes for this failure."""
        return {
            "key": self.key,
            "stage": self.stage,
            "error_kind": self.kind,
            "error": self.message,
            "error_type": self.error_type,
            "attempts": self.attempts,
        }
