"""A host's concurrency limit, by latency gradient (the shape of Netflix's Gradient2).

Per ok answer, the p50 of the host's last few latencies (``short``) is compared with its
long-run baseline: ``g = clamp(tolerance * baseline / short, 0.5, 1)``; the new limit is
``L*g + growth``, smoothed (``L = (1 - s)*L + s*new``). While latency holds (``g == 1``) the
limit grows; once it climbs past ``tolerance`` times the baseline, it shrinks.

Differences from Gradient2, each for a crawler's scale (limits of 1 to 16 per host, a few
hundred requests to a host rather than millions):

- **Slow start.** A host begins with one request out: its first answer may ask for a
  pause (a Retry-After date), and a second request sent beside it would arrive early (the
  arena's host E). Until the first drop or the first rise of latency, each ok answer adds
  1 (TCP's slow start: the limit doubles every round trip), so a healthy host reaches a
  ceiling of 8 in three round trips; Gradient2's ``queue`` of 4 is a 1 here.
- **The baseline** is the latency of the host *lightly loaded*: it moves, up or down,
  only with answers to requests sent while at most half the limit was out (falling with
  every faster answer sank it to the host's fastest page where pages differ).
  Gradient2's baseline is an average of every answer, so the queueing we
  cause becomes the host's normal and the limit creeps up to the ceiling on a host that
  only gets slower for it (a knee at 4 requests out, a limit of 16: seen in the tests).
  Since a busy host always has its limit out, every ``light_every`` answers the limit is
  halved until one request leaves that lightly loaded: about half a round trip at half
  the concurrency per 200 answers (~1% of a busy host's throughput), which keeps the
  baseline true when the host itself gets slower (BBR's ProbeRTT does the same). As in
  Gradient2, the baseline is cut by 5% while it is over twice the short p50, so recovery
  after an incident is quick.
- **Drops.** A refusal or a network failure halves the limit (floor 1), once per round
  trip: an answer to a request sent before the last drop does not drop it again, or a
  burst of four refusals would cut 8 to 1 (TCP reacts once per window for the same
  reason).
- **The refused level.** A refusal also remembers how many requests were out when the
  refused one left; the limit stays below that level, and probes one above it per
  ``probe_every`` seconds while no refusal comes; each probe refused at the same level
  doubles the time to the next one, so a site whose limit does not change sees a probe
  ever more rarely. Latency cannot show a site that counts
  requests in flight and refuses the next (it answers the refusal fast), so without this
  memory the limit would climb back into the refusal every few seconds: the sawtooth.
- **App-limited.** The limit grows only while the host uses at least half of it, so a
  host we send one request at a time does not earn a limit of 16 it never tested.
- **Learnt, handed on.** What a host's gradient learnt (its limit, whether it is still
  in slow start, a refused level and its age) can start another's (``learnt``,
  ``take``): ``loops="auto"`` moves its hosts from the run's loop to loop processes a
  few seconds in, and a host that starts again from one request out costs a slow start
  (three round trips at 100 ms answers: ~0.3 s of a 10 s job) and forgets the level its
  site refused. A host spread over ``parts`` loops takes its part of each.
- **Our own lag.** While the loop that reads the answers is CPU-bound (the engine says
  so: ``ports.LoopBound``), an answer's latency is mostly the time it waited for the
  loop, which grows with the requests out: a fast host looked like one past its knee,
  and the limit of one nginx host on two loops moved between 7 and 50 of 50. Then an
  answer only grows the limit (as in slow start, to the ceiling) and leaves the window
  and the baseline as they were; refusals and failures still cut it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import NamedTuple

from .._errors import UsageError


@dataclass(frozen=True, slots=True)
class GradientSettings:
    """The concurrency rule's knobs (``ControlSettings`` holds one).

    Args:
        start: the limit of a host we know nothing about.
        ceiling: the most it may reach (``per_host``).
        tolerance: how far latency may rise over the baseline before the limit shrinks.
        smoothing: the share of a new estimate taken per answer.
        growth: what one answer adds while latency holds (Gradient2's queue size).
        window: answers in the short window whose p50 is compared with the baseline.
        rise: how much of the gap the baseline closes per lightly loaded answer above it.
        fall: how much of the gap it closes per answer below it.
        light_every: answers after which the limit is halved until one request leaves
            lightly loaded.
        probe_every: seconds to the first probe one above a refused level.
    """

    start: int = 1
    ceiling: int = 8
    tolerance: float = 1.5
    smoothing: float = 0.2
    growth: float = 1.0
    window: int = 16
    rise: float = 0.25
    fall: float = 0.2
    light_every: int = 200
    probe_every: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.start <= self.ceiling:
            raise UsageError(f"start={self.start} must be between 1 and ceiling={self.ceiling}")
        if self.tolerance < 1:
            raise UsageError(f"tolerance={self.tolerance} must be at least 1")
        for name in ("smoothing", "rise", "fall"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise UsageError(f"{name}={value} must be above 0 and at most 1")
        if self.window < 1 or self.growth <= 0 or self.probe_every <= 0 or self.light_every < 1:
            raise UsageError(
                "window, growth, light_every and probe_every must be greater than zero"
            )


class Learnt(NamedTuple):
    """What one host's gradient learnt, for another to start from (``Gradient.take``).
    Picklable: it travels to loop processes."""

    limit: int
    slow: bool  # still in slow start
    refused: int  # the refused level (0: none remembered)
    refused_age: float  # seconds since that refusal (clocks differ between processes)
    probe_every: float


class Gradient:
    """One host's concurrency limit. Pure: every time comes in as an argument."""

    __slots__ = (
        "_at",
        "_ring",
        "_settings",
        "_sorted",
        "baseline",
        "cap",
        "dropped_at",
        "heavy",
        "limit",
        "probe_every",
        "refused",
        "refused_at",
        "slow",
    )

    def __init__(self, settings: GradientSettings) -> None:
        self.limit = float(settings.start)
        self.slow = True  # slow start: +1 per ok answer until latency rises or a drop
        self.baseline = 0.0
        self.heavy = 0  # answers since the last lightly loaded one
        self._ring: list[float] = []  # the short window, in arrival order
        self._sorted: list[float] = []  # the same latencies, sorted (for the p50)
        self._at = 0
        self.dropped_at = -math.inf
        self.refused = 0  # the lowest level refused (0: none remembered)
        self.refused_at = 0.0
        self.probe_every = settings.probe_every  # doubles with each refused probe
        # ``allowed`` while no refused level is held, kept as the limit and ``heavy``
        # change: asked for every request (``HostController.limit``), a read, not a call.
        self._settings = settings  # the host's; only ``_settle`` reads it
        self.cap = settings.start
        self._settle()

    def allowed(self, settings: GradientSettings, now: float) -> int:
        """Requests this host may have in flight now."""
        if not self.refused:
            return self.cap
        allowed = min(int(self.limit), self.ceiling(settings, now))
        if self.heavy >= settings.light_every:
            allowed //= 2  # until a lightly loaded answer shows the baseline (docstring)
        return max(1, allowed)

    def _settle(self) -> None:
        """Recompute ``cap``: ``allowed`` without a refused level (it moves with time)."""
        settings = self._settings
        allowed = min(int(self.limit), settings.ceiling)
        if self.heavy >= settings.light_every:
            allowed //= 2  # until a lightly loaded answer shows the baseline (docstring)
        self.cap = max(1, allowed)

    def ceiling(self, settings: GradientSettings, now: float) -> int:
        """``per_host``, or below a refused level: one under it, one more per probe period."""
        if not self.refused:
            return settings.ceiling
        probes = int((now - self.refused_at) / self.probe_every)
        cap = self.refused - 1 + probes
        if cap >= settings.ceiling:
            self.refused = 0  # probed back up to the ceiling: forget the refusal
            return settings.ceiling
        return max(1, cap)

    def remembers(self, settings: GradientSettings, now: float) -> bool:
        """A refused level is still held (else the state is as a new host's, but for the
        limit learnt, which a forgotten host can learn again within a few round trips)."""
        self.ceiling(settings, now)  # forgets a level probed back up to the ceiling
        return bool(self.refused)

    def short(self) -> float:
        """The p50 of the short window (0 before any answer)."""
        ring = self._sorted
        return ring[len(ring) // 2] if ring else 0.0

    def ok(
        self,
        settings: GradientSettings,
        latency: float,
        in_flight: int,
        now: float,
        *,
        ours: bool = False,
    ) -> None:
        """An ok answer after ``latency`` s, sent with ``in_flight`` requests out (itself
        included). ``ours``: our own loop is CPU-bound, so the latency is mostly its lag
        and says nothing of the host: the answer grows the limit as in slow start (while
        the host uses half of it), and leaves the window and the baseline alone."""
        if ours:
            limit = self.limit
            if in_flight >= limit / 2:
                ceiling = self.ceiling(settings, now) if self.refused else settings.ceiling
                self.limit = max(1.0, min(limit + settings.growth, float(ceiling)))
                if int(self.limit) != int(limit):
                    self._settle()
            return
        ring, ranked = self._ring, self._sorted
        if len(ring) < settings.window:
            ring.append(latency)
        else:
            del ranked[bisect_left(ranked, ring[self._at])]
            ring[self._at] = latency
            self._at = (self._at + 1) % settings.window
        insort(ranked, latency)
        short = ranked[len(ranked) // 2]
        light = in_flight <= 1 or 2 * in_flight <= self.limit
        drained = self.heavy >= settings.light_every
        self.heavy = 0 if light else self.heavy + 1
        if not self.baseline:
            self.baseline = latency
        elif light:
            # Lightly loaded answers move the baseline both ways, loaded ones not at all.
            # It used to fall with *any* answer faster than it: on a host whose pages
            # differ (2-40 ms, a few 1 s) it sank to the fastest page, the p50 always
            # looked 1.5 times "the baseline", and the limit sat at 2 (the demo ran 7x
            # slower than with fixed limits).
            gap = latency - self.baseline
            self.baseline += (settings.rise if gap > 0 else settings.fall) * gap
        if self.baseline > 2.0 * short:
            self.baseline *= 0.95
        gradient = 1.0 if short <= 0 else settings.tolerance * self.baseline / short
        gradient = 1.0 if gradient > 1.0 else 0.5 if gradient < 0.5 else gradient
        limit = self.limit
        if self.slow and gradient >= 1.0:
            new = limit + settings.growth
        else:
            self.slow = False
            new = limit * gradient + settings.growth
            new = (1.0 - settings.smoothing) * limit + settings.smoothing * new
        if not (new > limit and in_flight < limit / 2):
            # (else the host does not use what it has: no evidence it could take more)
            ceiling = self.ceiling(settings, now) if self.refused else settings.ceiling
            self.limit = max(1.0, min(new, float(ceiling)))
        if int(self.limit) != int(limit) or drained != (self.heavy >= settings.light_every):
            self._settle()  # (``cap`` is of these two only)

    def drop(self, sent_at: float, now: float) -> bool:
        """A refusal or a network failure of a request sent at ``sent_at``: halve the
        limit, unless a drop came after that request left (the same round trip)."""
        self.slow = False
        if sent_at < self.dropped_at:
            return False
        self.limit = max(1.0, math.floor(self.limit * 0.5))
        self.dropped_at = now
        self._settle()
        return True

    def sent(self, settings: GradientSettings, level: int) -> None:
        """A request left with ``level`` requests out (itself included): a lightly loaded
        one ends the drain that ``allowed`` imposes every ``light_every`` answers."""
        if self.heavy and level <= max(1.0, self.limit / 2):
            drained = self.heavy >= settings.light_every
            self.heavy = 0
            if drained:
                self._settle()

    def learnt(self, now: float) -> Learnt:
        """What this host's limit learnt so far (``take`` starts another from it)."""
        return Learnt(
            int(self.limit), self.slow, self.refused, now - self.refused_at, self.probe_every
        )

    def take(self, learnt: Learnt, parts: int, now: float) -> None:
        """Start from what another host's gradient learnt, this one holding ``1/parts``
        of the host (loops it is spread over): its part of the limit, and of the level
        below the refused one (rounded down: the parts never add up to more)."""
        ceiling = self._settings.ceiling
        self.limit = float(max(1, min(learnt.limit // parts, ceiling)))
        self.slow = learnt.slow
        if learnt.refused:
            self.refused = max(1, (learnt.refused - 1) // parts) + 1
            self.refused_at = now - learnt.refused_age
            self.probe_every = learnt.probe_every
            self.limit = min(self.limit, float(self.refused - 1))
        self._settle()

    def refused_level(self, settings: GradientSettings, level: int, now: float) -> None:
        """A refusal of a request that left with ``level`` requests out: stay below it."""
        cap = self.ceiling(settings, now)
        refused = max(2, min(level, cap + 1))
        if refused == self.refused and now - self.refused_at >= self.probe_every:
            self.probe_every *= 2.0  # the probe found the same limit: probe more rarely
        elif refused != self.refused:
            self.probe_every = settings.probe_every
        self.refused = refused
        self.refused_at = now
        self.limit = min(self.limit, float(max(1, self.refused - 1)))
        self._settle()
