"""What a stage is: a function, where it runs, how many at once, and its limits.

Everything is checked when the pipeline is built, so a wrong argument fails at the line
that wrote it, not minutes into a run.
"""

from __future__ import annotations

import inspect
import os
import pickle
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import NotPicklableError, UsageError
from .limits import parse_limit_per, parse_rate
from .ports import ServiceFactory
from .retry import Retry

Place = Literal["loop", "threads", "processes", "inline", "loops", "auto"]
Kind = Literal["map", "filter", "flat_map", "batch"]
_PLACES = ("auto", "loop", "threads", "processes", "inline")


def is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the bound __call__
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


@dataclass(frozen=True, slots=True)
class StageSpec:
    kind: Kind
    name: str
    fn: Callable[[Any], Any] | None
    place: Place
    workers: int
    concurrency: int
    rate: float | None = None
    retry: Retry = field(default_factory=Retry)
    timeout: float | None = None
    limit_per: tuple[Callable[[Any], Hashable], int] | None = None
    batch_size: int = 0
    batch_timeout: float | None = None
    # A per-run resource whose ``call`` is the stage's function (an HTTP client): the
    # runner enters it when the run starts and exits it when the run ends (``ports.py``).
    factory: ServiceFactory | None = None
    fn_bytes: bytes | None = None  # the pickled function, for processes
    # Where a run with several loop processes sends an item: the loop owning this key.
    route: Callable[[Any], str] | None = None
    # place="loops": the stages this one stands for, run in the loop processes.
    remote: tuple[StageSpec, ...] = ()
    # place="loops" by measurement (loops="auto"): the head starts on the run's own loop
    # and moves to ``workers`` loop processes once that loop is CPU-bound.
    measured: bool = False
    # The calls its service may have out at once (a fetch's requests: its
    # ``concurrency``), when the stage has more worker tasks (``concurrency``) than that:
    # the others wait inside the service (for a host held back) with nothing out, and
    # leave the slots to the other hosts. None: as many as its workers. See ``budget``.
    slots: int | None = None

    @property
    def budget(self) -> int:
        """The calls out at once the run holds this stage to: what every budget is sized
        from (the loop processes' shared slots, the items sent ahead to them, the loops
        a head gets). ``concurrency`` is its worker tasks: the budget and the items that
        may wait inside its service beside it."""
        return self.concurrency if self.slots is None else self.slots

    @property
    def never_waits(self) -> bool:
        """Nothing to wait for or watch around the call: no rate, no per-key limit, no
        retries, no timeout. The one rule for what may be fused into the previous
        stage's workers, take the plain fast path, or go to loop processes."""
        return (
            self.rate is None
            and self.limit_per is None
            and self.retry.attempts == 1
            and self.timeout is None
        )

    @property
    def has_service(self) -> bool:
        """Its function comes from a per-run service (its own, or its head's first
        stage's when folded onto loop processes), which counts an item's own attempts
        (``Service.attempts``, ``ItemError.attempts``)."""
        return (self.remote[0] if self.remote else self).factory is not None


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name}={value!r} must be a whole number of at least 1")
    return value


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UsageError(f"timeout={value!r} must be a number of seconds greater than zero")
    return float(value)


def _place_for(fn: Callable[..., Any], on: str, name: str, *, sync_default: Place) -> Place:
    if on not in _PLACES:
        raise UsageError(f"on={on!r}: choose one of {', '.join(repr(p) for p in _PLACES)}")
    is_async = is_async_callable(fn)
    if on == "auto":
        return "loop" if is_async else sync_default
    if on == "loop" and not is_async:
        raise UsageError(
            f"stage {name!r}: on='loop' needs an `async def` function; "
            "run a blocking function with on='threads' (or on='processes' for CPU work)"
        )
    if on in ("threads", "processes", "inline") and is_async:
        raise UsageError(
            f"stage {name!r}: {getattr(fn, '__qualname__', fn)} is `async def`; "
            f"it runs on the event loop: use on='loop' or on='auto', not on={on!r}"
        )
    return on  # type: ignore[return-value]


