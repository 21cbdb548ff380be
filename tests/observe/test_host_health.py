"""Host health in the summary, the live line and the report, from real ``HostReport``s: the
per-host controller run on an injected clock against answers a site could give."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.console import Console

from conveyor._engine.stats import RunStatistics, StageStatistics
from conveyor._http.controller import ControlSettings, HostController
from conveyor._http.host_report import HostReport
from conveyor._http.outcomes import Outcome
from conveyor._http.stats import FetchReport
from conveyor._observe.health import held_hosts
from conveyor._observe.host_page import health_html, timeline_chart
from conveyor._observe.host_rows import OTHERS, ranked_rows
from conveyor._observe.host_tables import health_tables
from conveyor._observe.progress import ProgressView, held_text, plain_line, render, stall_text
from conveyor.testing.clock import FakeClock

from .helpers import StrictHTML

GOOD, REFUSING, DOWN = "good.example:80", "busy.example:80", "down.example:80"


def controller_reports(extra_hosts: int = 0) -> dict[str, HostReport]:
    """Three hosts as the controller saw them: one healthy, one that refuses above three
    at once with ``Retry-After: 5``, one whose connections fail (its breaker opens),
    and ``extra_hosts`` healthy ones with a few requests each."""
    clock = FakeClock()
    control = HostController(
        ControlSettings(per_host=8), clock=clock, wall=lambda: 1_700_000_000.0, rand=lambda: 0.5
    )
    for _ in range(40):
        ticket = control.start(GOOD)
        clock.advance(0.02)
        control.finish(ticket, Outcome.OK, status=200, nbytes=2_000)
    for round_ in range(6):
        tickets = [control.start(REFUSING) for _ in range(5)]
        clock.advance(0.05)
        for i, ticket in enumerate(tickets):
            if i < 3:
                control.finish(ticket, Outcome.OK, status=200, nbytes=1_000)
            else:
                control.finish(ticket, Outcome.REFUSAL, status=429, headers={"Retry-After": "5"})
        clock.advance(6.0 + round_)
    for _ in range(6):
        ticket = control.start(DOWN)
        clock.advance(0.01)
        control.finish(ticket, Outcome.NET_FAIL)
    control.deferred(DOWN, 4)
    for n in range(extra_hosts):
        ticket = control.start(f"h{n}.example:80")
        clock.advance(0.01)
        control.finish(ticket, Outcome.OK, status=200, nbytes=100)
    return control.reports()


def _text(tables: list[object]) -> str:
    console = Console(record=True, width=200)
    for table in tables:
        console.print(table)
    return console.export_text()


def test_the_summary_names_the_held_hosts_and_the_wasteful_ones() -> None:
    hosts = controller_reports()
    assert hosts[REFUSING].refusals == 12
    assert hosts[DOWN].net_fails == 6
    records = {GOOD: 40, REFUSING: 18, DOWN: 0}
    text = _text(health_tables(hosts, {"breaker": 4}, records))
    assert "Deferred to the next run" in text
    assert "host failing (breaker open)" in text
    assert " 4" in text
    held = text.split("Hosts held back", 1)[1].split("Hosts with most wasted", 1)[0]
    assert REFUSING in held
    assert "last Retry-After: 5" in held
    assert DOWN in held
    assert "breaker opened 1x" in held
    assert GOOD not in held
    wasted = text.split("Hosts with most wasted requests", 1)[1]
    lines = {line.split()[0]: line.split() for line in wasted.splitlines() if ".example" in line}
    assert list(lines) == [REFUSING, DOWN]  # most wasted first; the healthy host not listed
    # requests, records, refused, 5xx, net fail, wasted, p50, p95
    assert lines[REFUSING][1:7] == ["30", "18", "12", "0", "0", "12"]
    assert lines[DOWN][1:7] == ["6", "0", "0", "0", "6", "6"]
    assert lines[DOWN][7:] == ["-", "-"]  # no ok answer: no latency


def test_nothing_to_say_gives_no_table() -> None:
    assert health_tables({}, {}) == []
    healthy = {GOOD: controller_reports()[GOOD]}
    assert health_tables(healthy, {}) == []  # no waste, never held, nothing deferred


def test_rows_are_bounded_and_add_up_to_the_totals() -> None:
    hosts = controller_reports(extra_hosts=30)
    rows = ranked_rows(hosts, top=6)
    assert len(rows) == 7
    assert rows[-1].host == OTHERS
    assert [r.host for r in rows[:2]] == [REFUSING, DOWN]  # the wasteful ones first
    assert rows[2].host == GOOD  # then the busiest
    assert rows[-1].hosts == len(hosts) - 6
    for name in ("requests", "ok", "refusals", "net_fails", "bytes", "deferred"):
        assert sum(getattr(r, name) for r in rows) == sum(
            getattr(h, name) for h in hosts.values()
        ), name


def test_the_report_section_shows_every_figure_of_a_host() -> None:
    hosts = controller_reports()
    page = health_html(hosts, {"paused-beyond-cap": 2}, {GOOD: 40, REFUSING: 18, DOWN: 0})
    checker = StrictHTML()
    checker.feed(page)
    assert checker.problems == []
    assert "the site asked for a pause beyond --max-pause" in page
    row = page.split(f"<td>{REFUSING}</td>", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    # requests, records, ok, refused, 5xx, net fail, wasted, statuses, p50, p95, bytes,
    # pauses, breaker, deferred
    assert cells[:7] == ["30", "18", "18", "12", "0", "0", "12"]
    assert cells[7] == "200 (18), 429 (12)"
    assert cells[8] != "-"
    assert cells[9] != "-"
    assert cells[11].startswith("6 (Retry-After: 5)")
    down = page.split(f"<td>{DOWN}</td>", 1)[1].split("</tr>", 1)[0]
    assert down.endswith("<td>1</td><td>4</td>")  # breaker openings, deferred
    # The controller's choices, charted for the hosts whose limits moved.
    assert f'aria-label="{REFUSING}: concurrency and rate chosen"' in page
    assert page.count("<polyline") >= 2


def test_the_timeline_chart_draws_concurrency_and_rate_as_steps() -> None:
    refusing = controller_reports()[REFUSING]
    assert len(refusing.timeline) > 1
    assert any(step.rate is not None for step in refusing.timeline)
    svg = timeline_chart(REFUSING, refusing.timeline)
    checker = StrictHTML()
    checker.feed(svg)
    assert checker.problems == []
    assert svg.count("<polyline") == 2  # concurrency, and the rate once one was set
    assert f">{max(s.limit for s in refusing.timeline)}</text>" in svg
    assert "no steps" in timeline_chart("x", ())


def test_the_live_line_groups_held_hosts_by_why() -> None:
    held: Mapping[str, tuple[str, float]] = {
        "a:80": ("paused", 12.0),
        "b:80": ("breaker", 30.0),
        "c:80": ("paused", 3.4),
    }
    text = held_text(held)
    assert "paused by the server (429 / Retry-After): a:80 12 s, c:80 3 s" in text
    assert "failing, breaker open: b:80 30 s" in text
    many = {f"h{i}:80": ("paused", 1.0) for i in range(5)}
    assert held_text(many).endswith("and 2 more")


@dataclass(frozen=True)
class Stall:
    """The stall notice's fields, as ``_engine/stats.py`` will carry them."""

    stage: str
    seconds: float
    hosts: tuple[str, ...]
    oldest: tuple[tuple[str, float], ...]


