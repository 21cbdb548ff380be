"""Events the runner emits, and the bus that hands them to observers.

The engine never prints. Progress bars, statistics and reports subscribe here. An observer
that raises is detached and logged once, so a broken progress bar cannot break a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .outcomes import Failure
    from .stats import RunResult, RunStatistics

logger = logging.getLogger("conveyor")


@dataclass(frozen=True, slots=True)
class RunStarted:
    stages: tuple[str, ...]
    total: int | None  # input items, when the source can count them cheaply


@dataclass(frozen=True, slots=True)
class ItemStarted:
    stage: str
    key: Hashable
    attempt: int


@dataclass(frozen=True, slots=True)
class ItemFinished:
    stage: str
    key: Hashable
    seconds: float


@dataclass(frozen=True, slots=True)
class ItemRetrying:
    stage: str
    key: Hashable
    attempt: int
    delay: float
    error: str


@dataclass(frozen=True, slots=True)
class ItemFailed:
    failure: Failure


@dataclass(frozen=True, slots=True)
class Tick:
    """Sent a few times a second: a snapshot of every stage (queue depths, in flight)."""

    statistics: RunStatistics


@dataclass(frozen=True, slots=True)
class RunFinished:
    result: RunResult


Event = RunStarted | ItemStarted | ItemFinished | ItemRetrying | ItemFailed | Tick | RunFinished


@runtime_checkable
class Observer(Protocol):
    def on_event(self, event: Event) -> None: ...


ObserverLike = Observer | Callable[[Event], Any]


class EventBus:
    """Delivers events to observers on the event loop's thread; cheap when nobody listens."""

    def __init__(self, observers: tuple[ObserverLike, ...] = ()) -> None:
        self._handlers: list[Callable[[Event], Any]] = [
            o.on_event if isinstance(o, Observer) else o for o in observers
        ]
        # False when nobody listens, so callers can skip building per-item events. A plain
        # attribute, not a property: it is read several times for every item.
        self.active = bool(self._handlers)
        # ``ItemStarted`` (first attempts) and ``ItemFinished``: an event per item and stage
        # that most observers do not need. An observer that needs neither says so with a
        # class attribute ``wants_item_events = False`` (the progress display and the
        # report do: the report's latency comes with the result); ``ItemRetrying``,
        # ``ItemFailed`` and a retry's ``ItemStarted`` are always sent.
        self.items = any(getattr(o, "wants_item_events", True) for o in observers)

    def emit(self, event: Event) -> None:
        for handler in tuple(self._handlers):
            try:
                handler(event)
            except Exception:
                self._handlers.remove(handler)
                self.active = bool(self._handlers)
                self.items = self.items and self.active
                logger.exception("conveyor observer %r raised; it is detached", handler)
