"""The pure pieces: rate parsing, token bucket, retry delays, the root tracker."""

from __future__ import annotations

import pytest

from conveyor import Retry, UsageError
from conveyor._engine.limits import TokenBucket, parse_rate
from conveyor._engine.tracker import NOTHING, Finished, RootTracker
from conveyor._errors import ItemTimeout, WorkerCrashed
from conveyor.testing import FakeClock


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20/s", 20.0), ("600/min", 10.0), ("3600/h", 1.0), ("1.5/sec", 1.5), (7, 7.0), (0.5, 0.5)],
)
def test_parse_rate(text: str | float, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["fast", "10", "10/fortnight", "-1/s", 0, -3, True])
def test_parse_rate_rejects_with_a_hint(bad: object) -> None:
    with pytest.raises(UsageError, match="rate"):
        parse_rate(bad)  # type: ignore[arg-type]


def test_token_bucket_spaces_events_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock)
    delays = [bucket.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    clock.now += 10  # idle for a long time: no credit beyond the burst
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)


def test_token_bucket_burst_and_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1.0])
    bucket.delay_until(clock.now + 30)
    assert bucket.reserve() >= 28.0


def test_retry_counts_and_backoff() -> None:
    policy = Retry.coerce(3)
    assert policy.attempts == 4
    assert policy.should_retry(ValueError(), 1)
    assert not policy.should_retry(ValueError(), 4)
    no_jitter = Retry(attempts=5, backoff=1.0, max_backoff=3.0, jitter=0.0)
    assert [no_jitter.next_delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    assert no_jitter.next_delay(1, retry_after=10.0) == 10.0
    jittery = Retry(attempts=2, backoff=1.0, jitter=0.5)
    assert jittery.next_delay(1, rand=lambda: 0.0) == 0.5
    assert jittery.next_delay(1, rand=lambda: 1.0) == 1.5


def test_retry_on_kinds_types_and_predicates() -> None:
    kinds = Retry(attempts=3, retry_on=("timeout",))
    assert kinds.should_retry(ItemTimeout("late"), 1)
    assert not kinds.should_retry(WorkerCrashed("dead"), 1)
    types = Retry(attempts=3, retry_on=(KeyError,))
    assert types.should_retry(KeyError("k"), 1)
    assert not types.should_retry(ValueError("v"), 1)
    predicate = Retry(attempts=3, retry_on=lambda exc: "again" in str(exc))
    assert predicate.should_retry(RuntimeError("try again"), 2)
    assert not predicate.should_retry(RuntimeError("never"), 1)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_retries_argument_is_checked(bad: object) -> None:
    with pytest.raises(UsageError, match="retries"):
        Retry.coerce(bad)  # type: ignore[arg-type]


def test_tracker_releases_in_input_order_when_ordered() -> None:
    finished = Finished()
    tracker = RootTracker(ordered=True, hold=False, finished=finished)
    for root in range(3):
        tracker.admit(root, f"k{root}")
    assert tracker.end((2,), (), (False, "c"), result=True) == []
    assert finished.take() == ([], [])
    assert tracker.end((0,), (), (False, "a"), result=True) == [(False, "a")]
    assert finished.take() == (["k0"], [])
    assert tracker.end((1,), (), NOTHING) == [(False, "c")]  # filtered
    done, others = finished.take()
    assert done == ["k2"]
    assert [(o.key, o.status) for o in others] == [("k1", "filtered")]
    assert len(tracker) == 0


def test_tracker_waits_for_all_children_of_a_root() -> None:
    finished = Finished()
    tracker = RootTracker(ordered=False, hold=True, finished=finished)
    tracker.admit(0, "k")
    tracker.spawn(0)
    tracker.spawn(0)
    assert tracker.end((0,), (0, 1), (False, "second"), result=True) == []
    assert tracker.end((0,), (), NOTHING) == []  # the flat_map parent itself
    assert len(finished) == 0
    released = tracker.end((0,), (0, 0), (False, "first"), result=True)
    assert released == [(False, "first"), (False, "second")]
    assert finished.take() == (["k"], [])


def test_tracker_batch_ends_all_member_roots_and_marks_failures() -> None:
    finished = Finished()
    tracker = RootTracker(ordered=False, hold=False, finished=finished)
    for root in range(3):
        tracker.admit(root, root)
    released = tracker.end((0, 1, 2), (), (True, "f"), failed="error", attempts=2)
    assert released == [(True, "f")]
    done, others = finished.take()
    assert done == []
    assert sorted((o.key, o.status, o.kind, o.attempts) for o in others) == [
        (0, "failed", "error", 2),
        (1, "failed", "error", 2),
        (2, "failed", "error", 2),
    ]
