"""A host's breaker spread over loops: one probe per break between them, not one a loop.

Two (or three) controllers stand for the loop processes a host's URLs are spread over,
each with the ``Watch`` that tells and hears notices, wired by a relay that delivers what
one tells to the others a little later (as the parent relays it). Time is a ``FakeClock``
moved in small steps; each loop always has the host's items waiting, asks its verdict
each step and sends what it allows; the host answers each request after ``LATENCY``:
a reset while it is down, 200 once it is back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor._http.breaker import BreakerSettings, Event, State
from conveyor._http.controller import ControlSettings, HostController, Ticket
from conveyor._http.outcomes import Outcome
from conveyor._http.verdicts import PROBE, Go, Reason, Wait
from conveyor._http.watch import BreakerNotice, Watch
from conveyor.testing import FakeClock

H = "c:80"
WALL = 1_700_000_000.0
BASE = 10.0  # each break, with no jitter: the probes' times are exact
BREAKER = BreakerSettings(base=BASE, longest=BASE, jitter=0.0, probe_timeout=30.0, follow=2.0)
LATENCY = 0.05  # a request's answer (or reset) comes this long after it left
RELAY = 0.03  # a notice reaches the other loops this long after it is told
STEP = 0.01


class _Limits:
    """What ``Watch`` wakes: the hosts whose sleeping requests it woke."""

    def __init__(self) -> None:
        self.woken: list[str] = []

    def answered(self, host: str) -> None:
        self.woken.append(host)


class _Relay:
    """``ports.Peers`` of one loop: what it tells reaches the others ``RELAY`` s later."""

    def __init__(self, world: _World, source: _Loop) -> None:
        self.world, self.source = world, source

    def tell(self, notice: Any) -> None:
        self.world.told.append((self.world.clock.now, self.source.name, notice))
        for loop in self.world.loops:
            if loop is not self.source:
                self.world.mail.append((self.world.clock.now + RELAY, loop, notice))


class _Loop:
    def __init__(self, world: _World, name: str, draw: float) -> None:
        clock = world.clock
        self.name = name
        self.controller = HostController(
            ControlSettings(breaker=world.breaker),
            clock=clock,
            wall=lambda: WALL + clock.now,
            rand=lambda: draw,
        )
        self.limits = _Limits()
        client = SimpleNamespace(controller=self.controller, _limits=self.limits)
        self.watch = Watch(client)  # type: ignore[arg-type] - the controller is all it needs
        self.watch.join(_Relay(world, self))
        self.out: list[tuple[float, Ticket]] = []  # requests out and when they end
        self.items = True  # the host's items wait here
        self.probes: list[float] = []
        self.lose_next = False  # the next probe is cancelled: no answer ever comes

    @property
    def breaker(self) -> Any:
        state = self.controller._hosts[H]
        assert state.breaker is not None
        return state.breaker


class _World:
    def __init__(
        self,
        loops: int = 2,
        down: Callable[[float], bool] = lambda now: True,
        breaker: BreakerSettings = BREAKER,
    ) -> None:
        self.clock = FakeClock(0.0)
        self.breaker = breaker
        self.down = down
        self.mail: list[tuple[float, _Loop, Any]] = []
        self.told: list[tuple[float, str, Any]] = []
        # Each loop's random draws, spread apart: which loop leads is the one whose
        # lag is shortest. (Two loops whose draws fall within a notice's trip of each
        # other would both probe: the rare race the lags leave.)
        self.loops = [_Loop(self, f"L{i}", (i + 0.5) / loops) for i in range(loops)]
        self.sent: list[tuple[float, str]] = []  # what the host saw: (at, loop)

    def probes(self) -> list[tuple[float, str]]:
        return sorted((at, loop.name) for loop in self.loops for at in loop.probes)

    def run(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            now = self.clock.now
            due = [m for m in self.mail if m[0] <= now]
            self.mail = [m for m in self.mail if m[0] > now]
            for _, loop, notice in due:
                loop.watch.hear(notice)
            for loop in self.loops:
                self._answers(loop, now)
                self._send(loop, now)
            self.clock.advance(STEP)

    def _answers(self, loop: _Loop, now: float) -> None:
        for ends, ticket in [o for o in loop.out if o[0] <= now]:
            loop.out.remove((ends, ticket))
            if ends == float("inf"):
                continue
            outcome = Outcome.NET_FAIL if self.down(ticket.sent_at) else Outcome.OK
            loop.controller.finish(ticket, outcome, status=None if outcome else 200)
            if outcome is not Outcome.OK:
                loop.watch.answered(H)

    def _send(self, loop: _Loop, now: float) -> None:
        controller = loop.controller
        while loop.items and len(loop.out) < controller.limit(H):
            verdict = controller.verdict(H)
            if isinstance(verdict, Wait):
                return
            assert verdict is PROBE or isinstance(verdict, Go), verdict
            ends = now + LATENCY
            if verdict is PROBE:
                loop.probes.append(now)
                if loop.lose_next:
                    loop.lose_next = False
                    ends = float("inf")  # cancelled: never finished with an outcome
            loop.out.append((ends, controller.start(H)))
            self.sent.append((now, loop.name))
            if ends == float("inf"):
                ticket = loop.out.pop()[1]
                controller.finish(ticket, None)  # the request was cancelled


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_both_loops_open_then_one_probe_per_break() -> None:
    """C is down for good: both loops open their breakers (by their own failures, or by
    hearing the other's opening), then across ten breaks exactly one request a break
    reaches C, a probe, always from the loop that leads; the other only follows."""
    world = _World()
    world.run(1.0)
    assert all(loop.breaker.state == State.OPEN for loop in world.loops)
    first = len(world.sent)
    assert first <= 2 * BREAKER.failures
    world.run(10 * BASE + 1.0)
    probes = world.probes()
    assert len(probes) == 10
    assert len(world.sent) - first == 10  # nothing but the probes reached C
    assert all(gap >= BASE for gap in _gaps([at for at, _ in probes]))
    assert len({name for _, name in probes}) == 1  # the leader kept leading
    events = [n.event for _, _, n in world.told if isinstance(n, BreakerNotice)]
    assert events == [Event.PROBING] * 10
    # Each failed probe re-opened the prober's breaker, told as a pause.
    pauses = [n for _, _, n in world.told if n[0] == "pause"]
    assert len(pauses) >= 10


def test_short_breaks_are_told_each_time() -> None:
    """Breaks shorter than 0.5 s: each failed probe's new opening is still told (a loop
    tells a pause again only when it ends 0.5 s past the last, but a probe starts anew),
    so the follower never waits out the lost-probe timeout, and there is still one probe
    a break."""
    short = BreakerSettings(base=0.3, longest=0.3, jitter=0.0, probe_timeout=30.0, follow=2.0)
    world = _World(breaker=short)
    world.run(1.0)
    first = len(world.sent)
    world.run(10.0)
    probes = [at for at, _ in world.probes()]
    assert len(world.sent) - first == len(probes) >= 10
    assert all(gap >= short.base for gap in _gaps(probes))
    pauses = [n for _, _, n in world.told if n[0] == "pause"]
    assert len(pauses) >= len(probes)


def test_the_follower_closes_when_told_and_its_requests_wake() -> None:
    """C comes back: the leader's probe is answered, its breaker closes, and the other
    loop closes when it hears so (its openings kept for the forgiveness rule), long
    before its own break would have ended."""
    world = _World(down=lambda at: at < 2.5 * BASE)
    world.run(3.5 * BASE)
    leader, follower = sorted(world.loops, key=lambda loop: -len(loop.probes))
    assert len(leader.probes) == 3
    assert not follower.probes
    closed = [(at, who) for at, who, n in world.told if n == (Event.CLOSED, H)]
    assert [who for _, who in closed] == [leader.name]
    assert leader.breaker.state == follower.breaker.state == State.CLOSED
    assert follower.breaker.openings >= 1
    assert follower.limits.woken.count(H) >= 1
    # It sent again from the moment it heard, not at the end of its own break.
    heard_at = closed[0][0] + RELAY
    resumed = min(at for at, who in world.sent if who == follower.name and at > 2.0 * BASE)
    assert resumed <= heard_at + 2 * STEP


def test_a_lost_probe_is_replaced_once() -> None:
    """The leader's probe is cancelled (no answer will come): after ``probe_timeout`` the
    leader sends one more, and the follower, which waited for the lost probe's verdict,
    hears of the new one and does not probe too."""
    world = _World()
    world.run(1.0)
    for loop in world.loops:
        loop.lose_next = True  # whoever probes first loses it
    world.run(BASE + BREAKER.follow)
    (lost_at, prober), *_ = world.probes()
    assert len(world.probes()) == 1
    world.run(BREAKER.probe_timeout)
    probes = world.probes()
    assert [name for _, name in probes] == [prober, prober]
    assert probes[1][0] == pytest.approx(lost_at + BREAKER.probe_timeout, abs=2 * STEP)


def test_a_lost_probe_of_a_loop_with_nothing_left_is_replaced_by_another() -> None:
    """The prober loses its probe and has no more of the host's items: another loop
    probes once the lost probe's timeout (and a lag) is over, and only one does."""
    world = _World(loops=3)
    world.run(1.0)
    for loop in world.loops:
        loop.lose_next = True
    world.run(BASE + BREAKER.follow)
    (lost_at, prober), *_ = world.probes()
    for loop in world.loops:
        loop.lose_next = False
        if loop.name == prober:
            loop.items = False
    world.run(BREAKER.probe_timeout + BREAKER.follow + 1.0)
    (_, first), (at, second) = world.probes()
    assert first == prober
    assert second != prober
    assert at >= lost_at + BREAKER.probe_timeout + BREAKER.follow / 4


