"""The per-host controller on an injected clock: model hosts simulated event by event
(``sim.py``), and each verdict it gives."""

from __future__ import annotations

import email.utils
import pickle
import tracemalloc

import pytest

from conveyor._errors import UsageError
from conveyor._http.controller import ControlSettings, HostController
from conveyor._http.host_report import HostReport, merge_reports
from conveyor._http.outcomes import Outcome
from conveyor._http.verdicts import GO, PROBE, Defer, Go, Reason, Wait
from conveyor.testing import FakeClock

from .sim import healthy, knee, refuses_above, simulate

H = "h:80"
WALL = 1_700_000_000.0


def _controller(clock: FakeClock, **settings: object) -> HostController:
    wall = lambda: WALL + clock.now  # noqa: E731 - the wall clock moves with the fake one
    return HostController(
        ControlSettings(**settings),  # type: ignore[arg-type]
        clock=clock,
        wall=wall,
        rand=lambda: 0.5,
    )


def _answer(c: HostController, clock: FakeClock, status: int, **headers: str) -> None:
    ticket = c.start(H)
    clock.advance(0.05)
    outcome = Outcome.OK if status < 429 else Outcome.REFUSAL if status in (429, 503) else None
    c.finish(ticket, outcome or Outcome.SERVER_ERROR, status=status, headers=headers)


def test_a_host_never_seen_costs_nothing() -> None:
    c = _controller(FakeClock())
    assert c.verdict(H) is GO
    assert c.limit(H) == 1  # one request first: its answer may ask for a pause
    assert len(c) == 0


def test_a_healthy_host_reaches_its_ceiling_within_a_few_round_trips() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock, per_host=8)
    seen = simulate(c, clock, healthy(0.05), items=200)
    first_full = min(at for at, _, out in seen.sent if out == 8)
    assert first_full <= 3 * 0.05  # 2, 4, 8: two round trips
    assert seen.max_out == 8  # and never above the ceiling
    assert c.report(H).ok == 200


def test_a_host_refusing_above_three_out_settles_under_it() -> None:
    """Host A of the arena, simulated for five minutes: after the first 30 s at most 2% of
    the requests are refused, none is sent with more than 3 out except the rare probe one
    above, and it fetches far more than the fixed rule, which it keeps paused."""
    results = {}
    for adapt in (True, False):
        clock = FakeClock(0.0)
        c = _controller(clock, per_host=8, adapt=adapt)
        seen = simulate(c, clock, refuses_above(3, 0.05), items=100_000, until=300.0)
        results[adapt] = (seen, c.report(H))
    seen, report = results[True]
    assert seen.share(429, after=30.0) <= 0.02
    assert seen.max_out_after(30.0) <= 4
    late = [out for at, status, out in seen.sent if at >= 30.0 and out > 3]
    assert len(late) <= 3  # the probes one above: after 1, 2 and 4 minutes at most
    _, fixed = results[False]
    assert report.ok > 10 * fixed.ok
    assert report.wasted < fixed.wasted
    assert report.ok / 300.0 >= 0.8 * 3 / 0.05  # at least 80% of what 3 at a time can do


def test_a_host_slowing_past_a_knee_settles_near_it() -> None:
    """Host B: latency grows past 4 out. The controller keeps the throughput of the best
    fixed limit (4) without going to the ceiling of 16 a fixed limit would use."""
    rates = {}
    for per_host, adapt in ((4, False), (16, True)):
        clock = FakeClock(0.0)
        c = _controller(clock, per_host=per_host, adapt=adapt)
        seen = simulate(c, clock, knee(4, 0.05), items=20_000)
        rates[adapt] = 20_000 / clock.now
        if adapt:
            late = [out for at, _, out in seen.sent if at > 30.0]
            assert max(late) < 16
            assert sum(late) / len(late) <= 9
    assert rates[True] >= 0.9 * rates[False]


