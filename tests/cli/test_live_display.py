"""The live display on a real (pseudo-)terminal counts what the records say, and shows the
per-host hint while the job runs."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ROOT, Site, write_urls


def run_on_a_terminal(args: list[str], cwd: Path, timeout: float = 90) -> tuple[int, str]:
    """Run ``conveyor ARGS`` with stdout and stderr on a pseudo-terminal; its exit code and
    everything it drew (escape codes left in)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "TERM": "xterm-256color",
             "COLUMNS": "120", "LINES": "40"},
    )  # fmt: skip
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    code = proc.wait(10)
    os.close(leader)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_live_display_counts_outcomes_and_gives_the_per_host_hint(
    site: Site, tmp_path: Path
) -> None:
    urls = [site.url(f"/page/{i}?delay=0.05") for i in range(300)]
    urls += [site.url(f"/status/{code}?n={n}") for n, code in enumerate((404, 404, 500))]
    write_urls(tmp_path / "urls.txt", urls)
    code, drawn = run_on_a_terminal(
        ["fetch", "urls.txt", "-o", "out.jsonl", "--concurrency", "60", "--per-host", "3",
         "--retries", "0"],
        tmp_path,
    )  # fmt: skip
    assert code == 0, drawn[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert "\x1b[" in drawn  # it drew a live display, not plain lines
    # The counters line, as the display drew it last: ok, then the HTTP errors by class.
    assert re.search(r"ok\s+300\s+4xx\s+2\s+5xx\s+1\s+failed\s+0", plain), plain[-1500:]
    assert "--per-host 3 is what holds this job back" in plain
    assert "hint: --per-host 3" in plain  # and once more after the summary
