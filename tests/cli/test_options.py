"""The remaining ``conveyor fetch`` options, each against the live test site."""

from __future__ import annotations

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
    flaky = site.url("/flaky/cli-opt?fail=2")
    write_urls(tmp_path / "urls.txt", [flaky, site.url("/page/7")])
    first = run_cli("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "0", cwd=tmp_path)
    assert first.code == 0, first.err
    assert records(tmp_path / "o.jsonl")[flaky]["status"] == 503
    # The same command again: all done, nothing refetched.
    again = run_cli("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "0", cwd=tmp_path)
    assert again.code == 0, again.err
    assert len((tmp_path / "o.jsonl").read_bytes().splitlines()) == 2
    # A 503 is a response (the user decides), so it is done, not failed; --restart refetches.
    restarted = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--retries", "1", "--restart", cwd=tmp_path
    )
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
