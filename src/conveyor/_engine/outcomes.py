"""Outcomes: every input item ends as results or as exactly one ``Failure``.

A failure in another process (a worker process of ``on="processes"``, a loop process)
is described where it happened, once, by ``RemoteFailure.describe``: the traceback is
formatted there, where its frames are, and the exception itself travels along when it
pickles, so that a retry policy and ``on_error="raise"`` see the type the user's code
raised (``original``).
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .._errors import ItemError, failure_kind


def own_attempts(exc: BaseException) -> int | None:
    """The tries the raiser ran itself (a service that retries inside), or None."""
    if isinstance(exc, ItemError | RemoteFailure):
        return exc.attempts
    return None


def _formatted(exc: BaseException) -> str | None:
    # Formatting a traceback costs ~1 ms (3.11 parses each frame's source for its
    # carets): worth it for an exception from user code, not for conveyor's own
    # outcomes (a timeout, a crashed worker, an HTTP failure), whose message says it
    # all. A run of a million bad URLs would otherwise spend minutes on them.
    return None if isinstance(exc, ItemError) else "".join(traceback.format_exception(exc))


class RemoteFailure(Exception):
    """An item's failure in another process, as it was described there.

    Attributes:
        stage: the stage that raised (a loop process runs several), or None: the stage
            that sent the item.
        kind, error_type, traceback: as in ``Failure``; the traceback is the remote one.
        attempts: the raiser's own tries (``ItemError.attempts``), or None.
        error: the exception itself, when it survived pickling (with the remote
            traceback in its notes); None when it could not be sent.
        extra: what the head's service carried for the ledger (``ports.Carry``) before
            a later stage of the head failed, or None.
    """

    extra: Any = None

    def __init__(
        self,
        message: str,
        *,
        stage: str | None,
        kind: str,
        error_type: str,
        traceback: str | None,
        attempts: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.kind = kind
        self.error_type = error_type
        self.traceback = traceback
        self.attempts = attempts
        self.error = error

    @classmethod
    def describe(cls, exc: BaseException, *, stage: str | None = None) -> RemoteFailure:
        """``exc`` described in the process that raised it, ready to be pickled back."""
        text = _formatted(exc)
        try:
            error: BaseException | None = pickle.loads(pickle.dumps(exc))
        except Exception:
            error = None  # it cannot travel: the description stands in for it
        if error is not None and text is not None:
            error.add_note(f"in another process:\n{text}")
        return cls(
            str(exc) or type(exc).__name__,
            stage=stage,
            kind=failure_kind(exc),
            error_type=type(exc).__name__,
            traceback=text,
            attempts=own_attempts(exc),
            error=error,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The attributes (notes included) go as state, restored over a bare instance.
        return (_bare, (str(self),), self.__dict__)


def _bare(message: str) -> RemoteFailure:
    return RemoteFailure(message, stage=None, kind="error", error_type="", traceback=None)


def original(exc: BaseException) -> BaseException:
    """The exception as the user's code raised it: for a ``RemoteFailure``, the exception
    that travelled with it, when it could."""
    if isinstance(exc, RemoteFailure) and exc.error is not None:
        return exc.error
    return exc


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
        traceback: the formatted traceback of an exception raised by user code (also in a
            worker or loop process: formatted there); None for conveyor's own outcomes
            (timeouts, crashed workers, HTTP failures).
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
        """The failure of ``exc``; ``attempts`` are the stage's tries, unless the raiser
        counted its own (``ItemError.attempts``: a service that retries inside)."""
        own = own_attempts(exc)
        if isinstance(exc, RemoteFailure):  # already described where it happened
            return cls(
                key,
                exc.stage or stage,
                exc.kind,
                str(exc),
                attempts if own is None else own,
                exc.error_type,
                item,
                exc.traceback,
            )
        return cls(
            key=key,
            stage=stage,
            kind=failure_kind(exc),
            message=str(exc) or type(exc).__name__,
            attempts=attempts if own is None else own,
            error_type=type(exc).__name__,
            item=item,
            traceback=_formatted(exc),
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
