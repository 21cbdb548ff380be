"""Ctrl-C with real signals: the first stops gracefully, the second at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine.sigint_job", mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def wait_running(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in range(100):
        line = proc.stdout.readline()
        if line.strip() == "RUNNING":
            return
        if not line:
            break
    proc.kill()
    pytest.fail(f"the job did not start: {proc.communicate()}")


def finish(proc: subprocess.Popen[str]) -> dict[str, str]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_first_sigint_lets_in_flight_items_finish() -> None:
    proc = start("graceful")
    wait_running(proc)
    proc.send_signal(signal.SIGINT)
    lines = finish(proc)
    fields = dict(f.split("=") for f in lines["INTERRUPTED"].split())
    assert fields["interrupted"] == "True"
    # Every item that had started was allowed to finish: none were cut off.
    assert int(fields["results"]) == int(fields["items"]) >= 5


def test_second_sigint_stops_at_once() -> None:
    proc = start("stuck")
    wait_running(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # two signals sent together would merge into one
    proc.send_signal(signal.SIGINT)
    lines = finish(proc)
    fields = dict(f.split("=") for f in lines["INTERRUPTED"].split())
    assert int(fields["results"]) < int(fields["items"])  # in-flight items were cancelled
    assert float(lines["SECONDS"]) < 30  # not the 60 s the items would take


def test_sigint_with_worker_processes_leaves_nothing_behind() -> None:
    proc = start("processes")
    wait_running(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # two signals sent together would merge into one
    proc.send_signal(signal.SIGINT)
    lines = finish(proc)
    assert lines["THREADS"] == "MainThread"
    assert lines["CHILDREN"] == "0"  # every worker process is gone
    assert "INTERRUPTED" in lines
