"""``conveyor fetch --loops 2``: the parent killed with SIGKILL leaves no loop process, and
running the same command again gives every URL exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from .conftest import ROOT, Site, run_cli, write_urls


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_the_parent_leaves_no_loop_and_resume_gives_every_url_once(
    site: Site, tmp_path: Path
) -> None:
    urls = [site.url(f"/page/{i}?delay=0.02") for i in range(600)]
    write_urls(tmp_path / "urls.txt", urls)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "fetch", "urls.txt", "-o", "out.jsonl",
         "--concurrency", "8", "--per-host", "8", "--loops", "2", "-q"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first commit reached the file
    loops = _children(proc.pid)  # the loop processes (and multiprocessing's tracker)
    assert len(loops) >= 2
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in loops) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in loops if _alive(pid)], "a loop process outlived its parent"
    done_before = len(out.read_bytes().splitlines())
    assert done_before < 600

    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "-q", "--loops", "2", "--concurrency", "50",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["url"] for r in records) == sorted(urls)  # each URL once
    assert {r["status"] for r in records} == {200}


def test_loops_option_is_checked(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", [site.url("/page/1")])
    result = run_cli("fetch", "urls.txt", "-o", "out.jsonl", "--loops", "0", cwd=tmp_path)
    assert result.code == 2
    assert "give a number of loops" in result.err
    assert "Traceback" not in result.err


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (the command and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes() and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_loop_processes_started_ahead_end_when_the_run_never_starts(
    site: Site, tmp_path: Path
) -> None:
    # `fetch` starts its loop processes before it builds the job; a journal that is not
    # one then stops it with a usage error, and those processes must not stay behind.
    write_urls(tmp_path / "urls.txt", [site.url("/page/1")])
    (tmp_path / "out.jsonl.journal").write_text("not a journal")
    marker = f"CONVEYOR_TEST_MARK=loops-ahead-{os.getpid()}-{time.monotonic_ns()}"
    name, value = marker.split("=")
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", "fetch", "urls.txt", "-o", "out.jsonl",
         "--loops", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), name: value},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "not a conveyor journal" in proc.stderr
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []
