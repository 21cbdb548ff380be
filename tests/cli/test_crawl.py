"""``conveyor crawl`` end to end, against the generated crawl site in its own process:
records, errors, the report, and SIGKILL at any moment (the frontier's transaction
included) with every reachable allowed page in the output exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor._crawl.urls import canonical
from conveyor.testing.crawl_site import CrawlSite

from .conftest import ROOT, run_cli

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
# The kill test's settings: crawl_job.py (the run that kills itself) uses the same.
FAST = ["--robots-retry", "0.2", "--retries", "1", "--concurrency", "16", "--per-host", "4"]


@dataclass
class CrawlServer:
    site: CrawlSite
    proc: subprocess.Popen[str]

    def host(self, index: int) -> str:
        return self.site.bases[index].partition("://")[2]

    def stats(self) -> dict[str, Any]:
        url = f"{self.site.bases[0]}/_crawl_stats"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return dict(json.loads(answer.read()))

    def hits(self, host: int, prefix: str = "") -> int:
        name = self.host(host)
        return sum(n for h, p, n in self.stats()["hits"] if h == name and p.startswith(prefix))


@contextlib.contextmanager
def _serve(*args: str, **shape: Any) -> Iterator[CrawlServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.testing.crawl_site", *args],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    bases = tuple(json.loads(line.partition("listening on ")[2]))
    try:
        yield CrawlServer(CrawlSite(bases, **shape), proc)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def small() -> Iterator[CrawlServer]:
    with _serve("--pages", "60", "--robots-503", "3", pages=60, robots_503=3) as server:
        yield server


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_crawl_writes_a_record_per_page_with_depth_and_referrer(
    small: CrawlServer, tmp_path: Path
) -> None:
    result = run_cli(
        "crawl", *small.site.seeds(), "-o", "out.jsonl", "--loops", "1", "--report", "r.html",
        *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    records = _records(tmp_path / "out.jsonl")
    urls = [canonical(r["url"]) for r in records]
    assert sorted(urls) == sorted(canonical(u) for u in small.site.expected())
    home = next(r for r in records if r["url"] == small.site.seeds()[0])
    assert (home["depth"], home["referrer"], home["status"]) == (0, None, 200)
    deep = next(r for r in records if r["url"].endswith("/p/1"))
    assert deep["depth"] == 2
    assert deep["referrer"].endswith("/p/0")
    assert list(deep)[-3:] == ["depth", "referrer", "lastmod"]
    assert "Crawl: links" in result.out
    assert "pages robots.txt disallowed" in result.out
    report = (tmp_path / "r.html").read_text()
    assert "<h2>Crawl</h2>" in report
    assert small.hits(0, "/private/") == 0


def test_crawl_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in [
        ((), "give seed URLs"),
        (("example.com",), "not an absolute http(s) URL"),
        (("http://127.0.0.21/", "--scope", "["), "--scope"),
        (("--seeds", "missing.txt"), "no such file"),
    ]:
        result = run_cli("crawl", *args, "-o", "out.jsonl", cwd=tmp_path)
        assert result.code == 2, (args, result.err)
        assert message in result.err
        assert "Traceback" not in result.err


def test_crawl_to_warc(small: CrawlServer, tmp_path: Path) -> None:
    from warcio.archiveiterator import ArchiveIterator

    result = run_cli(
        "crawl", small.site.seeds()[0], "-o", "out.warc.gz", "--loops", "1", "--max-pages",
        "12", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    with (tmp_path / "out.warc.gz").open("rb") as stream:
        records = [
            (r.rec_type, r.rec_headers.get_header("WARC-Target-URI"))
            for r in ArchiveIterator(stream)
        ]
    responses = [uri for kind, uri in records if kind == "response"]
    assert len(responses) == len(set(responses)) == 12
    assert [kind for kind, _ in records].count("request") == 12
    assert "wrote 12 records" in result.out


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_gives_every_page_once(tmp_path: Path) -> None:
    """Kill the crawl when it has written more (chosen by progress, never by time), on
    one loop and on two, and once from inside the journal's commit, after the frontier
    wrote its part; the runs that follow finish it with every reachable allowed page in
    the output once, nothing disallowed or out of scope ever asked for, and the flaky
    host's pages only after its robots.txt said 200."""
    # ~40 pages/s (4 at once per host, 0.1 s each): a run is killed after a commit or two.
    shape = {"pages": 200, "robots_503": 3}
    server_args = ("--pages", "200", "--robots-503", "3", "--delay", "0.1")
    with _serve(*server_args, **shape) as server:
        seeds = server.site.seeds()
        out = tmp_path / "out.jsonl"
        command = [sys.executable, "-m", "conveyor", "crawl", *seeds, "-o", str(out), "-q", *FAST]
        written = []
        for loops in ("1", "self", "2", "1"):
            if loops == "self":
                # Killed by itself inside its first commit that finishes pages: the
                # frontier's rows and links written, the transaction not committed.
                job = [sys.executable, "-m", "tests.crawl.crawl_job", str(out), "2", "1", *seeds]
                died = subprocess.run(job, cwd=ROOT, env=ENV, capture_output=True, timeout=120)
                assert died.returncode == -signal.SIGKILL, died.stderr
                written.append(_lines(out))
                continue
            before = _lines(out)
            proc = subprocess.Popen(
                [*command, "--loops", loops], cwd=tmp_path, env=ENV,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for _ in range(4000):  # until it wrote a few more records (bounded)
                if proc.poll() is not None or _lines(out) > before + 25:
                    break
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            written.append(_lines(out))
        final = subprocess.run(
            [*command, "--loops", "2"], cwd=tmp_path, env=ENV, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert final.returncode == 0, final.stderr
        assert written[-1] < len(server.site.expected())  # the kills came before the end
        records = _records(out)
        urls = [canonical(r["url"]) for r in records]
        assert len(urls) == len(set(urls)), "a page was written twice"
        assert set(urls) == {canonical(u) for u in server.site.expected()}
        stats = server.stats()
        hits = {(h, p): n for h, p, n in stats["hits"]}
        main, flaky, outside = server.host(0), server.host(1), server.host(2)
        assert not [p for (h, p) in hits if h == main and p.startswith(("/private/", "/nf/"))]
        assert not [p for (h, p) in hits if h == outside]
        order = stats["order"]
        first_ok = next(i for i, (h, p, s) in enumerate(order) if h == flaky and s == 200)
        assert order[first_ok][1] == "/robots.txt"
        pages = [i for i, (h, p, _) in enumerate(order) if h == flaky and p != "/robots.txt"]
        assert pages
        assert min(pages) > first_ok


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_the_crawl_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = run_cli("demo", "--crawl", "--pages", "60", "-q", cwd=tmp_path, timeout=120)
    assert result.code == 0, result.err
    records = _records(tmp_path / "demo-output" / "crawl.jsonl")
    shape = CrawlSite(("http://a:1", "http://b:1", "http://c:1"), pages=60)
    assert len(records) == len({r["url"] for r in records}) == len(shape.expected())
    assert (tmp_path / "demo-output" / "crawl-report.html").exists()
