"""``conveyor fetch`` end to end: records, formats, options and the user's stage."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import orjson
import pytest

from .conftest import Site, run_cli, write_urls


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_fetch_writes_one_record_per_url(site: Site, tmp_path: Path) -> None:
    urls = [site.url(f"/page/{i}") for i in range(30)]
    lines = ["# a comment", "", *urls, "not a url", site.url("/status/404")]
    write_urls(tmp_path / "urls.txt", lines)
    result = run_cli("fetch", "urls.txt", "-o", "out.jsonl", "-q", cwd=tmp_path)
    assert result.code == 0, result.err
    records = read_jsonl(tmp_path / "out.jsonl")
    assert len(records) == 32
    by_url = {r["url"]: r for r in records}
    page = by_url[site.url("/page/3")]
    assert page["status"] == 200
    assert page["title"] == "Page 3"
    assert isinstance(page["sha256"], str)
    assert len(page["sha256"]) == 64
    assert page["error_kind"] is None
    assert by_url["not a url"]["error_kind"] == "bad-url"
    assert by_url[site.url("/status/404")]["status"] == 404
    assert (tmp_path / "out.jsonl.journal").exists()


@pytest.mark.parametrize("suffix", ["csv", "parquet", "db"])
def test_output_format_follows_the_extension(site: Site, tmp_path: Path, suffix: str) -> None:
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}") for i in range(12)])
    result = run_cli("fetch", "urls.txt", "-o", f"out.{suffix}", "-q", cwd=tmp_path)
    assert result.code == 0, result.err
    out = tmp_path / f"out.{suffix}"
    if suffix == "csv":
        with out.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        urls = [row["url"] for row in rows]
    elif suffix == "parquet":
        import pyarrow.dataset as ds

        urls = ds.dataset(str(out)).to_table().column("url").to_pylist()
    else:
        with sqlite3.connect(out) as db:
            table = db.execute("select name from sqlite_master where type='table' "
                               "and name not like 'sqlite_%'").fetchone()[0]  # fmt: skip
            urls = [row[0] for row in db.execute(f'select url from "{table}"')]
        db.close()
    assert sorted(urls) == sorted(site.url(f"/page/{i}") for i in range(12))


def test_stdout_output_and_stdin_input(site: Site, tmp_path: Path) -> None:
    import subprocess
    import sys

    urls = "".join(site.url(f"/page/{i}") + "\n" for i in range(5))
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", "fetch", "-", "-o", "-", "-q"],
        input=urls,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(r["url"] for r in records) == sorted(urls.split())


def test_process_stage_merges_its_fields(site: Site, tmp_path: Path) -> None:
    (tmp_path / "mystage.py").write_text(
        "def score(record):\n"
        "    return {'body_len': len(record['body']), 'shout': (record['title'] or '').upper()}\n"
    )
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}") for i in range(8)])
    for on in ("threads", "processes"):
        result = run_cli(
            "fetch", "urls.txt", "-o", f"{on}.jsonl", "-q", "--no-journal",
            "--process", "mystage:score", "--on", on, "--workers", "2", cwd=tmp_path,
        )  # fmt: skip
        assert result.code == 0, result.err
        records = read_jsonl(tmp_path / f"{on}.jsonl")
        assert len(records) == 8
        assert all(r["shout"].startswith("PAGE ") and r["body_len"] > 0 for r in records)
        assert all("body" not in r for r in records)


def test_save_bodies_and_report(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}") for i in range(6)])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "--save-bodies", "bodies",
        "--report", "report.html", "-q", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    saved = list((tmp_path / "bodies").rglob("*"))
    assert len([p for p in saved if p.is_file()]) == 6
    records = read_jsonl(tmp_path / "out.jsonl")
    assert all(r["title"] and r["title"].startswith("Page") for r in records)
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 4


def test_options_reach_the_client(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", [site.url("/echo")])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "-q", "--header", "X-Probe: 42",
        "--user-agent", "probe/1.0", "--process", "echoed:headers", cwd=tmp_path,
        env={},
    )  # fmt: skip
    assert result.code == 2  # no such module yet: a clear error, see test_errors
    (tmp_path / "echoed.py").write_text(
        "import json\n"
        "def headers(record):\n"
        "    sent = json.loads(record['body'])['headers']\n"
        "    return {'probe': sent.get('X-Probe'), 'agent': sent.get('User-Agent')}\n"
    )
    result = run_cli(
        "fetch", "urls.txt", "-o", "out2.jsonl", "-q", "--header", "X-Probe: 42",
        "--user-agent", "probe/1.0", "--process", "echoed:headers", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    (record,) = read_jsonl(tmp_path / "out2.jsonl")
    assert (record["probe"], record["agent"]) == ("42", "probe/1.0")
