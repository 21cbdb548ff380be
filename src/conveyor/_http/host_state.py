"""One host's state in the controller, and the settings every host shares.

``HostState`` holds a host's parts (``gradient``, ``cubic``, ``budget``, a ``pause``,
a ``breaker`` and a ``quota`` made only once the host gave cause) and answers the pure
questions the controller asks of one host: its pacing interval, what holds it back, how
fast it drains, whether it can be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from .._errors import UsageError
from .breaker import BreakerSettings, HostBreaker, State
from .budget import BudgetSettings, RetryBudget
from .cubic import CubicRate, RateLearnt
from .gradient import Gradient, GradientSettings, Learnt
from .host_report import HostTally
from .pauses import HostPause, PauseSettings
from .quota import Quota, quota_interval
from .verdicts import Reason


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """How the controller treats every host.

    Args:
        adapt: learn each host's limits (False: fixed ``per_host`` and ``host_rate``).
        per_host: the most requests out to one host, ever (``--per-host``).
        host_rate: the most requests per second to one host, ever (``--host-rate``).
        gradient: the concurrency rule; its ceiling is set to ``per_host``.
        pauses, breaker, budget: the pause, breaker and retry-budget rules.
        beta: the share of the refused rate kept right after a refusal.
        recover: seconds for the rate to climb back to the refused rate.
        forgive: seconds without a refusal after which the refused rate is forgotten.
        idle_after: seconds a host must be quiet before ``forget_idle`` may drop it.
        fixed_pause_cap: with ``adapt=False``, the longest ``Retry-After`` honoured
            (``max_retry_after``); fixed_backoff: the pause of a 429 without one.
        parts: how many clients send to each host at once (loop processes a host is
            spread over, each holding ``1/parts`` of ``per_host`` and ``host_rate``): a
            host's ``RateLimit`` quota is the site's for all of them, so each paces
            ``1/parts`` of it.
    """

    adapt: bool = True
    per_host: int = 8
    host_rate: float | None = None
    gradient: GradientSettings = field(default_factory=GradientSettings)
    pauses: PauseSettings = field(default_factory=PauseSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    beta: float = 0.7
    recover: float = 10.0
    forgive: float = 1_800.0
    idle_after: float = 60.0
    fixed_pause_cap: float = 60.0
    fixed_backoff: float = 0.5
    parts: int = 1

    def __post_init__(self) -> None:
        if self.parts < 1:
            raise UsageError(f"parts={self.parts} must be at least 1")
        if self.per_host < 1:
            raise UsageError(f"per_host={self.per_host} must be at least 1")
        if self.host_rate is not None and not self.host_rate > 0:
            raise UsageError(f"host_rate={self.host_rate} must be above zero")
        if not 0 < self.beta < 1 or not self.recover > 0 or not self.forgive > 0:
            raise UsageError("beta must be between 0 and 1, recover and forgive above zero")
        if self.gradient.ceiling != self.per_host:
            start = min(self.gradient.start, self.per_host)
            ceiling = replace(self.gradient, start=start, ceiling=self.per_host)
            object.__setattr__(self, "gradient", ceiling)


class Ticket(NamedTuple):
    """One request out: its host, when it left, and how many were out then (itself too)."""

    host: str
    sent_at: float
    level: int
    retry: bool = False  # a retry of an item (its server error is not counted again)


class HostLearnt(NamedTuple):
    """What a host's state learnt of its site that another controller should start from
    (``HostController.learnt``, ``take_learnt``): its concurrency (``Gradient``) and the
    rate a refusal left it (``CubicRate``; None when no refusal is remembered)."""

    concurrency: Learnt
    rate: RateLearnt | None


class HostState:
    __slots__ = (
        "breaker",
        "budget",
        "cubic",
        "floor",
        "gradient",
        "in_flight",
        "last_active",
        "pause",
        "quota",
        "quota_until",
        "tally",
        "tat",
    )

    """One host's parts; see the module docstring."""

    def __init__(self, settings: ControlSettings, now: float) -> None:
        self.in_flight = 0
        self.last_active = now
        self.gradient = Gradient(settings.gradient)
        self.cubic = CubicRate(now)
        self.budget = RetryBudget(now)
        self.tally = HostTally()
        self.tat = now  # when the next request may leave by the pace (GCRA)
        self.pause: HostPause | None = None
        self.breaker: HostBreaker | None = None
        self.quota: Quota | None = None
        self.quota_until = 0.0
        self.floor = 0.0  # the spacing the site asks for (robots.txt Crawl-delay); 0: none

    def calm(self, now: float) -> bool:
        """Nothing holds the host back or spaces its requests now but ``host_rate`` (no
        open breaker, pause, quota, refused rate, ``floor`` or reserved send time): its
        next request may go at once, without working out its interval."""
        breaker, pause = self.breaker, self.pause
        return (
            self.tat <= now
            and not self.floor
            and not self.cubic.w_max
            and self.quota is None
            and (breaker is None or breaker.state == State.CLOSED)
            and (pause is None or pause.until <= now)
        )

    def interval(self, settings: ControlSettings, now: float) -> float:
        """Seconds between two requests to the host now: the longest its ceiling, its
        site's own spacing (``floor``), its refused rate and its quota ask for (``inf``:
        its quota is spent until the reset)."""
        rate = settings.host_rate
        interval = max(1.0 / rate if rate else 0.0, self.floor)
        refused = self.cubic.rate(now, forgive=settings.forgive)
        if refused is not None:
            interval = max(interval, 1.0 / refused)
        if self.quota is not None:
            if now < self.quota_until:
                paced = quota_interval(self.quota, self.in_flight)
                if paced is not None:
                    interval = max(interval, paced * settings.parts)
            else:
                self.quota = None
        return interval

    def held(self, now: float) -> tuple[Reason, float] | None:
        """Why the host is held back now and until when, or None."""
        breaker = self.breaker
        if breaker is not None and breaker.state != State.CLOSED:
            return Reason.BREAKER, max(now, breaker.until)
        pause = self.pause
        if pause is not None and pause.until > now:
            return (Reason.PARKED if pause.parked else Reason.PAUSED), pause.until
        quota = self.quota
        if quota is not None and now < self.quota_until:
            if quota_interval(quota, self.in_flight) == float("inf"):
                return Reason.QUOTA, self.quota_until
        return None

    def drain_rate(self, settings: ControlSettings, now: float) -> float | None:
        """Requests per second the host allows now: its limit over its latency, cut by its
        rate limits; None before any ok answer."""
        short = self.gradient.short()
        if short <= 0:
            return None
        rate = self.gradient.allowed(settings.gradient, now) / short
        interval = self.interval(settings, now)
        return min(rate, 1.0 / interval) if interval > 0 else rate

    def learnt(self, now: float) -> HostLearnt:
        return HostLearnt(self.gradient.learnt(now), self.cubic.learnt(now))

    def take(self, learnt: HostLearnt, parts: int, now: float) -> None:
        """Start from what another host state learnt, holding ``1/parts`` of the host."""
        self.gradient.take(learnt.concurrency, parts, now)
        if learnt.rate is not None:
            self.cubic.take(learnt.rate, parts, now)

    def forgettable(self, settings: ControlSettings, now: float) -> bool:
        """Nothing out, quiet for ``idle_after``, and nothing to remember: no pause,
        breaker, refused level or rate, quota or reserved send time."""
        return not (
            self.in_flight
            or self.floor
            or now - self.last_active < settings.idle_after
            or self.tat > now
            or self.gradient.remembers(settings.gradient, now)
            or self.cubic.rate(now, forgive=settings.forgive) is not None
            or (self.pause is not None and not self.pause.idle(settings.pauses, now))
            or (self.breaker is not None and not self.breaker.idle(settings.breaker, now))
            or (self.quota is not None and now < self.quota_until)
        )
