"""The per-host breaker as a pure state machine: what opens it, how long, the one probe."""

from __future__ import annotations

import pytest

from conveyor._errors import UsageError
from conveyor._http.breaker import BreakerSettings, HostBreaker, State
from conveyor._http.outcomes import Outcome
from conveyor._http.verdicts import GO, PROBE, Reason, Wait

SETTINGS = BreakerSettings(jitter=0.0)
OK, REFUSAL, ERROR, NET = Outcome.OK, Outcome.REFUSAL, Outcome.SERVER_ERROR, Outcome.NET_FAIL


def _feed(b: HostBreaker, outcomes: list[Outcome], now: float = 0.0) -> bool:
    opened = False
    for outcome in outcomes:
        opened |= b.record(SETTINGS, outcome, sent_at=now, now=now, rand=0.5)
    return opened


def test_five_network_failures_in_a_row_open_it() -> None:
    b = HostBreaker()
    assert not _feed(b, [NET] * 4)
    assert b.verdict(SETTINGS, 0.0) is GO
    assert _feed(b, [NET])
    assert b.verdict(SETTINGS, 1.0) == Wait(30.0, Reason.BREAKER)


@pytest.mark.parametrize("between", [OK, REFUSAL, ERROR])
def test_any_answer_breaks_the_run_of_failures(between: Outcome) -> None:
    b = HostBreaker()
    assert not _feed(b, [NET] * 4 + [between] + [NET] * 4)
    assert b.state == State.CLOSED


def test_half_server_errors_over_twenty_answers_open_it() -> None:
    b = HostBreaker()
    assert not _feed(b, [ERROR] * 9)  # 9 errors in 9: too few answers to judge
    assert not _feed(b, [OK] * 10)  # 9 in 19
    assert _feed(b, [ERROR])  # 10 in 20


def test_the_window_slides() -> None:
    b = HostBreaker()
    assert not _feed(b, [ERROR] * 9 + [OK] * 20)  # the old errors slid out of the window
    assert not _feed(b, [ERROR] * 9)  # 9 in the last 20
    assert _feed(b, [ERROR])


def test_errors_spread_under_half_never_open_it() -> None:
    b = HostBreaker()
    assert not _feed(b, [OK, OK, ERROR] * 100)


def test_refusals_never_open_it() -> None:
    b = HostBreaker()
    assert not _feed(b, [REFUSAL] * 500)
    assert b.state == State.CLOSED


def test_open_then_one_probe_then_closed_on_success() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    assert b.verdict(SETTINGS, 29.9) == Wait(30.0, Reason.BREAKER)
    assert b.verdict(SETTINGS, 30.0) is PROBE
    # Everyone else waits while the probe is out; no second probe.
    assert b.verdict(SETTINGS, 30.1) == Wait(150.0, Reason.BREAKER)
    # A late failure of a request sent before the probe changes nothing.
    assert not b.record(SETTINGS, NET, sent_at=10.0, now=31.0, rand=0.5)
    assert not b.record(SETTINGS, OK, sent_at=30.0, now=31.0, rand=0.5)
    assert b.verdict(SETTINGS, 31.0) is GO


def test_a_failed_probe_opens_it_for_longer_up_to_the_longest() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    now, durations = 0.0, []
    for _ in range(12):
        wait = b.verdict(SETTINGS, now)
        assert isinstance(wait, Wait)
        durations.append(wait.until - now)
        now = wait.until
        assert b.verdict(SETTINGS, now) is PROBE
        assert b.record(SETTINGS, NET, sent_at=now, now=now + 1.0, rand=0.5)
        now += 1.0
    assert durations[:4] == [30.0, 60.0, 90.0, 120.0]
    assert max(durations) == 300.0


def test_the_open_time_is_jittered() -> None:
    settings = BreakerSettings(jitter=0.1)
    low, high = HostBreaker(), HostBreaker()
    for _ in range(5):
        low.record(settings, NET, sent_at=0.0, now=0.0, rand=0.0)
        high.record(settings, NET, sent_at=0.0, now=0.0, rand=0.999)
    assert low.until == pytest.approx(27.0)
    assert high.until == pytest.approx(33.0, abs=0.01)


