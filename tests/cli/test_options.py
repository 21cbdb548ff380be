"""The remaining ``conveyor fetch`` options, each against the live test site."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import orjson

from .conftest import Site, run_cli, write_urls


def records(path: Path) -> dict[str, dict[str, object]]:
    lines = path.read_bytes().splitlines()
    return {r["url"]: r for r in map(orjson.loads, lines)}  # type: ignore[index]


def test_column_of_a_csv_input(site: Site, tmp_path: Path) -> None:
    rows = "".join(f"{i},{site.url(f'/page/{i}')}\n" for i in range(4))
    (tmp_path / "in.csv").write_text("id,link\n" + rows)
    result = run_cli("fetch", "in.csv", "--column", "link", "-o", "o.jsonl", "-q", cwd=tmp_path)
    assert result.code == 0, result.err
    assert sorted(records(tmp_path / "o.jsonl")) == sorted(site.url(f"/page/{i}") for i in range(4))


def test_max_bytes_timeout_and_block_private(site: Site, tmp_path: Path) -> None:
    big, slow, fine = site.url("/bytes/200000"), site.url("/page/1?delay=3"), site.url("/page/2")
    write_urls(tmp_path / "urls.txt", [big, slow, fine])
    result = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--max-bytes", "100kB",
        "--timeout", "0.5", "--retries", "0", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    got = records(tmp_path / "o.jsonl")
    assert got[big]["error_kind"] == "too-large"
    assert got[slow]["error_kind"] == "timeout"
    assert got[fine]["status"] == 200
    blocked = run_cli("fetch", "urls.txt", "-o", "b.jsonl", "-q", "--block-private", cwd=tmp_path)
    assert blocked.code == 0, blocked.err
    assert {r["error_kind"] for r in records(tmp_path / "b.jsonl").values()} == {"blocked"}


def test_retries_and_retry_failed_and_restart(site: Site, tmp_path: Path) -> None:
    # --no-adapt: a bare 503 would pause the host a minute and defer the retry (the
    # politeness tests say so); here the resume rules are what is tested.
    flaky = site.url("/flaky/cli-opt?fail=2")
    write_urls(tmp_path / "urls.txt", [flaky, site.url("/page/7")])
    first = run_cli("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "0", "--no-adapt",
                cwd=tmp_path)  # fmt: skip
    assert first.code == 0, first.err
    assert records(tmp_path / "o.jsonl")[flaky]["status"] == 503
    # The same command again: all done, nothing refetched.
    again = run_cli("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "0", "--no-adapt",
                cwd=tmp_path)  # fmt: skip
    assert again.code == 0, again.err
    assert len((tmp_path / "o.jsonl").read_bytes().splitlines()) == 2
    # A 503 is left for --retry-failed, never refetched by a plain resume; --restart does.
    restarted = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "1", "--restart", "--no-adapt",
        cwd=tmp_path,
    )  # fmt: skip
    assert restarted.code == 0, restarted.err
    got = records(tmp_path / "o.jsonl")
    assert len(got) == 2
    assert got[flaky]["status"] == 200  # third request overall: past the two failures


def test_retry_failed_refetches_failed_urls(site: Site, tmp_path: Path) -> None:
    slow = site.url("/page/9?delay=1.5")
    write_urls(tmp_path / "urls.txt", [slow, site.url("/page/8")])
    first = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--timeout", "0.3", "--retries", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert records(tmp_path / "o.jsonl")[slow]["error_kind"] == "timeout", first.err
    second = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--timeout", "5", "--retry-failed",
        cwd=tmp_path,
    )  # fmt: skip
    assert second.code == 0, second.err
    lines = [orjson.loads(x) for x in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    final = [r for r in lines if r["url"] == slow]
    assert final[-1]["status"] == 200


def _hits(site: Site) -> dict[str, int]:
    with urllib.request.urlopen(site.url("/_stats"), timeout=10) as answer:
        return orjson.loads(answer.read())["hits"]  # type: ignore[no-any-return]


def test_retry_failed_refetches_no_response_5xx_and_429_never_4xx(
    site: Site, tmp_path: Path
) -> None:
    """Each /flaky/ URL answers its status once, then 200: a refetch shows in the output
    and in the site's hits per path."""
    with socket.socket() as probe:  # a port nothing listens on: no response
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/nothing"
    flaky = {
        code: site.url(f"/flaky/rf-{code}?fail=1&status={code}")
        for code in (503, 500, 429, 404, 410)
    }
    ok = site.url("/page/rf-ok")
    urls = [*flaky.values(), ok, closed]
    write_urls(tmp_path / "urls.txt", urls)
    # --no-adapt: bare 503s and 429s would pause the one host and defer the rest.
    command = ("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "0", "--timeout", "5",
               "--no-adapt")  # fmt: skip

    def paths() -> dict[str, int]:
        hits = _hits(site)
        return {code: hits.get(f"/flaky/rf-{code}", 0) for code in flaky} | {
            "ok": hits.get("/page/rf-ok", 0)
        }

    first = run_cli(*command, cwd=tmp_path)
    assert first.code == 0, first.err
    written = (tmp_path / "o.jsonl").read_bytes().splitlines()
    got = records(tmp_path / "o.jsonl")
    assert [got[flaky[code]]["status"] for code in flaky] == list(flaky)
    assert got[closed]["error_kind"] == "connect"
    assert paths() == dict.fromkeys(flaky, 1) | {"ok": 1}

    # A plain resume fetches nothing: the job is finished.
    again = run_cli(*command, cwd=tmp_path)
    assert again.code == 0, again.err
    assert paths() == dict.fromkeys(flaky, 1) | {"ok": 1}
    assert (tmp_path / "o.jsonl").read_bytes().splitlines() == written

    # --retry-failed: the 5xx, the 429 and the no-response URL, not the 4xx or the 200.
    retried = run_cli(*command, "--retry-failed", cwd=tmp_path)
    assert retried.code == 0, retried.err
    assert paths() == {503: 2, 500: 2, 429: 2, 404: 1, 410: 1, "ok": 1}
    # The first run's rows stay as they were; each refetched URL's new row follows them,
    # so the last row of a URL is how it ended.
    lines = (tmp_path / "o.jsonl").read_bytes().splitlines()
    assert lines[: len(written)] == written
    added = [orjson.loads(line) for line in lines[len(written) :]]
    assert sorted((r["url"], r["status"], r["error_kind"]) for r in added) == sorted(
        [(flaky[503], 200, None), (flaky[500], 200, None), (flaky[429], 200, None),
         (closed, None, "connect")]
    )  # fmt: skip

    # Now only the URL with no response is left to retry.
    last = run_cli(*command, "--retry-failed", cwd=tmp_path)
    assert last.code == 0, last.err
    assert paths() == {503: 2, 500: 2, 429: 2, 404: 1, 410: 1, "ok": 1}
    assert len((tmp_path / "o.jsonl").read_bytes().splitlines()) == len(lines) + 1


def test_help_says_which_urls_retry_failed_fetches_again(tmp_path: Path) -> None:
    result = run_cli("fetch", "--help", cwd=tmp_path)
    assert result.code == 0, result.err
    text = " ".join(result.out.split())
    assert "got no response" in text
    assert "5xx or 429" in text
    assert "4xx (other than 429)" in text
