"""A host's circuit breaker, by outcome class: stop sending to a host that is down or broken.

- **Network failures** (no answer at all) open it after ``failures`` (5) in a row: a host
  that is down (pybreaker's ``fail_max``, Envoy's consecutive errors, Nutch's 5
  exceptions per queue). Any answer, even a refusal, breaks the run of failures.
- **Server errors** open it when they are at least ``ratio`` (50%) of the last
  ``volume`` (20) answers: a host that is up but broken (resilience4j's failure rate with
  a minimum number of calls, scaled down to a crawler's traffic per host).
- **Refusals never** open it: the host is up and asked us to slow down, which pacing does.

Open, the host's requests wait (``Wait(until)``) for ``base * n`` seconds after its n-th
opening (at most ``longest``, jittered; Envoy's ejection time), then exactly one request
goes as a probe (``Probe``, pybreaker's half-open); the others wait for its answer. An
answer (ok or refusal) closes the breaker, a failure opens it again for longer. A probe
whose answer never comes (the request was cancelled) is replaced after ``probe_timeout``.
The count of openings is forgotten after ``forgive`` seconds closed.

With loop processes a host's URLs may be spread over several loops, each with its own
breaker of the host; they keep to one probe per break between them (``watch.py`` carries
the notices). An opening is told to the others, which open until the same time plus a
lag (``restore``: from a quarter of ``follow`` up to ``follow`` seconds, drawn at random),
so the loop that opened it probes first; a probe that goes out is told too, and a breaker
that hears of it waits for its verdict (``peer_probing``: up to ``probe_timeout`` and a
lag, then it probes itself, as a lost probe is replaced) instead of probing at its own
time. A failed probe opens the prober's breaker again and that opening is told; a probe's
answer that closes it is told, and every loop closes (``peer_closed``).

Answers to requests that left before the breaker opened are ignored while it is open: they
say what the host was, not what it is. Nothing fails because of the breaker alone; the
items wait, or the tail policy defers them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .._errors import UsageError
from .outcomes import Outcome
from .verdicts import GO, PROBE, Reason, Verdict, Wait


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """The breaker of every host (``ControlSettings`` holds one).

    Args:
        failures: network failures in a row that open it.
        ratio: the share of server errors among the last ``volume`` answers that opens it.
        volume: answers needed before the ratio counts.
        base: seconds open after the first opening; the n-th is ``base * n``.
        longest: the most seconds it stays open.
        jitter: the random share (0 to 1) of the open time added or taken away.
        probe_timeout: seconds after which a probe with no answer is replaced.
        forgive: seconds closed after which the count of openings starts over.
        follow: with loop processes, the most seconds a breaker that heard of another
            loop's opening (or probe) waits beyond it, at least a quarter of it: the
            loop that opened the breaker probes first and the others hear of its probe.
    """

    failures: int = 5
    ratio: float = 0.5
    volume: int = 20
    base: float = 30.0
    longest: float = 300.0
    jitter: float = 0.1
    probe_timeout: float = 120.0
    forgive: float = 1_800.0
    follow: float = 2.0

    def __post_init__(self) -> None:
        if self.failures < 1 or not 1 <= self.volume <= 1024:
            raise UsageError(
                f"breaker: failures={self.failures} must be at least 1 and "
                f"volume={self.volume} between 1 and 1024"
            )
        if not 0 < self.ratio <= 1 or not 0 <= self.jitter <= 1:
            raise UsageError(f"breaker: ratio={self.ratio} and jitter={self.jitter} go from 0 to 1")
        if not (self.base > 0 and self.longest >= self.base and self.probe_timeout > 0):
            raise UsageError("breaker: base, longest and probe_timeout must be positive seconds")
        if not self.follow >= 0:
            raise UsageError(f"breaker: follow={self.follow} must be seconds, 0 or more")

    def lag(self, rand: float) -> float:
        """A follower's wait beyond the time it heard of (``rand`` a draw in [0, 1)): at
        least a quarter of ``follow``, so the notice of the leader's probe has that long
        to arrive, and spread over the rest, so followers do not all probe at once."""
        return self.follow * (0.25 + 0.75 * rand)


class State(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    PROBING = 2  # half-open: one probe is out


class Event(enum.StrEnum):
    """What a breaker tells the breakers of the same host in other loops."""

    PROBING = "probing"  # its probe went out
    CLOSED = "closed"  # its probe's answer closed it


class HostBreaker:
    """One host's breaker. Pure: times and random draws come in as arguments."""

    __slots__ = (
        "closed_at",
        "count",
        "in_a_row",
        "opened_at",
        "openings",
        "peer_until",
        "state",
        "until",
        "window",
    )

    def __init__(self) -> None:
        self.state = State.CLOSED
        self.in_a_row = 0  # network failures in a row
        self.window = 0  # the last answers as bits, newest lowest: 1 a server error
        self.count = 0  # answers in the window, up to ``volume``
        self.openings = 0
        self.until = 0.0  # open: when the probe may go; probing: when it is given up
        # Open: another loop's probe is out, and this one waits for its verdict until
        # then. Apart from ``until``, which stays the end of the break (what the host is
        # held for, for the tail and the journal), as the verdict is due any moment.
        self.peer_until = -math.inf
        self.opened_at = -math.inf
        self.closed_at = -math.inf

    def verdict(self, settings: BreakerSettings, now: float) -> Verdict:
        """``GO``, ``Wait(until)``, or ``PROBE`` (this request is the one probe)."""
        if self.state == State.CLOSED:
            return GO
        if now < self.until:
            return Wait(self.until, Reason.BREAKER)
        if self.state == State.OPEN and now < self.peer_until:
            return Wait(self.peer_until, Reason.BREAKER)
        self.state = State.PROBING
        self.opened_at = now  # only the probe's answer counts from here
        self.until = now + settings.probe_timeout
        return PROBE

    def record(
        self,
        settings: BreakerSettings,
        outcome: Outcome,
        *,
        sent_at: float,
        now: float,
        rand: float,
    ) -> bool:
        """One answer (or failure) of a request sent at ``sent_at``; ``rand`` a draw in
        [0, 1). Returns True when this opened the breaker."""
        if self.state != State.CLOSED:
            if sent_at < self.opened_at or self.state != State.PROBING:
                return False  # it left before the opening, or before the probe
            if outcome in (Outcome.OK, Outcome.REFUSAL):
                self._close(now)
                return False
            self._open(settings, now, rand)
            return True
        if outcome == Outcome.NET_FAIL:
            self.in_a_row += 1
        else:
            self.in_a_row = 0
            if outcome != Outcome.REFUSAL:
                error = outcome == Outcome.SERVER_ERROR
                self.window = ((self.window << 1) | error) & ((1 << settings.volume) - 1)
                self.count = min(self.count + 1, settings.volume)
        if self.in_a_row >= settings.failures or (
            self.count >= settings.volume
            and self.window.bit_count() >= settings.ratio * settings.volume
        ):
            self._open(settings, now, rand)
            return True
        return False

    def _open(self, settings: BreakerSettings, now: float, rand: float) -> None:
        if self.state == State.CLOSED and now - self.closed_at > settings.forgive:
            self.openings = 0
        self.openings += 1
        seconds = min(settings.longest, settings.base * self.openings)
        seconds *= 1.0 + settings.jitter * (2.0 * rand - 1.0)
        self.state = State.OPEN
        self.until = now + seconds
        self.opened_at = now
        self.peer_until = -math.inf
        self.in_a_row = self.window = self.count = 0

    def _close(self, now: float) -> None:
        self.state = State.CLOSED
        self.closed_at = now
        self.peer_until = -math.inf
        self.in_a_row = self.window = self.count = 0

    def restore(self, settings: BreakerSettings, until: float, now: float) -> None:
        """Open until ``until``: a time an earlier run's journal kept, or an opening
        another loop told (the caller adds the lag). An open breaker is never shortened:
        the loop whose break ends first probes. A probe of another loop this one waited
        on has had its verdict (it failed: this is its new opening). A probe of its own
        that is out is given up, its answer ignored: the host failed another's since."""
        if self.state == State.CLOSED and now - self.closed_at > settings.forgive:
            self.openings = 0
        if self.state != State.OPEN or until > self.until:
            self.until = until
        self.state = State.OPEN
        self.opened_at = now
        self.peer_until = -math.inf
        self.openings = max(self.openings, 1)

    def peer_probing(self, settings: BreakerSettings, now: float, rand: float) -> None:
        """Another loop's probe went out: an open breaker waits for its verdict (the
        prober tells a failure as its new opening, a success as ``peer_closed``) rather
        than probe too; if neither comes, it probes after the probe's timeout and a lag
        (``rand`` a draw in [0, 1)), as the prober replaces a lost probe. A breaker
        probing itself, or closed, has nothing to wait for."""
        if self.state == State.OPEN:
            self.peer_until = now + settings.probe_timeout + settings.lag(rand)

    def peer_closed(self, now: float) -> bool:
        """Another loop's probe closed its breaker: the host answers, close this one too
        (its count of openings kept, as when its own probe closes it). True when it was
        not closed: the host's waiting requests may go now."""
        if self.state == State.CLOSED:
            return False
        self._close(now)
        return True

    def idle(self, settings: BreakerSettings, now: float) -> bool:
        """Nothing worth remembering: closed, clean, and its openings forgiven."""
        return (
            self.state == State.CLOSED
            and not (self.in_a_row or self.window)
            and (not self.openings or now - self.closed_at > settings.forgive)
        )