def test_a_lost_probe_is_replaced() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5)
    assert b.verdict(SETTINGS, 30.0) is PROBE
    assert b.verdict(SETTINGS, 30.0 + SETTINGS.probe_timeout) is PROBE


def test_openings_are_forgiven_after_a_long_time_closed() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    b.verdict(SETTINGS, 30.0)
    b.record(SETTINGS, OK, sent_at=30.0, now=30.5, rand=0.5)
    _feed(b, [NET] * 5, now=100.0)
    assert b.until == 160.0  # the second opening: 60 s
    b.verdict(SETTINGS, 160.0)
    b.record(SETTINGS, OK, sent_at=160.0, now=161.0, rand=0.5)
    assert not b.idle(SETTINGS, 200.0)
    assert b.idle(SETTINGS, 161.0 + SETTINGS.forgive + 1)
    _feed(b, [NET] * 5, now=5000.0)
    assert b.until == 5030.0  # counted from one again


def test_settings_are_checked() -> None:
    with pytest.raises(UsageError, match="failures"):
        BreakerSettings(failures=0)
    with pytest.raises(UsageError, match="ratio"):
        BreakerSettings(ratio=1.5)
    with pytest.raises(UsageError, match="follow"):
        BreakerSettings(follow=-1.0)


# -- the same host's breakers in other loops (``peer_*``, ``restore``) ---------------------


def test_an_opening_heard_never_shortens_a_longer_break() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)  # open until 30
    b.restore(SETTINGS, 20.0, now=1.0)
    assert b.verdict(SETTINGS, 25.0) == Wait(30.0, Reason.BREAKER)
    b.restore(SETTINGS, 40.0, now=2.0)
    assert b.verdict(SETTINGS, 35.0) == Wait(40.0, Reason.BREAKER)


def test_a_probe_heard_is_waited_for_then_replaced() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    b.peer_probing(SETTINGS, 29.0, rand=0.0)  # another loop probes: its verdict is due
    lag = SETTINGS.follow / 4
    assert b.verdict(SETTINGS, 31.0) == Wait(29.0 + SETTINGS.probe_timeout + lag, Reason.BREAKER)
    # Its verdict never came: this breaker probes, as a lost probe is replaced.
    assert b.verdict(SETTINGS, 29.0 + SETTINGS.probe_timeout + lag) is PROBE
    b.peer_probing(SETTINGS, 200.0, rand=0.0)  # probing itself: nothing to wait for
    assert b.state == State.PROBING


def test_a_failed_probe_heard_ends_the_wait_for_it() -> None:
    """The prober's new opening is the verdict: wait for that break, not the timeout."""
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    b.peer_probing(SETTINGS, 30.0, rand=0.5)
    b.restore(SETTINGS, 91.0, now=30.1)
    assert b.verdict(SETTINGS, 60.0) == Wait(91.0, Reason.BREAKER)
    assert b.verdict(SETTINGS, 91.0) is PROBE


def test_a_probe_heard_closing_closes_it_and_keeps_its_openings() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    assert b.peer_closed(10.0)
    assert b.verdict(SETTINGS, 10.0) is GO
    assert not b.peer_closed(11.0)  # closed already
    _feed(b, [NET] * 5, now=20.0)
    assert b.until == 80.0  # the second opening: 60 s, not forgiven


def test_an_opening_heard_long_after_closing_starts_the_count_over() -> None:
    b = HostBreaker()
    _feed(b, [NET] * 5, now=0.0)
    b.verdict(SETTINGS, 30.0)
    b.record(SETTINGS, OK, sent_at=30.0, now=30.5, rand=0.5)
    b.restore(SETTINGS, 5000.0 + 35.0, now=5000.0)
    assert b.openings == 1
    assert b.verdict(SETTINGS, 5035.0) is PROBE
    b.record(SETTINGS, NET, sent_at=5035.0, now=5035.0, rand=0.5)
    assert b.until == 5035.0 + 60.0
