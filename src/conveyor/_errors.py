"""The one error tree of conveyor, grouped by what the caller can do about it.

::

    ConveyorError
    ├── UsageError (ValueError)             a wrong call or argument: fix the code or the flag
    │   ├── NotPicklableError               a function sent to processes cannot be pickled
    │   └── JobMismatchError                a journal belongs to another job: restart or resume
    ├── JournalError                        the journal file is corrupt or not ours
    ├── SinkError (OSError)                 the output cannot be written (disk full, no access)
    │   └── ShardFenced                     a newer attempt of this shard took over: stop
    ├── ShardFailed                         a Ray shard failed for good: run again to resume
    ├── Deferred                            an item left for the next run, with its reason
    ├── ItemError                           one item failed; ``kind`` is the stable failure kind
    │   ├── ItemTimeout (TimeoutError)      our own deadline fired            kind "timeout"
    │   ├── WorkerCrashed                   a worker process died             kind "worker-crashed"
    │   └── FetchError                      an HTTP fetch failed              kind per subclass
    │       ├── BadURL                      not http(s), no host, unparsable  "bad-url"
    │       ├── DNSError                    the name did not resolve          "dns"
    │       ├── ConnectError                no connection                     "connect"
    │       ├── TLSError                    TLS handshake or certificate      "tls"
    │       ├── FetchTimeout (TimeoutError) connect, read or total deadline   "timeout"
    │       ├── ConnectionReset             the peer closed mid-response      "reset"
    │       ├── TooLarge                    body over max_bytes               "too-large"
    │       ├── TooSlow                     a body slower than min_rate       "too-slow"
    │       ├── TooManyRedirects            redirect chain too long           "too-many-redirects"
    │       ├── DecodeError                 a corrupt gzip, deflate or br body "decode"
    │       ├── ProxyError                  the proxy refused the request     "proxy"
    │       └── Blocked                     a safety rule refused the request "blocked"

With ``on_error="raise"`` the first failing item's own exception is re-raised, with the
failure (stage, kind, attempts) added to its ``__notes__``.

``RunInterrupted`` is a ``KeyboardInterrupt`` (not a ConveyorError) so that code which
handles Ctrl-C keeps working; it carries the partial ``RunResult``.

``Failure.kind`` values are stable lowercase strings stored in journals and reports.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ConveyorError(Exception):
    """Base class of every error conveyor raises on purpose."""


class UsageError(ConveyorError, ValueError):
    """A wrong call or argument. The message says what to do instead."""


class NotPicklableError(UsageError):
    """A function or argument for ``on="processes"`` cannot be sent to a worker process."""


class JobMismatchError(UsageError):
    """An existing journal records a different job (other input or settings)."""


class JournalError(ConveyorError):
    """The journal file is corrupt, or is not a conveyor journal."""


class SinkError(ConveyorError, OSError):
    """The output cannot be written; data already flushed is kept."""


class ShardFenced(SinkError):
    """A newer attempt of this shard has started: this one may not write or commit."""


class ShardFailed(ConveyorError):
    """A shard of a job run on Ray failed for good (its retries spent). Running the same
    job again resumes it."""


class Deferred(ConveyorError):
    """An item left undone for a stated reason, to be done by running the same job again.

    Not a failure: a deferred item is kept in the journal, not written to the output, and
    a later run of the same job takes it up again, so that it still ends in the output
    exactly once. Raised where the reason is known (a host paused by the site past the
    cap, its breaker open, the tail or deadline budget spent, robots.txt unreachable).

    Attributes:
        reason: a stable lowercase string, stored in journals and reports ("paused",
            "breaker", "tail", "deadline", "robots", ...).
        until: the wall-clock time (seconds since the epoch) before which trying again is
            pointless, or None when the next run may try at once.
    """

    kind: ClassVar[str] = "deferred"

    def __init__(self, message: str, *, reason: str, until: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.until = until

    def __reduce__(self) -> tuple[Any, ...]:
        return (_deferred, (str(self), self.reason, self.until))


def _deferred(message: str, reason: str, until: float | None) -> Deferred:
    return Deferred(message, reason=reason, until=until)


class ItemError(ConveyorError):
    """One item failed. ``kind`` is the stable failure kind recorded for it.

    Attributes:
        attempts: how many tries the raiser ran itself before giving up, when it retries
            inside (the HTTP client); None when it does not, and then the stage's
            ``Failure.attempts`` counts the stage's own tries.
    """

    kind: ClassVar[str] = "error"
    attempts: int | None = None


class ItemTimeout(ItemError, TimeoutError):
    """The stage's own per-item deadline fired."""

    kind: ClassVar[str] = "timeout"


class WorkerCrashed(ItemError):
    """The worker process running this item died (os._exit, a signal, a segfault)."""

    kind: ClassVar[str] = "worker-crashed"


class FetchError(ItemError):
    """An HTTP fetch failed. Subclasses name the kind.

    Attributes:
        url: the URL asked for, when known.
        attempts: how many tries the HTTP client ran before giving up (retries
            included); ``None`` for an error raised outside the client, and then a
            stage's ``Failure.attempts`` counts the stage's own tries instead.
    """

    kind: ClassVar[str] = "fetch"

    def __init__(
        self, message: str, *, url: str | None = None, attempts: int | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class BadURL(FetchError):
    kind: ClassVar[str] = "bad-url"


class DNSError(FetchError):
    kind: ClassVar[str] = "dns"


class ConnectError(FetchError):
    kind: ClassVar[str] = "connect"


class TLSError(FetchError):
    kind: ClassVar[str] = "tls"


class FetchTimeout(FetchError, TimeoutError):
    kind: ClassVar[str] = "timeout"


class ConnectionReset(FetchError):
    kind: ClassVar[str] = "reset"


class TooLarge(FetchError):
    kind: ClassVar[str] = "too-large"


class TooSlow(FetchError):
    """The body arrived slower than ``min_rate`` bytes per second, averaged over 30 s."""

    kind: ClassVar[str] = "too-slow"


class TooManyRedirects(FetchError):
    kind: ClassVar[str] = "too-many-redirects"


class Blocked(FetchError):
    kind: ClassVar[str] = "blocked"


class DecodeError(FetchError):
    """The body is not what its ``Content-Encoding`` says (corrupt gzip, deflate or br)."""

    kind: ClassVar[str] = "decode"


class ProxyError(FetchError):
    """The proxy refused the request: a ``CONNECT`` answered with anything but 2xx, or a
    407 (the proxy wants credentials)."""

    kind: ClassVar[str] = "proxy"


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by Ctrl-C (SIGINT); ``result`` holds what was done."""

    def __init__(self, result: Any) -> None:
        super().__init__("run interrupted")
        self.result = result


def failure_kind(exc: BaseException) -> str:
    """The stable failure kind for an exception raised while processing an item."""
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    return "error"