def test_our_own_lag_is_not_taken_for_the_host_slowing_down() -> None:
    """A fast host (1 ms) read by a CPU-bound loop: every request out adds 0.5 ms of our
    own lag to each answer's latency, which looks like a knee at two requests out. Told
    that its loop is bound (``ports.LoopBound``), the controller takes the host to its
    ceiling and keeps it there; not told, it held the host far under it (one nginx host,
    two loops: the limit moved between 7 and 50 of 50)."""
    model = lambda out, now: (0.001 + 0.0005 * out, 200, {})  # noqa: E731
    late = {}
    for bound in (True, False):
        clock = FakeClock(0.0)
        c = _controller(clock, per_host=16)
        c.loop_bound = bound
        seen = simulate(c, clock, model, items=20_000)
        late[bound] = [out for at, _, out in seen.sent if at > 1.0]
    assert min(late[True]) == 16  # the ceiling, and no drain: the window is left alone
    assert sum(late[False]) / len(late[False]) < 12


def test_a_bound_loop_still_backs_off_a_refusing_host() -> None:
    """Our lag hides a host's latency, not its refusals: host A of the arena (429 above 3
    out) read by a bound loop still settles under its limit."""
    clock = FakeClock(0.0)
    c = _controller(clock, per_host=8)
    c.loop_bound = True
    seen = simulate(c, clock, refuses_above(3, 0.05), items=100_000, until=300.0)
    assert seen.share(429, after=30.0) <= 0.02
    assert seen.max_out_after(30.0) <= 4
    assert c.report(H).ok / 300.0 >= 0.8 * 3 / 0.05


def test_retry_after_as_a_date_is_honoured_in_full() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    date = email.utils.formatdate(WALL + 0.05 + 3600, usegmt=True)  # an hour: over 60 s
    _answer(c, clock, 503, **{"Retry-After": date})
    verdict = c.verdict(H)
    assert isinstance(verdict, Wait)
    assert verdict.reason == Reason.PAUSED
    assert verdict.until == pytest.approx(0.05 + 3600, abs=1.0)  # dates have whole seconds
    clock.now = verdict.until - 1.0
    assert isinstance(c.verdict(H), Wait)
    clock.now = verdict.until
    assert isinstance(c.verdict(H), Go)
    (pause,) = c.report(H).pauses
    assert pause.retry_after == date  # the report shows what the site sent
    assert pause.status == 503


def test_a_retry_after_date_is_read_against_the_answers_own_time() -> None:
    """The pause runs from the answer's time on the monotonic clock, so the date is read
    against the wall time of that moment: a process preempted before it reads the wall
    clock (20 ms here, each reading) does not end the pause before the date (a busy CI
    run's retry reached the test site early)."""
    clock = FakeClock(0.0)

    def late_wall() -> float:
        clock.advance(0.02)  # the process lost the core just before this reading
        return WALL + clock.now

    c = HostController(ControlSettings(), clock=clock, wall=late_wall, rand=lambda: 0.5)
    date_wall = float(int(WALL) + 10)  # an HTTP date: whole seconds
    ticket = c.start(H)
    clock.advance(0.05)
    answered = clock.now
    date = email.utils.formatdate(date_wall, usegmt=True)
    c.finish(ticket, Outcome.REFUSAL, status=503, headers={"Retry-After": date})
    verdict = c.verdict(H)
    assert isinstance(verdict, Wait)
    # The monotonic time of the date, as the answer's moment maps it (no reading late):
    assert verdict.until >= answered + (date_wall - (WALL + answered))


def test_retry_after_beyond_the_cap_defers_the_hosts_items() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    _answer(c, clock, 429, **{"Retry-After": str(2 * 86_400)})
    verdict = c.verdict(H)
    assert verdict == Defer(pytest.approx(0.05 + 2 * 86_400), Reason.PARKED)
    assert c.held(H) == (Reason.PARKED, pytest.approx(0.05 + 2 * 86_400))
    assert c.report(H).pauses[0].deferred


def test_a_bare_refusal_pauses_for_our_backoff() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    _answer(c, clock, 429)
    assert c.verdict(H) == Wait(pytest.approx(60.05), Reason.PAUSED)


