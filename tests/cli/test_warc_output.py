"""``-o out.warc.gz`` for ``conveyor fetch``: the responses themselves go to the WARC file
(request and response records, a metadata record per failure), killed and resumed with
each response written once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ROOT, Site, run_cli, write_urls


def _responses(path: Path) -> list[tuple[str, str]]:
    from warcio.archiveiterator import ArchiveIterator

    with path.open("rb") as stream:
        return [
            (record.rec_type, record.rec_headers.get_header("WARC-Target-URI") or "")
            for record in ArchiveIterator(stream)
        ]


def test_fetch_to_warc_killed_and_resumed_writes_each_response_once(
    site: Site, tmp_path: Path
) -> None:
    urls = [site.url(f"/page/{i}?delay=0.05") for i in range(120)]
    write_urls(tmp_path / "urls.txt", [*urls, "not a url"])
    out = tmp_path / "out.warc.gz"
    args = ["fetch", "urls.txt", "-o", "out.warc.gz", "--concurrency", "4", "--per-host", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args, "-q"], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(4000):  # until the first commit reached the file (bounded)
        if proc.poll() is not None or (out.exists() and out.stat().st_size > 4096):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = [uri for kind, uri in _responses(out) if kind == "response"]
    assert 0 < len(before) < 120
    result = run_cli(*args, cwd=tmp_path)
    assert result.code == 0, result.err
    records = _responses(out)
    responses = [uri for kind, uri in records if kind == "response"]
    assert sorted(responses) == sorted(urls)  # each once, the killed run's included
    assert [kind for kind, _ in records].count("request") == 120
    assert [kind for kind, _ in records].count("metadata") == 1  # the bad URL's failure


def test_process_cannot_write_warc(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", [site.url("/page/1")])
    result = run_cli("fetch", "urls.txt", "-o", "out.warc", "--process", "json:dumps", cwd=tmp_path)
    assert result.code == 2
    assert "WARC file cannot hold" in result.err
