"""Ctrl-C and resume, and ``conveyor demo`` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import orjson

from .conftest import ROOT, Site, run_cli, write_urls


def test_sigint_says_how_to_resume_and_resuming_finishes(site: Site, tmp_path: Path) -> None:
    urls = [site.url(f"/page/{i}?delay=0.05") for i in range(400)]
    write_urls(tmp_path / "urls.txt", urls)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "fetch", "urls.txt", "-o", "out.jsonl",
         "--concurrency", "4", "--per-host", "4"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 30
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the first commit reached the file
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "run the same command again to resume" in stdout + stderr
    done_before = len(out.read_bytes().splitlines())
    assert 0 < done_before < 400

    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "-q", "--concurrency", "50", cwd=tmp_path
    )
    assert result.code == 0, result.err
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(r["url"] for r in records) == sorted(urls)  # each URL once


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    from conveyor._cli.demo import POLITE_HOSTS, polite_share

    result = run_cli("demo", "--pages", "400", "-q", cwd=tmp_path, timeout=180)
    assert result.code == 0, result.err
    folder = tmp_path / "demo-output"
    records = [orjson.loads(line) for line in (folder / "pages.jsonl").read_bytes().splitlines()]
    urls = [r["url"] for r in records]
    # Every page once, plus three malformed lines, plus the misbehaving hosts' pages (shown
    # once the client adapts to its hosts).
    polite = len(POLITE_HOSTS) * polite_share(400)
    assert len(urls) == len(set(urls)) == 403 + polite
    listed = [u for u in (folder / "urls.txt").read_text().split() if "://" in u]
    assert sum(any(f"//{h}:" in u for h in POLITE_HOSTS) for u in listed) == polite
    assert sum(r["error_kind"] == "bad-url" for r in records) == 3
    statuses = {r["status"] for r in records}
    assert 200 in statuses
    assert all(r["words"] for r in records if r["status"] == 200 and r["title"])
    checker = _Checker()
    checker.feed((folder / "report.html").read_text())
    assert checker.tags.count("svg") >= 4
    assert "html" in checker.tags


def test_serve_runs_the_demo_site_alone(tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:  # a free port for the fixed-port mode
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", "--hosts", "127.0.0.1", "--port", str(port),
         "--pages", "50", "--urls", "urls.txt"],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"listening on http://127.0.0.1:{port}")
        urls = [u for u in (tmp_path / "urls.txt").read_text().split() if u.startswith("http")]
        assert len(urls) == 50
        ok = next(u for u in urls if u.endswith("/p/0"))
        with urllib.request.urlopen(ok, timeout=10) as response:
            assert b"<title>Page 0" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_the_demo_summary_shows_the_misbehaving_hosts_handled(tmp_path: Path) -> None:
    from conveyor._cli.demo import POLITE_HOSTS

    result = run_cli("demo", "--pages", "200", cwd=tmp_path, timeout=240)
    assert result.code == 0, result.err
    # The refusing host asked for pauses, and they were kept: it is named as held back.
    held = result.out.split("Hosts held back", 1)[1]
    assert f"{POLITE_HOSTS[0]}:" in held
    assert "Retry-After: 1" in held
    records = [
        orjson.loads(line)
        for line in (tmp_path / "demo-output" / "pages.jsonl").read_bytes().splitlines()
    ]
    for address in POLITE_HOSTS:  # every page of every misbehaving host has its record
        mine = [r for r in records if f"//{address}:" in str(r["url"])]
        assert len(mine) == len({r["url"] for r in mine}) >= 100