def test_a_host_that_is_down_opens_its_breaker_then_probes() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    for _ in range(5):
        ticket = c.start(H)
        clock.advance(0.01)
        c.finish(ticket, Outcome.NET_FAIL)
    assert c.limit(H) == 1  # halved on each failure
    verdict = c.verdict(H)
    assert isinstance(verdict, Wait)
    assert verdict.reason == Reason.BREAKER
    clock.now = verdict.until
    assert c.verdict(H) is PROBE
    assert isinstance(c.verdict(H), Wait)  # one probe only
    ticket = c.start(H)
    clock.advance(0.05)
    c.finish(ticket, Outcome.OK, status=200)
    assert isinstance(c.verdict(H), Go)
    assert c.report(H).breaker_openings == 1
    assert c.report(H).net_fails == 5


def test_the_quota_is_paced_to_last_until_the_reset() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    _answer(c, clock, 200, RateLimit='"default";r=10;t=20')
    sends = [c.verdict(H) for _ in range(3)]
    assert [v.after for v in sends if isinstance(v, Go)] == pytest.approx([0.0, 2.0, 4.0])
    clock.advance(10.0)
    _answer(c, clock, 200, **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "8"})
    assert c.verdict(H) == Wait(pytest.approx(clock.now + 8.0), Reason.QUOTA)
    clock.advance(8.0)
    assert isinstance(c.verdict(H), Go)


def test_host_rate_is_a_ceiling() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock, host_rate=4.0)
    waits = [c.verdict(H) for _ in range(4)]
    assert [v.after for v in waits if isinstance(v, Go)] == [0.0, 0.25, 0.5, 0.75]


def test_the_retry_budget_is_counted_in_the_report() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    allowed = 0
    for _ in range(50):
        ticket = c.start(H)
        clock.advance(0.01)
        c.finish(ticket, Outcome.SERVER_ERROR, status=500)
        allowed += c.allow_retry(H)
    report = c.report(H)
    assert allowed < 50 * 0.2 + 4
    assert report.retries_denied == 50 - allowed


def test_fixed_mode_is_todays_behaviour() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock, adapt=False, per_host=6)
    assert c.limit(H) == 6
    _answer(c, clock, 429, **{"Retry-After": "2"})
    first = c.verdict(H)
    assert isinstance(first, Go)
    assert first.after == pytest.approx(2.0)  # paused, then spaced by the slow-down
    second = c.verdict(H)
    assert isinstance(second, Go)
    assert second.after == pytest.approx(2.1)
    for _ in range(10):  # no breaker, whatever happens
        ticket = c.start(H)
        c.finish(ticket, Outcome.NET_FAIL)
    assert c.limit(H) == 6
    assert c.report(H).net_fails == 10
    assert c.allow_retry(H)


def test_reports_count_and_merge() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    for status in (200, 200, 404, 500, 429):
        _answer(c, clock, status)
    ticket = c.start(H)
    c.finish(ticket, Outcome.NET_FAIL)
    report = c.report(H)
    assert (report.ok, report.server_errors, report.refusals, report.net_fails) == (3, 1, 1, 1)
    assert report.requests == 6
    assert report.wasted == 3
    assert dict(report.statuses) == {200: 2, 404: 1, 429: 1, 500: 1}
    assert report.latency_p50 == pytest.approx(0.05, rel=0.1)
    assert report.timeline
    copy = pickle.loads(pickle.dumps(report))  # plain data: it crosses processes
    assert copy == report
    merged = merge_reports({H: report}, {H: copy, "other:80": HostReport("other:80", ok=1)})
    assert merged[H].ok == 6
    assert merged[H].pause_count == 2
    assert merged["other:80"].ok == 1


