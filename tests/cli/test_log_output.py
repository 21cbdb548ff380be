"""Without a terminal (a log file, CI, ``| tee``) the end-of-run summary is printed whole."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from conveyor._cli.demo import POLITE_HOSTS, polite_share

from .conftest import run_cli


def test_demo_summary_to_a_pipe_cuts_no_cell(tmp_path: Path) -> None:
    # 1,200 pages: four-digit counts and the demo's long stage name overflowed the 80 columns
    # rich assumes without a terminal, and cells came out as "1,2…" and "fai…".
    result = run_cli("demo", "--pages", "1200", cwd=tmp_path, timeout=120)
    assert result.code == 0, result.err
    assert "…" not in result.out
    assert "…" not in result.err
    header = next(line for line in result.out.splitlines() if line.split()[:2] == ["stage", "on"])
    assert header.split() == ["stage", "on", "ok", "failed", "retried", "p50", "p95", "p99",
                              "busy", "s"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in result.out.splitlines() if line.strip()}
    # The misbehaving hosts' pages too, once the client adapts to its hosts.
    pages = 1200 + len(POLITE_HOSTS) * polite_share(1200)
    assert rows["fetch"][3:5] == [f"{pages:,}", "3"]  # ok, failed, whole
    assert rows["process:analyze_text"][1:4] == ["processes", "x2", f"{pages:,}"]
    assert all(re.fullmatch(r"[\d,]+\.\d", cell) for cell in rows["fetch"][6:9])  # p50-p99
    assert f"wrote {pages + 3:,} records" in result.out
    assert "hint:" not in result.out  # the demo's settings are not the user's flags
    # Every number reconciles with the records written: retries, and outcomes by status.
    records = [
        orjson.loads(line)
        for line in (tmp_path / "demo-output" / "pages.jsonl").read_bytes().splitlines()
    ]
    retries = sum(r["attempts"] - 1 for r in records if r["status"] is not None)
    assert retries > 0
    assert rows["fetch"][5] == f"{retries:,}"  # the stage's retried column
    run = result.out.splitlines()
    header_at = next(i for i, line in enumerate(run) if line.split()[:2] == ["items", "ok"])
    columns, values = run[header_at].split(), run[header_at + 2].split()
    counted = dict(zip(columns, values, strict=False))
    status = [r["status"] for r in records]
    assert counted["ok"] == f"{sum(1 for s in status if s is not None and s < 400):,}"
    assert counted["4xx"] == f"{sum(1 for s in status if s is not None and 400 <= s < 500):,}"
    assert counted["5xx"] == f"{sum(1 for s in status if s is not None and s >= 500):,}"
    assert counted["failed"] == f"{sum(1 for s in status if s is None):,}"
    assert counted["retries"] == f"{retries:,}"
    # The progress lines count the same way: the last one says how the records ended.
    last = next(line for line in reversed(result.err.splitlines()) if "done in" in line)
    expected = ", ".join(f"{name} {counted[name]}" for name in ("ok", "4xx", "5xx", "failed"))
    assert expected in last
    # The progress lines are unchanged: plain lines on stderr, one every few seconds.
    assert "conveyor demo: done in" in result.err
