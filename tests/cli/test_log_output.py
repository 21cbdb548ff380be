"""Without a terminal (a log file, CI, ``| tee``) the end-of-run summary is printed whole."""

from __future__ import annotations

import re
from pathlib import Path

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
    assert rows["fetch"][3:6] == ["1,200", "3", "0"]  # ok, failed, retried, whole
    assert rows["process:analyze_text"][1:4] == ["processes", "x2", "1,200"]
    assert all(re.fullmatch(r"[\d,]+\.\d", cell) for cell in rows["fetch"][6:9])  # p50-p99
    assert "wrote 1,203 records" in result.out
    # The progress lines are unchanged: plain lines on stderr, one every few seconds.
    assert "conveyor demo: done in" in result.err
