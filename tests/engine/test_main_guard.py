"""A script that starts a run with processes at module level, without the main guard:
the spawned process re-runs it, and the user is told that, and the fix, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LOOPS = """
    import conveyor as cv

    async def echo(x):
        return x

    print(cv.Pipeline(range(4)).map(echo).run(loops=2).results)
"""
PROCESSES = """
    import conveyor as cv

    def square(x):
        return x * x

    print(cv.Pipeline(range(4)).map(square, on="processes", workers=1).run().results)
"""


def run_script(folder: Path, body: str) -> subprocess.CompletedProcess[str]:
    """``body`` as a script of its own, run as ``python job.py``."""
    script = folder / "job.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


@pytest.mark.parametrize(("body", "what"), [(LOOPS, "loop process"), (PROCESSES, "worker process")])
def test_an_unguarded_script_is_told_to_add_the_main_guard(
    tmp_path: Path, body: str, what: str
) -> None:
    proc = run_script(tmp_path, body)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("conveyor.UsageError:"), proc.stderr[-3000:]
    assert 'no `if __name__ == "__main__":` guard' in last
    assert f"each {what} imports the main script" in last
    assert "bootstrapping phase" not in proc.stderr  # multiprocessing's page of text


def test_the_same_script_with_the_guard_runs(tmp_path: Path) -> None:
    guarded = LOOPS.replace("    print(", '    if __name__ == "__main__":\n        print(')
    proc = run_script(tmp_path, guarded)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "4"
