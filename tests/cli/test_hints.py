"""The per-host hint: given when, and only when, the per-host limit holds the job back."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Site, run_cli, write_urls


@pytest.mark.parametrize("loops", ["1", "2"])
def test_the_hint_names_the_per_host_limit_when_it_holds_the_job_back(
    site: Site, tmp_path: Path, loops: str
) -> None:
    # One host, 400 pages of 50 ms: with 4 a host and 100 in all, 96 slots stand idle.
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}?delay=0.05") for i in range(400)])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "--concurrency", "100", "--per-host", "4",
        "--loops", loops, cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "hint: --per-host 4 is what holds this job back" in result.out
    assert "Raise --per-host" in result.out
    assert "polite" in result.out
    # Without a terminal the live note is one plain line, once.
    assert result.err.count("--per-host 4 is what holds this job back") == 1


def test_no_hint_when_the_per_host_limit_is_not_what_holds_it_back(
    site: Site, tmp_path: Path
) -> None:
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}?delay=0.05") for i in range(400)])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "--concurrency", "20", "--per-host", "20",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "hint:" not in result.out
    assert "per-host" not in result.err