def test_a_breaker_kept_by_the_journal_is_probed_by_one_loop() -> None:
    """A new run: every loop restores the same kept time; the first to reach its own
    (a random lag later) probes and the others wait for its verdict."""
    world = _World(loops=3)
    for loop in world.loops:
        loop.controller.restore_pause(H, Reason.BREAKER, WALL + 5.0)
    world.run(5.0 + BREAKER.follow + 0.5)
    assert len(world.probes()) == 1
    assert world.probes()[0][0] >= 5.0 + BREAKER.follow / 4
    assert len(world.sent) == 1


def test_hearing_a_probe_does_not_stretch_the_hold_it_shows() -> None:
    """A loop waiting on another's probe shows the host held only until its break's end
    (for the tail rule and the journal), not until the probe's timeout: the verdict is
    due any moment. It still sends nothing until then."""
    world = _World()
    world.run(1.0)
    for loop in world.loops:
        loop.lose_next = True  # the probe stays out: its verdict never comes
    world.run(BASE + BREAKER.follow)
    leader, follower = sorted(world.loops, key=lambda loop: -len(loop.probes))
    assert leader.probes
    assert not follower.probes
    assert follower.breaker.peer_until > world.clock.now + BASE  # waiting for the verdict
    held = follower.controller.held(H)
    assert held == (Reason.BREAKER, world.clock.now)  # held, with nothing left to wait
    assert follower.controller.pauses_to_keep()[H][1] == pytest.approx(WALL + world.clock.now)
    assert isinstance(follower.controller.verdict(H), Wait)
