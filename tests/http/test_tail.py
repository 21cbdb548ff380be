"""The tail policy, the stall watchdog and the minimum transfer rate: pure arithmetic."""

from __future__ import annotations

import math

import pytest

from conveyor._engine.stall import StallWatch, oldest_in_flight
from conveyor._errors import UsageError
from conveyor._http.host_report import HostTally, Step, quantile, thin
from conveyor._http.tail import (
    HostTail,
    TailSettings,
    TransferRate,
    forecast,
    tail_deferrals,
)
from conveyor._http.verdicts import Reason

FINISH_99 = TailSettings(finish_at=0.99)


def test_finish_at_defers_hosts_that_would_double_the_run() -> None:
    hosts = {
        "fast:80": HostTail(queued=50, rate=10.0),  # 5 s to go: wait for it
        "slow:80": HostTail(queued=500, rate=2.0),  # 250 s: over the 100 s so far
        "stuck:80": HostTail(queued=0, in_flight=3, oldest=90.0, p95=0.2),  # stragglers
        "unknown:80": HostTail(queued=4),  # no answer yet: no forecast
    }
    deferred = tail_deferrals(hosts, FINISH_99, elapsed=100.0, ended=9_900, total=10_000)
    assert deferred == {"slow:80": Reason.TAIL, "stuck:80": Reason.TAIL, "unknown:80": Reason.TAIL}


def test_finish_at_waits_for_its_share() -> None:
    hosts = {"slow:80": HostTail(queued=500, rate=2.0)}
    assert tail_deferrals(hosts, FINISH_99, elapsed=100.0, ended=9_899, total=10_000) == {}
    assert tail_deferrals(hosts, FINISH_99, elapsed=100.0, ended=9_900, total=None) == {}


def test_a_request_out_is_a_straggler_only_far_past_its_hosts_p95() -> None:
    settings = TailSettings(straggle=10.0, min_straggle=30.0)
    assert forecast(HostTail(0, in_flight=1, oldest=25.0, p95=0.2), settings) == 0.0
    assert forecast(HostTail(0, in_flight=1, oldest=31.0, p95=0.2), settings) == math.inf
    assert forecast(HostTail(0, in_flight=1, oldest=31.0, p95=5.0), settings) == 0.0
    assert forecast(HostTail(10, rate=2.0, held=Reason.PAUSED, held_for=20.0), settings) == 25.0


def test_the_deadline_defers_everything_left() -> None:
    hosts = {"a:80": HostTail(queued=1, rate=100.0), "b:80": HostTail(queued=0, in_flight=1)}
    settings = TailSettings(deadline=60.0)
    assert tail_deferrals(hosts, settings, elapsed=59.0, ended=0, total=None) == {}
    assert tail_deferrals(hosts, settings, elapsed=60.0, ended=0, total=None) == {
        "a:80": Reason.DEADLINE,
        "b:80": Reason.DEADLINE,
    }


def test_a_run_waiting_on_paused_hosts_alone_defers_the_long_waits() -> None:
    settings = TailSettings(patience=60.0)
    hosts = {
        "e:80": HostTail(queued=5, rate=10.0, held=Reason.PAUSED, held_for=30.0),
        "c:80": HostTail(queued=9, rate=10.0, held=Reason.BREAKER, held_for=200.0),
    }
    # 30 s is worth waiting for; 200 s, in a run of 100 s, is not.
    assert tail_deferrals(hosts, settings, elapsed=100.0, ended=0, total=None) == {
        "c:80": Reason.BREAKER
    }
    # The same waits in a run of 300 s so far: the site's pause is waited out; the
    # breaker's is not (beyond patience: its probes keep failing, its openings grow).
    assert tail_deferrals(hosts, settings, elapsed=300.0, ended=0, total=None) == {
        "c:80": Reason.BREAKER
    }
    short = {"c:80": HostTail(queued=9, rate=10.0, held=Reason.BREAKER, held_for=45.0)}
    assert tail_deferrals(short, settings, elapsed=300.0, ended=0, total=None) == {}
    # While some host still works, nobody waits alone: nothing is deferred.
    busy = {**hosts, "f:80": HostTail(queued=100, rate=50.0)}
    assert tail_deferrals(busy, settings, elapsed=100.0, ended=0, total=None) == {}


def test_tail_settings_are_checked() -> None:
    with pytest.raises(UsageError, match="finish_at"):
        TailSettings(finish_at=99)
    with pytest.raises(UsageError, match="deadline"):
        TailSettings(deadline=0)


def test_the_stall_watch_counts_only_time_not_spent_waiting_politely() -> None:
    watch = StallWatch(0.0, after=60.0)
    assert watch.check(30.0, polite=False) is None
    assert watch.check(100.0, polite=True) is None  # 70 s waiting on paused hosts
    assert watch.check(129.0, polite=False) is None  # 59 s stalled
    assert watch.check(131.0, polite=False) == 61.0
    assert watch.check(140.0, polite=False) is None  # reported once...
    assert watch.check(200.0, polite=False) == 130.0  # ...then again after another 60 s
    watch.progress(201.0)
    assert watch.check(250.0, polite=False) is None


def test_oldest_in_flight() -> None:
    started = {f"item{i}": float(i) for i in range(10)}
    assert oldest_in_flight(started, now=20.0, n=3) == [
        ("item0", 20.0),
        ("item1", 19.0),
        ("item2", 18.0),
    ]


def test_a_trickling_body_is_too_slow() -> None:
    rate = TransferRate(0.0)
    for second in range(1, 29):
        rate.feed(100)  # 100 bytes a second: under 1 KiB/s
        assert not rate.too_slow(float(second))  # not judged before a whole window
    rate.feed(100)
    assert rate.too_slow(30.0)


def test_a_fast_body_with_a_pause_is_not() -> None:
    rate = TransferRate(0.0)
    rate.feed(64 * 1024)
    assert not rate.too_slow(10.0)
    assert not rate.too_slow(31.0)  # 64 KiB over 31 s: over 1 KiB/s on average
    assert rate.too_slow(62.0, min_rate=1024)  # nothing in the next window


def test_quantiles_of_the_latency_histogram() -> None:
    tally = HostTally()
    for ms in [10] * 50 + [100] * 45 + [1000] * 5:
        tally.answer(0, 200, ms / 1000, 0)
    histogram = tally.report("h:80").latency
    assert quantile(histogram, 0.5) == pytest.approx(0.010, rel=0.1)
    assert quantile(histogram, 0.95) == pytest.approx(0.100, rel=0.1)
    assert quantile((), 0.5) is None


def test_the_timeline_stays_bounded() -> None:
    tally = HostTally()
    for i in range(10_000):
        tally.step(float(i), 1 + i % 7, None)
    steps = tally.report("h:80").timeline
    assert len(steps) <= 64
    assert steps[0].at == 0.0
    assert steps[-1].at >= 9_000.0
    assert thin([Step(float(i), 1, None) for i in range(100)], 10)[-1].at == 99.0
