"""The crawl section of the summary and the report: pages per depth and host add up to the
records, and the links' fates to the links found."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

import conveyor as cv
from conveyor._observe import RunReport
from conveyor._observe.crawl import CrawlFigures

from .helpers import StrictHTML


def test_the_crawl_section_adds_up(tmp_path: Path) -> None:
    report = RunReport()
    depths = [0, 1, 1, 2, 2, 2, 2]
    for i, depth in enumerate(depths):
        report.add_record(status=200, host=f"h{i % 2}:80", error_kind=None, depth=depth)
    figures = CrawlFigures(
        links_found=100, unfit=5, nofollow=3, repeated=10, repeated_raw=8,
        rejected={"out-of-scope": 20, "repeated-segment": 2}, resent=40, resent_raw=40,
        sent=20, known=4, new=15, capped=1, robots_fetched=2, disallowed=3,
    )  # fmt: skip
    report.crawl = figures
    data = report.data()
    assert data.depths == {0: 1, 1: 2, 2: 4}
    assert sum(data.depths.values()) == data.records == len(depths)
    assert sum(n for _, n in data.busiest) == data.records
    rows = dict(figures.link_rows())
    assert rows["links found"] == sum(
        n for label, n in rows.items() if label.startswith("  ") and not label.startswith("    ")
    )
    assert rows["  sent to the frontier"] == sum(
        n for label, n in rows.items() if label.startswith("    ")
    )
    result = cv.Pipeline([]).run()
    console = Console(file=io.StringIO(), width=120)
    console.print(report.summary_table(result))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Crawl: pages" in text
    assert "turned away: trap: repeated-segment" in text
    page = tmp_path / "r.html"
    report.write_html(page, result)
    html = page.read_text()
    StrictHTML().feed(html)
    assert "<h2>Crawl</h2>" in html