def test_a_controller_starts_hosts_from_what_another_learnt() -> None:
    """``loops="auto"``'s move: the controllers of the loop processes start each host
    from what the run's loop learnt (``learnt``, ``take_learnt``): its part of the limit
    reached, below its part of the level its site refused, the refusal's age kept, and
    its part of the rate the refusal left it."""
    clock = FakeClock(0.0)
    first = _controller(clock, per_host=16)
    simulate(first, clock, healthy(0.05), items=300)  # H: up to its ceiling
    refusing = "refusing:80"
    simulate(first, clock, refuses_above(3), items=100, host=refusing)
    learnt = pickle.loads(pickle.dumps(first.learnt()))  # it travels to loop processes
    assert learnt[H].concurrency.limit == 16
    assert learnt[H].rate is None  # never refused: no rate of ours
    assert learnt[refusing].concurrency.refused == 4  # its site refused the 4th request out
    refused_rate = learnt[refusing].rate
    assert refused_rate is not None
    clock.advance(10.0)

    whole = _controller(clock, per_host=16)  # each host on one loop: all of it
    whole.take_learnt(learnt)
    assert len(whole) == 0  # nothing made until a host is asked about
    assert (whole.limit(H), whole.limit(refusing), whole.limit("new:80")) == (16, 3, 1)
    half = _controller(clock, per_host=8, parts=2)  # each host spread over two loops
    half.take_learnt(learnt)
    assert (half.limit(H), half.limit(refusing)) == (8, 1)
    # The refused rate too: each loop's part of it, on the same curve back.
    whole_rate, half_rate = whole.learnt()[refusing].rate, half.learnt()[refusing].rate
    assert whole_rate is not None
    assert half_rate is not None
    assert whole_rate.w_max == pytest.approx(refused_rate.w_max)
    assert half_rate.w_max == pytest.approx(max(0.5, refused_rate.w_max / 2))
    assert whole_rate.age == pytest.approx(refused_rate.age)
    # The refused level is probed as it would have been: its age runs from the refusal,
    # not from the move.
    age = learnt[refusing].concurrency.refused_age
    assert whole.learnt()[refusing].concurrency.refused_age == pytest.approx(age)
    clock.advance(5.0)
    assert whole.learnt()[refusing].concurrency.refused_age == pytest.approx(age + 5.0)
    probe_every = learnt[refusing].concurrency.probe_every
    assert whole.learnt()[refusing].concurrency.probe_every == probe_every

    # A host known here keeps what it knows; what is never asked about is dropped.
    known = _controller(clock, per_host=16)
    _answer(known, clock, 200)
    known.take_learnt(learnt)
    assert known.limit(H) == 2
    clock.advance(61.0)
    known.forget_idle()
    assert known.limit(refusing) == 1
    fixed = _controller(clock, adapt=False)
    simulate(fixed, clock, healthy(0.05), items=10)
    assert fixed.learnt() == {}


def test_idle_hosts_are_forgotten_with_their_reports() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock, idle_after=60.0)
    _answer(c, clock, 200)
    c.start("busy:80")  # one out: never forgotten
    refused = "refused:80"
    ticket = c.start(refused)
    c.finish(ticket, Outcome.REFUSAL, status=429, headers={"Retry-After": "1"})
    assert c.forget_idle() == {}  # not quiet for long enough yet
    clock.advance(120.0)
    gone = c.forget_idle()
    assert list(gone) == [H]
    assert gone[H].ok == 1
    assert set(c.reports()) == {"busy:80", refused}  # the refusal is remembered a while
    clock.advance(1800.0)
    assert list(c.forget_idle()) == [refused]


