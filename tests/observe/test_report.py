"""RunReport, driven by real runs: totals, records from threads, the summary and the HTML."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest
from rich.console import Console

import conveyor as cv
from conveyor._observe import RunReport
from conveyor._observe.report import OTHER_HOSTS

from .helpers import StrictHTML, nap, slow_pipeline

pytestmark = pytest.mark.usefixtures("no_leftovers")


@pytest.fixture(scope="module")
def ran() -> tuple[RunReport, cv.RunResult]:
    """One ~0.6 s run with failures, plus HTTP-like records, shared by the read-only tests."""
    report = RunReport(bucket_seconds=0.25)
    result = slow_pipeline(60).run(observers=(report,))
    for i in range(60):
        status = None if i % 10 == 0 else 503 if i % 4 == 0 else 200
        host = "flaky.example" if i % 4 == 0 else f"ok{i % 3}.example"
        report.add_record(
            status=status, host=host, error_kind="connect" if status is None else None
        )
    return report, result


def test_totals_match_the_run_result(ran: tuple[RunReport, cv.RunResult]) -> None:
    report, result = ran
    data = report.data()
    assert data.stages == ("nap", "square", "checker")
    assert data.total == 60
    assert report.finished == pytest.approx(result.results + result.failed + result.filtered)
    assert report.failures_by_kind == result.failures_by_kind == {"error": 9}
    # Every successful attempt of every stage is in its latency histogram.
    for stage in result.stages:
        assert sum(n for _, _, n in data.latency[stage.name]) == stage.succeeded
    # nap sleeps 20 ms, so no call of it took less: every bar it has reaches past 20 ms
    # (how far past depends on how busy the machine is, so that is not checked).
    highs = [high for _, high, n in data.latency["nap"] if n]
    assert highs
    assert min(highs) >= 0.02
    # Quarter-second buckets from the start to the end of a ~0.6 s run, on one time axis.
    starts = [t for t, _ in data.throughput]
    assert starts == [i * 0.25 for i in range(len(starts))]
    assert starts[-1] < result.wall_seconds <= starts[-1] + 0.25
    assert [t for t, _ in data.failures_over_time] == starts
    assert all(rate >= 0 for _, rate in data.throughput + data.failures_over_time)


def test_records_give_status_codes_and_hosts_with_most_errors(
    ran: tuple[RunReport, cv.RunResult],
) -> None:
    data = ran[0].data()
    assert data.records == 60
    assert data.status_codes == {"200": 42, "503": 12, "no response": 6}
    worst = data.hosts[0]
    assert (worst.host, worst.requests) == ("flaky.example", 15)
    assert worst.errors == 12 + 3  # its 503s and its connect errors (i = 0, 20, 40)
    assert sum(h.errors for h in data.hosts) == 15 + 3  # and connect errors at i = 10, 30, 50
    assert all(h.errors for h in data.hosts)


def test_add_record_is_thread_safe_and_hosts_are_bounded() -> None:
    report = RunReport(max_hosts=50, top_hosts=5)

    def hammer(worker: int) -> None:
        for i in range(2000):
            report.add_record(status=500 if i % 2 else 200, host=f"h{i % 100}", error_kind=None)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = report.data()
    assert data.records == 16_000
    assert data.status_codes == {"200": 8000, "500": 8000}
    assert len(data.hosts) == 5
    assert data.hosts[0].host == OTHER_HOSTS  # half the hosts did not fit, lumped together
    assert data.hosts_dropped == 8000
    assert data.hosts[0].requests == 8000


def test_summary_renders_stages_percentiles_failures_and_hosts(
    ran: tuple[RunReport, cv.RunResult],
) -> None:
    report, result = ran
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(report.summary_table(result))
    text = console.export_text()
    for word in ("nap", "square", "checker", "p50", "p95", "p99", "items/s", "loop", "threads"):
        assert word in text, word
    assert re.search(r"error\s+9\s+100%", text)  # failures by kind
    assert re.search(r"503\s+12", text)  # status codes
    assert re.search(r"flaky\.example\s+15\s+15\s+100%", text)  # hosts with most errors
    assert f"{result.items_per_second:,.1f}" in text


def test_summary_leaves_out_what_did_not_happen() -> None:
    report = RunReport()
    result = cv.Pipeline(range(5)).map(nap).run(observers=(report,))
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(report.summary_table(result))
    text = console.export_text()
    assert "Failures by kind" not in text
    assert "Status codes" not in text
    assert "Hosts with most errors" not in text
    assert "nap" in text


def _parse(path: Path) -> tuple[str, StrictHTML]:
    text = path.read_text(encoding="utf-8")
    parser = StrictHTML()
    assert parser.check(text) == []
    return text, parser


def test_html_report_is_valid_self_contained_and_has_its_charts(
    ran: tuple[RunReport, cv.RunResult], tmp_path: Path
) -> None:
    report, result = ran
    path = tmp_path / "report.html"
    report.write_html(path, result, title="Nightly <crawl> & co")
    text, parser = _parse(path)
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Nightly &lt;crawl&gt; &amp; co</title>" in text
    # Throughput, one latency histogram per stage, status codes and per-host errors.
    assert parser.tags.count("svg") == 1 + 3 + 1 + 1
    for label in ("Throughput over time", "Latency histogram: nap", "Status codes", "Hosts"):
        assert label in text
    assert "flaky.example" in text
    assert "no sevens: 7" in text
    # Readable offline: nothing to load, nothing to run.
    assert "<script" not in text
    assert "<link" not in text
    assert "http" not in text
    assert not [value for name, value in parser.attrs if name in ("src", "href")]
    assert not list(tmp_path.glob(".*partial"))


def test_html_report_of_a_run_without_records_still_has_every_chart(tmp_path: Path) -> None:
    report = RunReport()
    result = cv.Pipeline(range(3)).map(nap).run(observers=(report,))
    path = tmp_path / "r.html"
    report.write_html(path, result)
    text, parser = _parse(path)
    assert parser.tags.count("svg") == 4
    assert "no HTTP requests recorded" in text
    assert "No failures." in text
    assert "<title>conveyor report</title>" in text
