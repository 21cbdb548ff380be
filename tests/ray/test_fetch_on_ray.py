"""``conveyor fetch --backend ray`` on a 2-node cluster: exactly once through a worker's
SIGKILL and the driver's, and per-host limits that hold across the cluster."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from .conftest import SiteThread, conveyor

SHARDS = "4"


def _urls(site: SiteThread, per_host: int, delay: float) -> list[str]:
    assert site.site is not None
    return [
        site.site.url(f"/page/{host}-{n}?delay={delay}", host=host)
        for n in range(per_host)
        for host in range(4)
    ]


def _write(path: Path, urls: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in urls))
    return path


def _merged_urls(tmp_path: Path, outdir: Path) -> Counter[str]:
    merged = tmp_path / "merged.jsonl"
    proc = conveyor("merge", str(outdir), "-o", str(merged), cwd=tmp_path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return Counter(orjson.loads(line)["url"] for line in merged.read_bytes().splitlines())


def _rows_in(part: Path) -> int:
    if not part.exists():
        return 0
    if part.suffix == ".db":
        try:
            db = sqlite3.connect(f"{part.as_uri()}?mode=ro", uri=True)
            try:
                return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error:
            return 0
    return part.stat().st_size


def _wait_for_a_busy_shard(outdir: Path, deadline: float) -> tuple[Path, int]:
    """A shard whose worker has written its PID and committed some rows (not all)."""
    while time.monotonic() < deadline:
        for folder in sorted((outdir / "_shards").glob("0*")):
            pid_file = folder / "worker.pid"
            part = outdir / f"part-{folder.name}{'.db' if outdir.suffix == '.db' else '.jsonl'}"
            if pid_file.exists() and not (folder / "done.json").exists() and _rows_in(part):
                return folder, int(pid_file.read_text())
        time.sleep(0.05)
    raise AssertionError("no shard got going in time")


@pytest.mark.parametrize("fmt", [".jsonl", ".db"])
def test_worker_killed_mid_shard_every_url_once(
    tmp_path: Path, ray_cluster: str, ray_site: SiteThread, fmt: str
) -> None:
    urls = _urls(ray_site, per_host=60, delay=0.05)
    source = _write(tmp_path / "urls.txt", urls)
    outdir = tmp_path / f"out{fmt}"
    driver = conveyor(
        "fetch", str(source), "-o", str(outdir), "--backend", "ray", "--address", ray_cluster,
        "--shards", SHARDS, "--per-host", "2", "-q", cwd=tmp_path,
    )  # fmt: skip
    folder, pid = _wait_for_a_busy_shard(outdir, time.monotonic() + 40)
    os.kill(pid, signal.SIGKILL)  # the shard's Ray worker, mid-shard
    _out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    assert (folder / "attempt-2").exists()  # Ray ran the shard again; it resumed
    manifest = orjson.loads((outdir / "_MANIFEST.json").read_bytes())
    assert manifest["records"] == len(urls)
    merged = _merged_urls(tmp_path, outdir)
    assert merged == Counter(urls)  # every URL exactly once


def test_driver_killed_then_run_again_every_url_once(
    tmp_path: Path, ray_cluster: str, ray_site: SiteThread
) -> None:
    urls = _urls(ray_site, per_host=60, delay=0.05)
    source = _write(tmp_path / "urls.txt", urls)
    outdir = tmp_path / "out.jsonl"
    args = ("fetch", str(source), "-o", str(outdir), "--backend", "ray", "--address",
            ray_cluster, "--shards", SHARDS, "--per-host", "2", "-q")  # fmt: skip
    driver = conveyor(*args, cwd=tmp_path)
    _wait_for_a_busy_shard(outdir, time.monotonic() + 40)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    assert not (outdir / "_MANIFEST.json").exists()
    # The job is unfinished: merge says so, in one line.
    merge = conveyor("merge", str(outdir), "-o", str(tmp_path / "m.jsonl"), cwd=tmp_path)
    _, err = merge.communicate(timeout=60)
    assert merge.returncode == 2
    assert "unfinished" in err
    assert "Traceback" not in err

    again = conveyor(*args, cwd=tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert _merged_urls(tmp_path, outdir) == Counter(urls)
    # A third run finds the job complete and runs nothing.
    third = conveyor(*args, cwd=tmp_path)
    out, err = third.communicate(timeout=60)
    assert third.returncode == 0, err
    assert "nothing to do" in out


def test_per_host_holds_across_the_cluster(
    tmp_path: Path, ray_cluster: str, ray_site: SiteThread
) -> None:
    assert ray_site.site is not None
    ray_site.site.stats.reset()
    urls = _urls(ray_site, per_host=30, delay=0.05)
    source = _write(tmp_path / "urls.txt", urls)
    outdir = tmp_path / "out.csv"
    driver = conveyor(
        "fetch", str(source), "-o", str(outdir), "--backend", "ray", "--address", ray_cluster,
        "--shards", SHARDS, "--per-host", "3", "--report", str(tmp_path / "r.html"),
        cwd=tmp_path,
    )  # fmt: skip
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    seen = ray_site.site.stats.max_in_flight
    assert set(seen) == {ray_site.site.host(i) for i in range(4)}
    assert max(seen.values()) <= 3  # --per-host, though shards ran on two nodes at once
    assert f"wrote {len(urls)} records" in out  # one summary for the whole job
    page = (tmp_path / "r.html").read_text()
    assert "<html" in page
    # The throughput chart is drawn from the shards' journals as they commit.
    chart = page[page.index("Throughput over time") :]
    assert "no data" not in chart[: chart.index("</svg>")]
    assert _merged_urls(tmp_path, outdir) == Counter(urls)
    # Each shard's last word for the live line: its records by outcome.
    told = Counter[str]()
    for index in range(int(SHARDS)):
        progress = outdir / "_shards" / f"{index:05d}" / "progress.json"
        if progress.exists():
            told.update(orjson.loads(progress.read_bytes())["outcomes"])
    assert told["ok"] == len(urls)
    assert told["4xx"] + told["5xx"] + told["failed"] == 0


def test_restart_removes_only_what_the_job_wrote(
    tmp_path: Path, ray_cluster: str, ray_site: SiteThread
) -> None:
    urls = _urls(ray_site, per_host=5, delay=0)
    source = _write(tmp_path / "urls.txt", urls)
    outdir = tmp_path / "out.csv"
    args = ("fetch", str(source), "-o", str(outdir), "--backend", "ray", "--address",
            ray_cluster, "--shards", "2", "-q")  # fmt: skip
    first = conveyor(*args, cwd=tmp_path)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    # The 4 hosts' slices: the site's port is new each time, so all may land in one shard.
    ran = re.search(r"\((\d) run now\)", out)
    assert ran is not None, out
    (outdir / "notes.txt").write_text("mine")
    (outdir / "mine").mkdir()
    (outdir / "mine" / "part-00000.csv").write_text("url\nmine\n")
    again = conveyor(*args, "--restart", cwd=tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert ran.group(0) in out  # begun again, not found complete
    assert (outdir / "notes.txt").read_text() == "mine"
    assert (outdir / "mine" / "part-00000.csv").read_text() == "url\nmine\n"
    assert _merged_urls(tmp_path, outdir) == Counter(urls)


def test_retry_failed_runs_the_failed_urls_of_finished_shards_again(
    tmp_path: Path, ray_cluster: str, ray_site: SiteThread
) -> None:
    assert ray_site.site is not None
    flaky = ray_site.site.url(f"/flaky/{tmp_path.name}?fail=1&status=503", host=1)
    urls = [*_urls(ray_site, per_host=3, delay=0), flaky]
    source = _write(tmp_path / "urls.txt", urls)
    outdir = tmp_path / "out.jsonl"
    args = ("fetch", str(source), "-o", str(outdir), "--backend", "ray", "--address",
            ray_cluster, "--shards", "2", "--retries", "0", "--no-adapt", "-q")  # fmt: skip
    # --no-adapt: the flaky URL's bare 503 would pause its host a minute and defer that
    # host's other URLs when they come after it (the order varies on a busy machine).
    first = conveyor(*args, cwd=tmp_path)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    again = conveyor(*args, "--retry-failed", cwd=tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "(1 run now)" in out  # the shard with the 503, not the other one
    merged = tmp_path / "merged.jsonl"
    merge = conveyor("merge", str(outdir), "-o", str(merged), cwd=tmp_path)
    _, err = merge.communicate(timeout=60)
    assert merge.returncode == 0, err
    rows = [orjson.loads(line) for line in merged.read_bytes().splitlines()]
    # As on one machine: the new row follows the old one.
    assert [r["status"] for r in rows if r["url"] == flaky] == [503, 200]
    assert Counter(r["url"] for r in rows if r["url"] != flaky) == Counter(urls[:-1])
