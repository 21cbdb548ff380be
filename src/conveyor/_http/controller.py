"""The per-host controller: each host's concurrency and rate, set from the host's own signals.

Pure bookkeeping with an injected clock; the async layer (``Limits``) only waits on its
verdicts. Per request the async layer asks, in this order:

1. ``limit(host)``: how many requests the host may have out now (its host slots);
2. ``verdict(host)``: ``Go(after)`` (the send time is reserved), ``Wait(until, reason)``,
   ``Probe()`` or ``Defer(until, reason)`` (``verdicts.py``);
3. ``start(host)`` right before the request leaves, which returns a ``Ticket``;
4. ``finish(ticket, outcome, ...)`` when it has ended (``outcomes.py`` classifies it),
   with the status and headers of the answer if there was one;

and ``allow_retry(host)`` before a retry. Each answer feeds one mechanism per signal:

- ok answers' latency -> the concurrency limit by gradient (``gradient.py``);
- refusals -> halve the limit and stay under the refused level (``gradient.py``), cut the
  rate and recover it on a cubic (``cubic.py``), pause the host for its ``Retry-After``
  or our backoff, or park it beyond the cap (``pauses.py``);
- network failures -> halve the limit; with server errors -> the breaker (``breaker.py``);
- ``RateLimit`` headers on any answer -> pace the quota to its reset (``quota.py``);
- retries -> the retry budget (``budget.py``).

``per_host`` and ``host_rate`` are ceilings it never exceeds. With ``adapt=False`` it is
today's fixed behaviour (``pacing.HostPacer``): ``per_host`` always, a 429 pauses and
slows the host; no breaker, no budget. Either way it keeps each host's ``HostReport``.

With ``loops="auto"``, what the controller on the run's loop learnt of its hosts'
concurrency (``learnt``) starts the loop processes' controllers at the move
(``take_learnt``): each host there begins at its part of the limit it had reached, below
its part of a refused level, at its part of a refused rate (the same curve back), rather
than at one request out and no rate of ours.

With loop processes, ``on_breaker`` (set by ``watch.Watch.join``) hears each breaker's
probe going out and a probe's answer closing it, for the other loops, which keep it
(``peer_breaker``, ``restore_pause``): one probe per break between them.

Memory: a host's state is a few small objects, made only when needed (a pause, a breaker
and a quota only once the host gave cause). ``forget_idle()`` drops hosts that have
nothing out and nothing to remember and returns their final reports, so a job over
millions of hosts holds only the ones it is working on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping

from .breaker import Event, HostBreaker, State
from .host_report import HostReport, HostTally, Pause
from .host_state import ControlSettings, HostLearnt, HostState, Ticket
from .outcomes import Outcome
from .pacing import HostPacer
from .pauses import HostPause
from .quota import read_quota
from .retry import parse_retry_after
from .verdicts import GO, PROBE, Defer, Go, Reason, Verdict, Wait

__all__ = ["ControlSettings", "HostController", "Ticket"]

Clock = Callable[[], float]
BreakerHook = Callable[[Event, str], None]  # (what the host's breaker did, the host)
_BREAKING = (Outcome.SERVER_ERROR, Outcome.NET_FAIL)
_INDEX = {Outcome.OK: 0, Outcome.REFUSAL: 1, Outcome.SERVER_ERROR: 2, Outcome.NET_FAIL: 3}


class HostController:
    """Per-host concurrency, rate, pauses and breaker. Pure: no waiting, no tasks."""

    def __init__(
        self,
        settings: ControlSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        rand: Callable[[], float] = random.random,
        origin: float | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ControlSettings()
        self._clock, self._wall, self._rand = clock, wall, rand
        self._origin = clock() if origin is None else origin  # times in reports are from here
        self._hosts: dict[str, HostState] = {}
        self._fixed = (
            None if self.settings.adapt else HostPacer(self.settings.host_rate, clock=clock)
        )
        # Told when a breaker's probe goes out and when a probe's answer closes it (the
        # other loops' breakers of the host keep to one probe); None with one loop.
        self.on_breaker: BreakerHook | None = None
        # The loop that reads the answers is CPU-bound now (``ports.LoopBound``): their
        # latency is mostly its lag, not the hosts' (``Gradient.ok``'s ``ours``).
        self.loop_bound = False
        # Hosts another controller learnt (``take_learnt``), taken up as each is first
        # asked about; what is left is dropped after ``idle_after`` (hosts never seen here).
        self._learnt: dict[str, HostLearnt] = {}
        self._learnt_at = 0.0
        # Ok answers' latency since ``answer_times`` was last asked (``ports.Timed``).
        self._oks = 0
        self._answered_in = 0.0
        self._fastest = float("inf")

    def _state(self, host: str) -> HostState:
        state = self._hosts.get(host)
        if state is None:
            now = self._clock()
            state = self._hosts[host] = HostState(self.settings, now)
            if self._learnt:
                learnt = self._learnt.pop(host, None)
                if learnt is not None:
                    state.take(learnt, self.settings.parts, now)
        return state

    def limit(self, host: str) -> int:
        """Requests the host may have out now."""
        if self._fixed is not None:
            return self.settings.per_host
        state = self._hosts.get(host)
        if state is None:
            if host not in self._learnt:
                return self.settings.gradient.start
            state = self._state(host)
        gradient = state.gradient
        if not gradient.refused:
            return gradient.cap  # kept as it changes; a refused level moves with time
        return gradient.allowed(self.settings.gradient, self._clock())

    def verdict(self, host: str) -> Verdict:
        """May a request to ``host`` leave? A ``Go`` reserves its send time."""
        if self._fixed is not None:
            delay = self._fixed.reserve(host)
            return Go(delay) if delay > 0 else GO
        state = self._hosts.get(host)
        if state is None and self.settings.host_rate is None:
            return GO  # a host we know nothing of, and no ceiling to keep: no state at all
        state = state or self._state(host)
        now = self._clock()
        if state.calm(now) and self.settings.host_rate is None:
            return GO  # nothing paces the host (most hosts, most of the time)
        if state.breaker is not None and state.breaker.state != State.CLOSED:
            verdict = state.breaker.verdict(self.settings.breaker, now)
            if verdict is PROBE and self.on_breaker is not None:
                self.on_breaker(Event.PROBING, host)
            return verdict
        pause = state.pause
        if pause is not None and pause.until > now:
            if pause.parked:
                return Defer(pause.until, Reason.PARKED)
            return Wait(pause.until, Reason.PAUSED)
        interval = state.interval(self.settings, now)
        if interval == float("inf"):
            return Wait(state.quota_until, Reason.QUOTA)
        due = max(now, state.tat)
        state.tat = due + interval
        return Go(due - now) if due > now else GO

    def start(self, host: str, *, retry: bool = False) -> Ticket:
        """A request to ``host`` leaves now (``retry``: it is a retry of an item)."""
        state = self._hosts.get(host) or self._state(host)
        now = self._clock()
        state.in_flight += 1
        state.last_active = now
        state.gradient.sent(self.settings.gradient, state.in_flight)
        if retry:
            state.tally.retries += 1
        else:
            state.budget.first_attempt(self.settings.budget, now)
        return Ticket(host, now, state.in_flight, retry)

    def finish(
        self,
        ticket: Ticket,
        outcome: Outcome | None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        latency: float | None = None,
        nbytes: int = 0,
    ) -> None:
        """The request of ``ticket`` ended: ``outcome`` None when it says nothing of the
        host (cancelled, or our own refusal of the answer). ``latency`` defaults to the
        time since it left; pass the time to the response head to leave the body out."""
        state = self._hosts.get(ticket.host) or self._state(ticket.host)
        now = self._clock()
        state.in_flight = max(0, state.in_flight - 1)
        state.last_active = now
        if outcome is None:
            return
        ok = outcome is Outcome.OK
        if latency is None:
            latency = now - ticket.sent_at
        state.tally.answer(_INDEX[outcome], status, latency if ok else None, nbytes)
        state.cubic.answered(now)
        if self._fixed is not None:
            self._finish_fixed(ticket.host, state, status, headers, now)
            return
        settings = self.settings
        if state.breaker is None and outcome in _BREAKING:
            state.breaker = HostBreaker()
        # A retry's failure was counted when its item first failed: counted again, the
        # retries of a few broken or stalled pages at the end of a run (all that is left
        # then) made "half the last 20 answers are errors" or "5 network failures in a
        # row" and opened the breaker on a healthy host, whose last items were then
        # deferred run after run. Each item fails toward the breaker once.
        recount = ticket.retry and outcome in _BREAKING
        breaker = state.breaker
        if breaker is not None and not (recount and breaker.state == State.CLOSED):
            probing = breaker.state == State.PROBING
            if breaker.record(
                settings.breaker, outcome, sent_at=ticket.sent_at, now=now, rand=self._rand()
            ):
                state.tally.breaker_openings += 1  # told as a pause (``watch.py``)
            elif probing and breaker.state == State.CLOSED and self.on_breaker is not None:
                self.on_breaker(Event.CLOSED, ticket.host)
        if ok:
            state.gradient.ok(settings.gradient, latency, ticket.level, now, ours=self.loop_bound)
            self._oks += 1
            self._answered_in += latency
            if latency < self._fastest:
                self._fastest = latency
        elif outcome is Outcome.REFUSAL:
            self._refused(state, ticket, status, headers, now)
        elif outcome is Outcome.NET_FAIL:
            state.gradient.drop(ticket.sent_at, now)
        if headers is not None:
            quota = read_quota(headers, wall=self._wall())
            if quota is not None:
                state.quota, state.quota_until = quota, now + quota.reset
        cubic = state.cubic
        refused = cubic.rate(now, forgive=settings.forgive) if cubic.w_max else None
        limit = state.gradient.allowed(settings.gradient, now)
        tally = state.tally
        if refused is not None or not tally.shows(limit):
            tally.step(now - self._origin, limit, refused)

    def _refused(
        self,
        state: HostState,
        ticket: Ticket,
        status: int | None,
        headers: Mapping[str, str] | None,
        now: float,
    ) -> None:
        settings = self.settings
        allowed = state.gradient.allowed(settings.gradient, now)
        state.gradient.drop(ticket.sent_at, now)
        if 2 * ticket.level >= allowed:
            # Refused with its limit about used: the site counts requests out, so stay
            # under that level. Refused with a few out of many allowed (a one-off 429,
            # or one sent while the rate held the host back), the level says nothing of
            # the site's; kept, it pinned a host at 3 of 24 for minutes (the demo).
            state.gradient.refused_level(settings.gradient, ticket.level, now)
        if ticket.sent_at >= state.cubic.refused_at or not state.cubic.w_max:
            state.cubic.refused(now, beta=settings.beta, recover=settings.recover)
        header = headers.get("Retry-After") if headers is not None else None
        # The wall time of ``now`` (the answer's), not a later reading: the pause runs
        # from ``now`` on the monotonic clock, and a wall clock read later (the process
        # preempted between the two, on a busy machine) made the retry early by the gap.
        retry_after = parse_retry_after(header, now=self.to_wall(now))
        if state.pause is None:
            state.pause = HostPause()
        seconds = state.pause.refusal(
            settings.pauses,
            now=now,
            sent_at=ticket.sent_at,
            retry_after=retry_after,
            rand=self._rand(),
        )
        if seconds is not None:
            at = now - self._origin
            state.tally.pause(Pause(at, seconds, status, header, state.pause.parked))

    def _finish_fixed(
        self,
        host: str,
        state: HostState,
        status: int | None,
        headers: Mapping[str, str] | None,
        now: float,
    ) -> None:
        """Today's rule: a 429 pauses the host (its Retry-After cut to the cap, or the
        backoff) and slows it down; an answer under 400 relaxes the slow-down."""
        assert self._fixed is not None
        if status == 429:
            header = headers.get("Retry-After") if headers is not None else None
            wait = parse_retry_after(header, now=self.to_wall(now))  # as in ``_refused``
            settings = self.settings
            pause = settings.fixed_backoff if wait is None else min(wait, settings.fixed_pause_cap)
            self._fixed.on_throttled(host, pause)
            state.tally.pause(Pause(now - self._origin, pause, status, header))
        elif status is not None and status < 400:
            self._fixed.on_success(host)

    def set_interval(self, host: str, seconds: float) -> None:
        """Space requests to ``host`` at least ``seconds`` apart (robots.txt ``Crawl-delay``)
        while the run lasts; 0 lifts it. Other pacing still applies when it spaces more."""
        if self._fixed is not None:
            self._fixed.set_interval(host, seconds)
            return
        if seconds <= 0 and host not in self._hosts:
            return
        self._state(host).floor = max(0.0, seconds)

    def allow_retry(self, host: str) -> bool:
        """May an item of ``host`` be retried now? Takes the retry from the host's budget."""
        state = self._hosts.get(host)
        if self._fixed is not None or state is None:
            return True
        if state.budget.try_retry(self.settings.budget, self._clock()):
            return True
        state.tally.retries_denied += 1
        return False

    def deferred(self, host: str, items: int = 1) -> None:
        """Count items the engine deferred for this host's sake (for its report)."""
        self._state(host).tally.deferred += items

    def held(self, host: str) -> tuple[Reason, float] | None:
        """Why the host is held back now and until when (its clock), or None: a pause
        (or park) the site asked for, its quota, its breaker. Polite waiting, not a stall."""
        now = self._clock()
        if self._fixed is not None:
            left = self._fixed.pause_remaining(host)
            return (Reason.PAUSED, now + left) if left > 0 else None
        state = self._hosts.get(host)
        return state.held(now) if state is not None else None

    def paused(self, limit: int = 5) -> dict[str, tuple[str, float]]:
        """Up to ``limit`` hosts held back now, longest first: reason and seconds left
        (the live display's "held back" line)."""
        now = self._clock()
        held = {}
        for host in self._hosts:
            hold = self.held(host)
            if hold is not None:
                held[host] = (str(hold[0]), hold[1] - now)
        return dict(sorted(held.items(), key=lambda item: -item[1][1])[:limit])

    def slowed_hosts(self) -> dict[str, float]:
        """With ``adapt=False``, hosts slowed by a 429 and their interval in seconds; with
        the controller, hosts whose refused rate holds them back: their interval."""
        if self._fixed is not None:
            return self._fixed.slowed_hosts()
        now = self._clock()
        slowed = {}
        for host, state in self._hosts.items():
            rate = state.cubic.rate(now, forgive=self.settings.forgive)
            if rate is not None:
                slowed[host] = 1.0 / rate
        return slowed

    def drain_rate(self, host: str) -> float | None:
        """Requests per second the host allows now (for the tail's forecast), or None
        before any ok answer."""
        state = self._hosts.get(host)
        return state.drain_rate(self.settings, self._clock()) if state is not None else None

    def report(self, host: str) -> HostReport:
        state = self._hosts.get(host)
        return state.tally.report(host) if state is not None else HostReport(host)

    def tallies(self) -> Iterator[tuple[str, HostTally]]:
        """Every remembered host's tally (``health.HostBook`` reports only the few that
        matter, and adds up the rest from their counts)."""
        for host, state in self._hosts.items():
            yield host, state.tally

    def reports(self) -> dict[str, HostReport]:
        """Every remembered host's report (``forget_idle`` hands over the others')."""
        return {host: state.tally.report(host) for host, state in self._hosts.items()}

    def answer_times(self) -> tuple[int, float, float]:
        """Ok answers since the last call (with ``adapt``): how many, their mean latency
        and the fastest one's, in seconds (zeros when none)."""
        answers, total, fastest = self._oks, self._answered_in, self._fastest
        self._oks, self._answered_in, self._fastest = 0, 0.0, float("inf")
        if not answers:
            return 0, 0.0, 0.0
        return answers, total / answers, fastest

    def learnt(self) -> dict[str, HostLearnt]:
        """What each host's concurrency limit and refused rate learnt so far (none with
        ``adapt=False``), for a controller that takes the hosts over (``take_learnt``)."""
        if self._fixed is not None:
            return {}
        now = self._clock()
        return {host: state.learnt(now) for host, state in self._hosts.items()}

    def take_learnt(self, learnt: Mapping[str, HostLearnt]) -> None:
        """Start these hosts from what another controller learnt (``learnt``), each at
        its part (``ControlSettings.parts``), when first asked about; a host already
        known here keeps what it knows."""
        if self._fixed is not None:
            return
        known = self._hosts
        self._learnt.update((host, seen) for host, seen in learnt.items() if host not in known)
        self._learnt_at = self._clock()

    def forget_idle(self) -> dict[str, HostReport]:
        """Drop hosts with nothing out and nothing to remember (no pause, breaker, refused
        rate or quota), quiet for ``idle_after`` s; returns their final reports."""
        now = self._clock()
        settings = self.settings
        if self._learnt and now - self._learnt_at >= settings.idle_after:
            self._learnt.clear()  # hosts this controller never asked about
        gone = {
            host: state.tally.report(host)
            for host, state in self._hosts.items()
            if state.forgettable(settings, now)
        }
        for host in gone:
            del self._hosts[host]
        if self._fixed is not None:
            self._fixed.forget_idle()
        return gone

    def now(self) -> float:
        """The controller's clock now."""
        return self._clock()

    def to_wall(self, when: float) -> float:
        """A time on the controller's clock as a Unix time (for the journal, and to read
        a ``Retry-After`` date against). The wall clock is read first: a moment lost
        between the two readings makes the result earlier, never later, so a wait worked
        out from it is never short."""
        return self._wall() + (when - self._clock())

    def pauses_to_keep(self) -> dict[str, tuple[Reason, float]]:
        """Site pauses and open breakers running now, with their ends as Unix times: what
        the journal keeps so that a run started again does not hit these hosts early."""
        kept: dict[str, tuple[Reason, float]] = {}
        for host in self._hosts:
            hold = self.held(host)
            if hold is not None and hold[0] != Reason.QUOTA:
                kept[host] = (hold[0], self.to_wall(hold[1]))
        return kept

    def restore_pause(self, host: str, reason: Reason, until_wall: float) -> None:
        """A pause the journal kept from an earlier run (``pauses_to_keep``), or another
        loop told: hold the host until then. A breaker's pause comes back as an open
        breaker, which then probes, a random lag later (``BreakerSettings.lag``): every
        loop restores the same time, and the first to reach its own probes and tells the
        others, who wait for its verdict."""
        now = self._clock()
        until = now + (until_wall - self._wall())
        if until <= now:
            return
        state = self._state(host)
        if reason == Reason.BREAKER:
            settings = self.settings.breaker
            state.breaker = state.breaker or HostBreaker()
            state.breaker.restore(settings, until + settings.lag(self._rand()), now)
        else:
            state.pause = state.pause or HostPause()
            state.pause.restore(until, now, parked=reason == Reason.PARKED)

    def peer_breaker(self, host: str, event: Event) -> bool:
        """Another loop's breaker of ``host`` sent its probe (this one waits for the
        probe's verdict rather than probe too) or closed on the probe's answer (this one
        closes). True when the host's requests waiting here may go now."""
        state = self._hosts.get(host)
        if state is None or state.breaker is None:
            return False  # no breaker here: nothing to hold back, nothing to close
        now = self._clock()
        if event == Event.CLOSED:
            return state.breaker.peer_closed(now)
        state.breaker.peer_probing(self.settings.breaker, now, self._rand())
        return False

    def __len__(self) -> int:
        return len(self._hosts)
