"""The WARC sink (``_io/sinks/warc.py``): records warcio reads back, and exactly once
after SIGKILL at a gzip member boundary."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from conveyor._engine.outcomes import Failure
from conveyor._errors import JournalError, UsageError
from conveyor._io.sinks import Warc, sink_for
from conveyor.http import HttpClient, Request
from conveyor.testing import run_site

from .helpers import ROOT, journal_done
from .warc_job import response


def records(path: Path) -> list[Any]:
    """Every record as (type, target, http status or request line, content, headers)."""
    found = []
    with path.open("rb") as file:
        for record in ArchiveIterator(file):
            http = record.http_headers
            found.append(
                (
                    record.rec_type,
                    record.rec_headers.get_header("WARC-Target-URI"),
                    http.statusline if http is not None else None,
                    record.content_stream().read(),
                    record,
                )
            )
    return found


async def test_real_responses_round_trip_through_warcio(tmp_path: Path) -> None:
    async with run_site() as site, HttpClient() as client:
        page = await client.fetch(site.url("/"))
        posted = await client.fetch(Request(site.url("/status/404"), headers={"X-Mine": "1"}))
    path = tmp_path / "crawl.warc.gz"
    sink = sink_for(path)
    assert isinstance(sink, Warc)
    assert sink.gzip
    sink.open()
    sink.write([page, posted])
    sink.flush()
    sink.close()
    found = records(path)
    assert [kind for kind, *_ in found] == ["warcinfo", "response", "request"] * 1 + [
        "response", "request",
    ]  # fmt: skip
    _, target, status, content, record = found[1]
    assert (target, status, content) == (page.final_url, "200 OK", page.body)
    assert record.rec_headers.get_header("WARC-Payload-Digest").startswith("sha1:")
    assert record.http_headers.get_header("Content-Length") == str(len(page.body))
    assert record.http_headers.get_header("Content-Encoding") is None
    request = found[2][4]
    assert request.http_headers.protocol == "GET"
    assert request.rec_headers.get_header("WARC-Concurrent-To") == (
        record.rec_headers.get_header("WARC-Record-ID")
    )
    assert found[3][2].startswith("404")
    assert found[4][4].http_headers.get_header("X-Mine") == "1"
    # Each record is its own gzip member: the file is a valid multi-member gzip stream.
    assert gzip.decompress(path.read_bytes()).count(b"\r\nWARC-Type: ") == 5


def test_plain_warc_and_failures_inline_as_metadata(tmp_path: Path) -> None:
    path = tmp_path / "out.warc"
    with Warc(path) as sink:
        assert not sink.gzip
        sink.write([response(1)])
        sink.write_failures(
            [
                Failure(
                    key="http://127.0.0.3/gone",
                    stage="fetch",
                    kind="dns",
                    message="no such host",
                    error_type="DNSError",
                    attempts=2,
                )
            ]
        )
    assert path.read_bytes().startswith(b"WARC/1.1\r\n")
    kinds = [(kind, target) for kind, target, *_ in records(path)]
    assert kinds[-1] == ("metadata", "http://127.0.0.3/gone")
    assert b'"error_kind":"dns"' in records(path)[-1][3]


def test_a_result_that_is_no_response_is_refused_with_the_fix(tmp_path: Path) -> None:
    with Warc(tmp_path / "out.warc.gz") as sink, pytest.raises(UsageError, match=r"write \.jsonl"):
        sink.write([{"url": "http://127.0.0.3/"}])


def test_resume_cuts_back_to_the_flushed_member(tmp_path: Path) -> None:
    path = tmp_path / "out.warc.gz"
    sink = Warc(path)
    sink.open()
    sink.write([response(1)])
    position = sink.flush()
    sink.write([response(2)])  # written, never flushed: a crash would leave it half-way
    sink.close()
    with path.open("ab") as file:
        file.write(b"\x1f\x8b\x08half a member")
    resumed = Warc(path)
    resumed.open(position)
    resumed.write([response(3)])
    resumed.flush()
    resumed.close()
    targets = [target for kind, target, *_ in records(path) if kind == "response"]
    assert targets == ["http://127.0.0.3/item/1", "http://127.0.0.3/item/3"]
    with pytest.raises(JournalError):
        Warc(path).open({"rows": 3})


@pytest.mark.slow
def test_sigkill_then_resume_writes_every_response_once(tmp_path: Path) -> None:
    count, output = 1200, tmp_path / "out.warc.gz"
    command = [sys.executable, "-m", "tests.io.warc_job", str(output),
               str(tmp_path / "job.journal"), str(count)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    seen = []
    for round_ in range(5):
        before = journal_done(tmp_path)
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(2000):  # kill once this run committed more (bounded wait)
            if proc.poll() is not None or journal_done(tmp_path) > before + 20 * (round_ + 1):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.append(journal_done(tmp_path))
    assert len(set(seen)) >= 3, seen
    out, _ = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    ).communicate(timeout=120)
    assert "DONE" in out
    found = records(output)
    assert [kind for kind, *_ in found].count("warcinfo") == 1
    targets = [target for kind, target, *_ in found if kind == "response"]
    assert sorted(targets) == sorted(f"http://127.0.0.3/item/{n}" for n in range(count))
    bodies = {target: content for kind, target, _, content, _ in found if kind == "response"}
    assert bodies["http://127.0.0.3/item/699"] == response(699).body
