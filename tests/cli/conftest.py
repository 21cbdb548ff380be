"""CLI tests run ``conveyor`` as a subprocess against test sites in their own processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Site:
    base: str
    proc: subprocess.Popen[str]

    def url(self, path: str) -> str:
        return self.base + path


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The misbehaving test site, in its own process (like Scrapy's mockserver)."""
    proc = _start(["conveyor.testing.site", "--host", "127.0.0.1", "--port", "0"])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    yield Site(line.split()[-1].strip(), proc)
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 90
) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT / 'src'}", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in urls))
    return path