def make_stage(
    kind: Kind,
    fn: Callable[[Any], Any],
    *,
    on: str = "auto",
    workers: int | None = None,
    concurrency: int | None = None,
    rate: float | str | None = None,
    retries: int | Retry | None = 0,
    timeout: float | None = None,
    limit_per: tuple[Callable[[Any], Hashable], int] | None = None,
    name: str | None = None,
    sync_default: Place = "auto",
    factory: ServiceFactory | None = None,
) -> StageSpec:
    """Check every argument of ``map``/``filter``/``flat_map`` and build the stage."""
    if not callable(fn):
        raise UsageError(f"{kind}() needs a function, got {fn!r}")
    stage_name = name or getattr(fn, "__name__", None) or kind
    place = _place_for(fn, on, stage_name, sync_default=sync_default)
    if place == "auto" and timeout is not None:
        # A timeout is for calls that may block: threads, where a late call is abandoned.
        # (The probe of on="auto" would run its first calls with no deadline.)
        place = "threads"
    if place == "inline" and timeout is not None:
        raise UsageError(
            f"stage {stage_name!r}: on='inline' runs the function on the event loop, where a "
            f"call cannot be interrupted, so timeout={timeout!r} could not be kept; use "
            "on='threads' (a late call is abandoned) or on='processes' (its worker is replaced)"
        )
    cpus = os.cpu_count() or 1
    if workers is not None:
        _positive_int(workers, "workers")
    if concurrency is not None:
        _positive_int(concurrency, "concurrency")
    fn_bytes = None
    if place == "loop":
        if workers is not None and concurrency is None:
            concurrency = workers
        slots = concurrency or 100
        n_workers = slots
    elif place == "threads":
        n_workers = workers or min(32, cpus + 4)
        slots = concurrency or n_workers
    elif place == "auto":  # measured at run time (auto.py): inline, threads or processes
        n_workers = workers or min(32, cpus + 4)
        slots = concurrency or max(n_workers, cpus * 64)  # enough to fill process chunks
        fn_bytes = _pickled_or_none(fn)
    elif place == "processes":
        fn_bytes = pickled_function(fn, stage_name)
        n_workers = workers or cpus
        # Enough items in flight to fill a chunk for every worker.
        slots = concurrency or n_workers * 64
    else:  # inline: cheap predicates run right on the loop
        n_workers = 1
        slots = concurrency or 1
    return StageSpec(
        kind=kind,
        name=stage_name,
        fn=fn,
        place=place,
        workers=n_workers,
        concurrency=slots,
        rate=parse_rate(rate),
        retry=Retry.coerce(retries),
        timeout=_timeout(timeout),
        limit_per=parse_limit_per(limit_per),
        factory=factory,
        fn_bytes=fn_bytes,
    )


def pickled_function(fn: Callable[..., Any], stage: str) -> bytes:
    """Pickle ``fn`` now, so a lambda or a local function is refused before the run."""
    try:
        return pickle.dumps(fn)
    except Exception as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        raise NotPicklableError(
            f"stage {stage!r}: {name} cannot be sent to worker processes ({exc}); "
            "define it with `def` at module level (not a lambda or a nested function), "
            "or run it with on='threads'"
        ) from None


def _pickled_or_none(fn: Callable[[Any], Any]) -> bytes | None:
    """The pickled function when it can go to processes; None keeps it off them."""
    try:
        return pickle.dumps(fn)
    except Exception:
        return None


def make_batch(size: int, timeout: float | None, name: str | None) -> StageSpec:
    return StageSpec(
        kind="batch",
        name=name or "batch",
        fn=None,
        place="inline",
        workers=1,
        concurrency=1,
        batch_size=_positive_int(size, "batch size"),
        batch_timeout=_timeout(timeout),
    )
