"""Progress, driven by real runs: plain lines, the live display, quiet mode, retries."""

from __future__ import annotations

import io
import re
from collections import deque

import pytest
from rich.console import Console

import conveyor as cv
from conveyor._observe import Progress
from conveyor._observe.progress import ProgressView, estimate, plain_line

from .helpers import nap, slow_pipeline

pytestmark = pytest.mark.usefixtures("no_leftovers")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _stats(elapsed: float, admitted: int, total: int | None = 100) -> cv.RunStatistics:
    return cv.RunStatistics(
        elapsed=elapsed,
        total=total,
        admitted=admitted,
        skipped=0,
        results=admitted,
        failed=0,
        filtered=0,
        stages=(),
    )


def test_rate_and_eta_come_from_the_recent_window() -> None:
    window: deque[tuple[float, int]] = deque([(1.0, 10)], maxlen=5)
    rate, eta = estimate(window, _stats(1.0, 10))
    assert rate == pytest.approx(10.0)  # one tick: the average since the start
    assert eta == pytest.approx(9.0)
    window.extend([(2.0, 30), (3.0, 50)])
    rate, eta = estimate(window, _stats(3.0, 50))
    assert rate == pytest.approx(20.0)
    assert eta == pytest.approx(2.5)
    assert estimate(window, _stats(3.0, 50, total=None))[1] is None  # no total, no ETA


def test_eta_counts_items_still_inside_the_pipeline() -> None:
    stage = cv.StageStatistics(
        name="fetch",
        place="loop",
        workers=8,
        started=50,
        succeeded=40,
        failed=0,
        filtered=0,
        retried=0,
        in_flight=8,
        queue_depth=32,
        busy_seconds=1.0,
        abandoned_threads=0,
        p50=None,
        p95=None,
        p99=None,
    )
    stats = cv.RunStatistics(
        elapsed=3.0,
        total=100,
        admitted=80,
        skipped=0,
        results=40,
        failed=0,
        filtered=0,
        stages=(stage,),
    )
    window: deque[tuple[float, int]] = deque([(1.0, 40), (3.0, 80)])
    rate, eta = estimate(window, stats, retrying=2)
    assert rate == pytest.approx(20.0)
    assert eta == pytest.approx((20 + 8 + 32 + 2) / 20.0)


def test_plain_mode_writes_progress_lines_and_a_final_line() -> None:
    stream = io.StringIO()
    progress = Progress(mode="plain", plain_interval=0.0, stream=stream)
    result = slow_pipeline(60).run(observers=(progress,))
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3  # a line per tick of a ~0.6 s run, then the final one
    first = lines[0]
    assert re.match(r"conveyor: \[0:00:00\] \d+/60 \(\d+%\) [\d.,]+/s( ETA 0:00:\d\d)? \|", first)
    assert "ok " in first
    assert "failed " in first
    assert "retrying 0" in first
    assert "nap " in first
    assert "in flight" in first
    assert "queued" in first
    assert "checker" in first
    assert lines[-1] == (
        f"conveyor: done in {result.wall_seconds:.1f} s: 60 items, ok {result.results}, "
        f"failed {result.failed}, filtered 0, skipped 0 ({result.items_per_second:,.1f} items/s)"
    )
    assert result.failed == 9  # 0, 7, …, 56


def test_plain_lines_are_spaced_by_the_interval() -> None:
    stream = io.StringIO()
    progress = Progress(mode="plain", plain_interval=60.0, stream=stream, title="job")
    slow_pipeline(40).run(observers=(progress,))
    # The run is far shorter than the interval: only the final line.
    assert [line.split(":")[0] for line in stream.getvalue().splitlines()] == ["job"]
    assert "done in" in stream.getvalue()


def test_quiet_mode_writes_nothing() -> None:
    stream = io.StringIO()
    console = Console(file=io.StringIO(), force_terminal=True)
    with Progress(mode="quiet", stream=stream, console=console) as progress:
        slow_pipeline(20).run(observers=(progress,))
    assert stream.getvalue() == ""
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_auto_mode_is_live_on_a_terminal_and_plain_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert Progress(console=terminal).mode == "live"
    assert Progress(console=Console(file=io.StringIO())).mode == "plain"
    with pytest.raises(ValueError, match="mode"):
        Progress(mode="loud")  # type: ignore[arg-type]


def test_plain_lines_default_to_the_given_consoles_file() -> None:
    file = io.StringIO()
    progress = Progress(console=Console(file=file), plain_interval=60.0)
    cv.Pipeline(range(5)).map(nap).run(observers=(progress,))
    assert file.getvalue().startswith("conveyor: done in")


def test_live_display_shows_bar_counters_and_stage_rows() -> None:
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=100)
    with Progress(console=console, mode="live", refresh_per_second=20) as progress:
        result = slow_pipeline(60).run(observers=(progress,))
        mid_run = ANSI.sub("", file.getvalue())
    text = ANSI.sub("", file.getvalue())
    assert "━" in mid_run  # the refresh thread drew a bar while the run went on
    assert re.search(r"ETA \d:\d\d:\d\d", mid_run)
    assert "in flight" in mid_run
    assert "queue" in mid_run
    final = text[text.rindex("conveyor") :]
    assert "60/60 100%" in final
    assert "done" in final
    assert f"ok {result.results}" in final
    assert f"failed {result.failed}" in final
    assert "retrying 0" in final
    for stage in ("nap", "square", "checker"):
        assert re.search(rf"^{stage}\s+(loop|threads|inline)\s", final, re.MULTILINE), stage


def test_live_display_renders_without_a_run_and_stops_cleanly() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80, record=True)
    progress = Progress(console=console, mode="live")
    console.print(progress)
    assert "starting" in console.export_text()
    with progress:
        pass
    with progress:  # a second use starts a fresh display
        pass


def test_retrying_counts_items_waiting_to_retry_and_retries_so_far() -> None:
    seen: set[int] = set()

    async def flaky(x: int) -> int:
        if x not in seen:
            seen.add(x)
            raise ConnectionError("try again")
        return x

    stream = io.StringIO()
    progress = Progress(mode="plain", plain_interval=0.0, stream=stream)
    retry = cv.Retry(attempts=2, backoff=0.3, jitter=0.0)
    result = cv.Pipeline(range(10)).map(flaky, retries=retry).run(observers=(progress,))
    assert result.results == 10
    assert progress.retries == 10
    assert progress.retrying == 0  # every retry ran again
    # While the 0.3 s backoff was running, ticks reported the items waiting to retry.
    assert "retrying 10" in stream.getvalue()


def test_plain_line_before_the_first_tick_and_without_a_total() -> None:
    assert plain_line("c", ProgressView(), 0) == "c: starting"
    view = ProgressView(_stats(2.0, 1234, total=None), 617.0, None)
    assert plain_line("c", view, 3) == (
        "c: [0:00:02] 1,234 items 617/s | ok 1,234 failed 0 retrying 3 retries 0"
    )