def test_a_host_state_is_small() -> None:
    """What a million-host job holds per host it is working on (measured, not a timing)."""
    clock = FakeClock(0.0)
    c = _controller(clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(500):
            host = f"host{i}.example:443"
            for _ in range(3):
                c.verdict(host)
                ticket = c.start(host)
                clock.advance(0.01)
                c.finish(ticket, Outcome.OK, status=200, nbytes=1000)
        per_host = (tracemalloc.get_traced_memory()[0] - before) / 500
    finally:
        tracemalloc.stop()
    assert per_host < 2500


def test_pauses_survive_a_restart_through_the_journal() -> None:
    clock = FakeClock(0.0)
    c = _controller(clock)
    _answer(c, clock, 429, **{"Retry-After": "30"})
    for _ in range(5):
        ticket = c.start("down:80")
        c.finish(ticket, Outcome.NET_FAIL)
    kept = c.pauses_to_keep()
    assert kept[H] == (Reason.PAUSED, pytest.approx(WALL + 30.05))
    assert kept["down:80"][0] == Reason.BREAKER
    # A new run (a new process: another monotonic clock), 10 s of wall time later.
    clock2 = FakeClock(5000.0)
    c2 = HostController(clock=clock2, wall=lambda: WALL + 10.0 + (clock2.now - 5000.0))
    for host, (reason, until) in kept.items():
        c2.restore_pause(host, reason, until)
    verdict = c2.verdict(H)
    assert verdict == Wait(pytest.approx(5000.0 + 20.05), Reason.PAUSED)
    assert isinstance(c2.verdict("down:80"), Wait)
    clock2.advance(21.0)
    assert isinstance(c2.verdict(H), Go)


def test_settings_are_checked() -> None:
    with pytest.raises(UsageError, match="per_host"):
        ControlSettings(per_host=0)
    assert ControlSettings(per_host=1).gradient.start == 1  # the start fits the ceiling


def test_retries_of_broken_pages_do_not_open_the_breaker() -> None:
    """At a run's end only retries of a few broken pages are left: their 500s were
    counted when the items first failed, so they do not make the error ratio."""
    clock = FakeClock(0.0)
    c = _controller(clock)
    for _ in range(30):
        _answer(c, clock, 200)
    for _ in range(40):
        ticket = c.start(H, retry=True)
        clock.advance(0.05)
        c.finish(ticket, Outcome.SERVER_ERROR, status=500)
    assert c.report(H).breaker_openings == 0
    assert c.held(H) is None
    for _ in range(20):  # first attempts failing: they do
        _answer(c, clock, 500)
    assert c.report(H).breaker_openings == 1


def test_retries_of_stalled_pages_do_not_open_the_breaker() -> None:
    """Two stalled pages retried over and over are two failures toward "5 in a row", not
    one per attempt; five items failing in a row are (a host that is down)."""
    clock = FakeClock(0.0)
    c = _controller(clock)
    _answer(c, clock, 200)
    for retry in (False, True, True, True) * 2:
        ticket = c.start(H, retry=retry)
        clock.advance(0.05)
        c.finish(ticket, Outcome.NET_FAIL)
    assert c.report(H).breaker_openings == 0
    for _ in range(5):
        ticket = c.start(H)
        clock.advance(0.05)
        c.finish(ticket, Outcome.NET_FAIL)
    assert c.report(H).breaker_openings == 1


def test_the_breaker_hook_hears_its_probe_and_its_closing() -> None:
    """With loop processes, the controller tells (``on_breaker``) when a probe goes out
    and when its answer closes the breaker; with one loop there is no hook."""
    clock = FakeClock(0.0)
    c = _controller(clock)
    assert c.on_breaker is None
    heard: list[tuple[str, str]] = []
    c.on_breaker = lambda event, host: heard.append((str(event), host))
    for _ in range(5):
        c.finish(c.start(H), Outcome.NET_FAIL)
    verdict = c.verdict(H)
    assert isinstance(verdict, Wait)
    clock.now = verdict.until
    assert c.verdict(H) is PROBE
    c.finish(c.start(H), Outcome.NET_FAIL)  # the probe failed: a pause, told as such
    assert heard == [("probing", H)]
    verdict = c.verdict(H)
    assert isinstance(verdict, Wait)
    clock.now = verdict.until
    assert c.verdict(H) is PROBE
    c.finish(c.start(H), Outcome.OK, status=200)
    assert heard == [("probing", H), ("probing", H), ("closed", H)]


def test_a_breaker_heard_of_probes_a_lag_after_the_time_told() -> None:
    """Every loop restores the same time: each adds its own random lag, so the first to
    reach it probes and the others can hear of it (``BreakerSettings.follow``)."""
    clock = FakeClock(0.0)
    c = _controller(clock)  # rand 0.5: a lag of 2 * (0.25 + 0.75 * 0.5) = 1.25 s
    c.restore_pause(H, Reason.BREAKER, WALL + 10.0)
    assert c.verdict(H) == Wait(pytest.approx(11.25), Reason.BREAKER)
    c.restore_pause("p:80", Reason.PAUSED, WALL + 10.0)  # a site's pause has no lag
    assert c.verdict("p:80") == Wait(pytest.approx(10.0), Reason.PAUSED)