def test_the_stall_notice_names_stage_hosts_and_oldest_items() -> None:
    text = stall_text(Stall("fetch", 75.0, ("d:80",), (("http://d/stall/0", 80.2),)))
    assert text == (
        "stalled: nothing finished for 75 s in fetch (hosts: d:80); "
        "oldest in flight: http://d/stall/0 (80 s)"
    )


def _fetch_stats(report: FetchReport) -> RunStatistics:
    stage = StageStatistics(
        name="fetch", place="loop", workers=8, started=10, succeeded=4, failed=0, filtered=0,
        retried=0, in_flight=6, queue_depth=0, busy_seconds=1.0, abandoned_threads=0,
        p50=None, p95=None, p99=None, details=report,
    )  # fmt: skip
    return RunStatistics(
        elapsed=12.0, total=20, admitted=10, skipped=0, results=4, failed=0, filtered=0,
        stages=(stage,),
    )  # fmt: skip


def test_the_live_display_names_the_hosts_the_fetch_holds_back() -> None:
    stats = _fetch_stats(FetchReport(requests=10, paused={"a:80": 7.2}))
    assert held_hosts(stats) == {"a:80": ("paused", 7.2)}
    view = ProgressView(stats, 1.0, None)
    line = plain_line("conveyor fetch", view, 0)
    assert line.endswith("| paused by the server (429 / Retry-After): a:80 7 s")
    console = Console(record=True, width=160)
    console.print(render("conveyor fetch", view, 0, 0))
    assert "paused by the server (429 / Retry-After): a:80 7 s" in console.export_text()
    assert held_hosts(_fetch_stats(FetchReport(requests=10))) == {}


def test_hosts_the_client_summed_already_join_the_others_row() -> None:
    hosts = controller_reports(extra_hosts=10)
    lumped = HostReport(OTHERS, requests=50, ok=45, net_fails=5, pause_count=2)
    hosts[OTHERS] = lumped
    rows = ranked_rows(hosts, top=6)
    assert [r.host for r in rows].count(OTHERS) == 1
    assert rows[-1].host == OTHERS
    assert rows[-1].hosts is None  # how many hosts it sums is not known
    assert sum(r.requests for r in rows) == sum(h.requests for h in hosts.values())
    text = _text(health_tables(hosts, {}))
    assert OTHERS not in text  # a sum is not a host to name as held back or wasteful
    page = health_html(hosts, {})
    assert f"<td>{OTHERS}</td>" in page
