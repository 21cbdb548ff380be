"""The per-host controller's parts, each alone, on an injected clock: classification, the
gradient, the cubic rate, pauses, the retry budget, quota headers."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor._errors import UsageError
from conveyor._http.budget import BudgetSettings, RetryBudget
from conveyor._http.cubic import CubicRate
from conveyor._http.gradient import Gradient, GradientSettings
from conveyor._http.outcomes import (
    Outcome,
    classify_failure,
    classify_status,
    refusal_statuses,
)
from conveyor._http.pauses import HostPause, PauseSettings
from conveyor._http.quota import Quota, quota_interval, read_quota
from conveyor.testing import FakeClock

# -- outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Outcome.OK),
        (301, Outcome.OK),
        (404, Outcome.OK),  # the host answered: the page is what it is
        (403, Outcome.OK),
        (429, Outcome.REFUSAL),
        (503, Outcome.REFUSAL),
        (500, Outcome.SERVER_ERROR),
        (502, Outcome.SERVER_ERROR),
        (504, Outcome.SERVER_ERROR),
        (999, Outcome.OK),
    ],
)
def test_statuses_are_classified(status: int, expected: Outcome) -> None:
    assert classify_status(status) == expected


def test_403_is_a_refusal_only_when_asked() -> None:
    assert classify_status(403, refusal_statuses(refuse_403=True)) == Outcome.REFUSAL
    assert classify_status(403, refusal_statuses()) == Outcome.OK


@pytest.mark.parametrize("kind", ["dns", "connect", "tls", "reset", "timeout"])
def test_network_failures(kind: str) -> None:
    assert classify_failure(kind) == Outcome.NET_FAIL


@pytest.mark.parametrize("kind", ["too-large", "blocked", "bad-url", "too-many-redirects"])
def test_our_own_refusals_say_nothing_of_the_host(kind: str) -> None:
    assert classify_failure(kind) is None


# -- gradient ---------------------------------------------------------------------------

SETTINGS = GradientSettings(start=2, ceiling=8)


def _round_trip(
    g: Gradient, latency: float, now: float, settings: GradientSettings = SETTINGS
) -> None:
    """One round trip at the current limit: that many answers, each with the host full."""
    out = g.allowed(settings, now)
    for _ in range(out):
        g.ok(settings, latency, out, now)


def test_a_healthy_host_reaches_the_ceiling_in_two_round_trips() -> None:
    g = Gradient(SETTINGS)
    assert g.allowed(SETTINGS, 0.0) == 2
    _round_trip(g, 0.05, 0.0)
    assert g.allowed(SETTINGS, 0.0) == 4
    _round_trip(g, 0.05, 0.1)
    assert g.allowed(SETTINGS, 0.1) == 8
    _round_trip(g, 0.05, 0.2)
    assert g.allowed(SETTINGS, 0.2) == 8  # the ceiling is never passed


def test_a_host_we_use_little_does_not_grow() -> None:
    g = Gradient(SETTINGS)
    for i in range(50):
        g.ok(SETTINGS, 0.05, 1, float(i))  # one request out at a time
    # One out is half of 2, so it may grow to 3 once; one out is under half of 3: no more.
    assert g.allowed(SETTINGS, 50.0) == 3


def test_rising_latency_shrinks_the_limit_to_where_it_holds() -> None:
    """A host whose latency grows past 4 requests out (a knee): the limit settles near it,
    far below the ceiling of 16."""
    settings = GradientSettings(start=2, ceiling=16)
    g = Gradient(settings)
    now = 0.0
    for _ in range(200):
        out = g.allowed(settings, now)
        latency = 0.05 * max(1.0, out / 4)
        _round_trip(g, latency, now, settings)
        now += latency
    assert 4 <= g.allowed(settings, now) <= 9


def test_a_drop_halves_once_per_round_trip() -> None:
    g = Gradient(SETTINGS)
    _round_trip(g, 0.05, 0.0)
    _round_trip(g, 0.05, 0.1)
    assert g.allowed(SETTINGS, 0.2) == 8
    assert g.drop(sent_at=0.15, now=0.2)
    assert g.allowed(SETTINGS, 0.2) == 4
    # Three more failures of requests that were out before the drop: the same event.
    assert not any(g.drop(sent_at=0.18, now=0.21) for _ in range(3))
    assert g.allowed(SETTINGS, 0.21) == 4
    assert g.drop(sent_at=0.25, now=0.3)  # a request sent after it: a new event
    assert g.allowed(SETTINGS, 0.3) == 2
    g.drop(sent_at=0.4, now=0.5)
    g.drop(sent_at=0.6, now=0.7)
    assert g.allowed(SETTINGS, 0.7) == 1  # never below one


def test_a_refused_level_is_remembered_and_probed_slowly() -> None:
    settings = GradientSettings(start=2, ceiling=8, probe_every=60.0)
    g = Gradient(settings)
    for t in range(3):
        _round_trip(g, 0.05, t * 0.1, settings)
    g.drop(sent_at=0.3, now=0.35)
    g.refused_level(settings, 4, now=0.35)  # refused with 4 out: 3 is the most it takes
    for t in range(100):  # a minute of healthy answers does not climb back into it
        _round_trip(g, 0.05, 0.4 + t * 0.5, settings)
    assert g.allowed(settings, 50.0) == 3
    assert g.ceiling(settings, 61.0) == 4  # one probe above it after a quiet minute
    assert g.ceiling(settings, 121.0) == 5
    assert g.ceiling(settings, 400.0) == 8
    assert g.refused == 0  # probed back to the ceiling: forgotten


def test_a_busy_host_is_drained_until_one_request_leaves_lightly_loaded() -> None:
    """Every ``light_every`` answers with the host full, the limit halves until a request
    leaves with at most half of it out (which shows the baseline again)."""
    settings = GradientSettings(start=1, ceiling=8, light_every=5)
    g = Gradient(settings)
    for i in range(4):
        g.ok(settings, 0.05, 12, float(i))  # the host full: no answer is lightly loaded
    assert g.allowed(settings, 4.0) == 5
    g.ok(settings, 0.05, 12, 4.0)
    assert g.allowed(settings, 4.0) == 3  # the fifth: halved
    g.sent(settings, 5)  # over half of 6 out: still draining
    assert g.allowed(settings, 4.0) == 3
    g.sent(settings, 2)  # a lightly loaded one left: the limit is back
    assert g.allowed(settings, 4.0) == 6


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["ok", "ok", "ok", "ok", "drop", "sent", "sent", "refused"]),
        st.integers(min_value=1, max_value=12),  # requests out
        st.floats(min_value=0.001, max_value=2.0),  # latency
        st.floats(min_value=0.0, max_value=30.0),  # time passing
    ),
    max_size=300,
)


@given(events=_EVENTS)
@settings(max_examples=150, deadline=None)
def test_the_kept_limit_and_window_are_what_they_would_be_worked_out(
    events: list[tuple[str, int, float, float]],
) -> None:
    """``allowed`` is kept as the limit changes rather than worked out per request, and
    the window's p50 from a sorted copy: any sequence of events gives what the rule says."""
    settings = GradientSettings(start=1, ceiling=8, light_every=5, probe_every=7.0)
    g = Gradient(settings)
    now = 0.0
    for kind, out, latency, later in events:
        now += later
        if kind == "ok":
            g.ok(settings, latency, out, now)
        elif kind == "drop":
            g.drop(sent_at=now - latency, now=now)
        elif kind == "sent":
            g.sent(settings, out)
        else:
            g.refused_level(settings, out, now)
        rule = min(int(g.limit), g.ceiling(settings, now))
        if g.heavy >= settings.light_every:
            rule //= 2
        assert g.allowed(settings, now) == max(1, rule)
        window = sorted(g._ring)
        assert g.short() == (window[len(window) // 2] if window else 0.0)


# -- cubic rate -------------------------------------------------------------------------


def _measure(cubic: CubicRate, rate: float, start: float, seconds: float) -> float:
    """Answers at ``rate`` per second for ``seconds``; returns the time after."""
    now = start
    for _ in range(int(rate * seconds)):
        now += 1.0 / rate
        cubic.answered(now)
    return now


def test_no_limit_until_a_refusal() -> None:
    cubic = CubicRate(0.0)
    _measure(cubic, 20.0, 0.0, 5.0)
    assert cubic.rate(5.0) is None
    assert cubic.measured == pytest.approx(20.0, rel=0.1)


def test_the_cubic_drops_recovers_fast_and_probes_slowly() -> None:
    cubic = CubicRate(0.0)
    now = _measure(cubic, 20.0, 0.0, 5.0)
    cubic.refused(now, beta=0.7, recover=60.0)
    assert cubic.w_max == pytest.approx(20.0, rel=0.1)
    w = cubic.w_max
    assert cubic.rate(now) == pytest.approx(0.7 * w)
    cubic.measured = w  # keep the measured rate up: the 2x cap is tested apart
    half = cubic.rate(now + 30.0)
    assert half is not None
    assert half > 0.95 * w  # most of the way back in half the time
    assert cubic.rate(now + 60.0) == pytest.approx(w)  # back at the refused rate at K
    above = cubic.rate(now + 90.0)
    assert above is not None
    assert w < above < 1.05 * w  # and slowly above it


def test_the_rate_never_passes_twice_the_measured_rate() -> None:
    cubic = CubicRate(0.0)
    now = _measure(cubic, 20.0, 0.0, 5.0)
    cubic.refused(now, beta=0.7, recover=60.0)
    cubic.measured = 3.0  # we were sending little lately
    assert cubic.rate(now + 200.0) == pytest.approx(6.0)


def test_the_refusal_is_forgiven() -> None:
    cubic = CubicRate(0.0)
    now = _measure(cubic, 20.0, 0.0, 5.0)
    cubic.refused(now, beta=0.7, recover=60.0)
    assert cubic.rate(now + 100.0, forgive=1800.0) is not None
    assert cubic.rate(now + 1801.0, forgive=1800.0) is None
    assert not cubic.w_max


# -- pauses -----------------------------------------------------------------------------

PAUSES = PauseSettings(base=60.0, longest=3600.0, forgive=1800.0, jitter=0.1)


def test_retry_after_is_honoured_in_full_up_to_the_cap() -> None:
    pause = HostPause()
    assert pause.refusal(PAUSES, now=10.0, sent_at=9.0, retry_after=7200.0, rand=0.5) == 7200.0
    assert pause.remaining(10.0) == 7200.0  # two hours: far over max_retry_after, honoured
    assert not pause.parked


def test_retry_after_beyond_the_cap_parks_the_host() -> None:
    pause = HostPause()
    seconds = 3 * 86_400.0
    assert pause.refusal(PAUSES, now=0.0, sent_at=0.0, retry_after=seconds, rand=0.5) == seconds
    assert pause.parked
    assert pause.until == seconds


def test_headerless_refusals_double_with_jitter_and_are_forgiven() -> None:
    pause = HostPause()
    first = pause.refusal(PAUSES, now=0.0, sent_at=0.0, retry_after=None, rand=0.5)
    assert first == 60.0
    # Refusals of requests already out when the pause began: one event, no doubling.
    assert pause.refusal(PAUSES, now=0.1, sent_at=-0.5, retry_after=None, rand=0.5) is None
    second = pause.refusal(PAUSES, now=61.0, sent_at=60.5, retry_after=None, rand=0.5)
    assert second == 120.0
    third = pause.refusal(PAUSES, now=200.0, sent_at=190.0, retry_after=None, rand=1.0)
    assert third == pytest.approx(240.0 * 1.1)  # the jitter's upper end
    low = pause.refusal(PAUSES, now=1000.0, sent_at=999.0, retry_after=None, rand=0.0)
    assert low == pytest.approx(480.0 * 0.9)
    # Half an hour with no refusal: the doubling starts over.
    assert pause.refusal(PAUSES, now=4000.0, sent_at=3999.0, retry_after=None, rand=0.5) == 60.0


def test_a_shorter_retry_after_does_not_cut_a_pause_short() -> None:
    pause = HostPause()
    pause.refusal(PAUSES, now=0.0, sent_at=0.0, retry_after=30.0, rand=0.5)
    assert pause.refusal(PAUSES, now=1.0, sent_at=0.5, retry_after=5.0, rand=0.5) is None
    assert pause.until == 30.0
    assert pause.refusal(PAUSES, now=1.0, sent_at=0.5, retry_after=0.0, rand=0.5) is None


def test_pause_settings_name_the_bad_one() -> None:
    with pytest.raises(UsageError, match="cap"):
        PauseSettings(cap=0)
    with pytest.raises(UsageError, match="jitter"):
        PauseSettings(jitter=2)


# -- retry budget -----------------------------------------------------------------------


def test_retries_cannot_multiply_the_load() -> None:
    settings = BudgetSettings(ratio=0.2, floor=3, horizon=10.0)
    clock = FakeClock(0.0)
    budget = RetryBudget(clock())
    allowed = 0
    for _ in range(100):  # 100 first attempts in a second, each failing and asking a retry
        clock.advance(0.01)
        budget.first_attempt(settings, clock())
        allowed += budget.try_retry(settings, clock())
    assert 20 <= allowed <= 23  # 20% plus the floor, not 100 (nor 300 with retries=3)


def test_the_budget_refills_as_time_passes() -> None:
    settings = BudgetSettings(ratio=0.0, floor=2, horizon=10.0)
    budget = RetryBudget(0.0)
    assert budget.try_retry(settings, 0.0)
    assert budget.try_retry(settings, 0.0)
    assert not budget.try_retry(settings, 0.0)  # the floor is spent
    assert budget.try_retry(settings, 30.0)  # retries decayed away


# -- quota headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit": '"default";r=50;t=30'}, Quota(50, 30.0)),
        ({"RateLimit": '"burst";r=5;t=1, "day";r=100;t=3600'}, Quota(100, 3600.0)),
        ({"RateLimit": "limit=100, remaining=20, reset=10"}, Quota(20, 10.0)),
        ({"RateLimit-Remaining": "7", "RateLimit-Reset": "14"}, Quota(7, 14.0)),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}, Quota(0, 5.0)),
        ({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "1000000060"}, Quota(10, 60.0)),
        ({"RateLimit": "?", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "9"}, Quota(3, 9)),
        ({"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "5"}, None),
        ({"X-RateLimit-Remaining": "5"}, None),
        ({"RateLimit": '"default";r=5'}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_quota_headers_in_every_form(headers: dict[str, str], expected: Quota | None) -> None:
    assert read_quota(headers, wall=1_000_000_000.0) == expected


def test_a_reset_given_as_a_date() -> None:
    wall = 1_700_000_000.0
    date = email.utils.formatdate(wall + 120, usegmt=True)
    quota = read_quota({"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": date}, wall=wall)
    assert quota is not None
    assert quota.remaining == 4
    assert quota.reset == pytest.approx(120.0, abs=0.01)  # just after the date


def test_the_quota_lasts_until_the_reset() -> None:
    assert quota_interval(Quota(10, 30.0), in_flight=0) == 3.0
    assert quota_interval(Quota(10, 30.0), in_flight=4) == 5.0  # those out are spent
    assert quota_interval(Quota(2, 30.0), in_flight=2) == float("inf")
    assert quota_interval(Quota(0, 0.0), in_flight=0) is None
