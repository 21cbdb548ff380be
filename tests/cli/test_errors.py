"""Bad input gets one line that says what is wrong and how to fix it, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Site, run_cli, write_urls


def assert_one_line_error(result: object, *needles: str) -> None:
    code, err = result.code, result.err  # type: ignore[attr-defined]
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("conveyor: error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_missing_input(tmp_path: Path) -> None:
    result = run_cli("fetch", "nope.txt", "-o", "out.jsonl", cwd=tmp_path)
    assert_one_line_error(result, "nope.txt", "does not exist")


def test_unreadable_input(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    locked = tmp_path / "locked.txt"
    locked.write_text("http://127.0.0.1/\n")
    locked.chmod(0)
    assert_one_line_error(run_cli("fetch", "locked.txt", "-o", "o.jsonl", cwd=tmp_path), "read")


def test_empty_input(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    result = run_cli("fetch", "empty.txt", "-o", "out.jsonl", cwd=tmp_path)
    assert_one_line_error(result, "empty.txt", "no URLs")
    assert not (tmp_path / "out.jsonl").exists()


def test_unwritable_output(tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli("fetch", "urls.txt", "-o", "no/such/dir/out.jsonl", cwd=tmp_path)
    assert_one_line_error(result, "does not exist", "create it")


def test_unknown_output_format(tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli("fetch", "urls.txt", "-o", "out.xlsx", cwd=tmp_path)
    assert_one_line_error(result, ".jsonl")


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--rate", "fast", "20/s"),
        ("--concurrency", "0", "--concurrency"),
        ("--max-bytes", "lots", "50MiB"),
        ("--header", "no-colon", "Accept: text/html"),
        ("--process", "nocolon", "module:function"),
    ],
)
def test_malformed_flag_values(tmp_path: Path, flag: str, value: str, needle: str) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli("fetch", "urls.txt", "-o", "out.jsonl", flag, value, cwd=tmp_path)
    assert_one_line_error(result, needle)


def test_process_that_cannot_be_imported(tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "--process", "nosuchmodule:fn", cwd=tmp_path
    )
    assert_one_line_error(result, "nosuchmodule", "PYTHONPATH")


def test_function_that_cannot_run_on_processes(tmp_path: Path) -> None:
    (tmp_path / "lambdas.py").write_text("score = lambda record: {}\n")
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli(
        "fetch", "urls.txt", "-o", "out.jsonl", "--process", "lambdas:score",
        "--on", "processes", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "module level")


def test_a_journal_of_another_job_is_refused(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "a.txt", [site.url("/page/1")])
    write_urls(tmp_path / "b.txt", [site.url("/page/2"), site.url("/page/3")])
    first = run_cli("fetch", "a.txt", "-o", "out.jsonl", "-q", "--journal", "j.db", cwd=tmp_path)
    assert first.code == 0, first.err
    second = run_cli("fetch", "b.txt", "-o", "out.jsonl", "-q", "--journal", "j.db", cwd=tmp_path)
    assert_one_line_error(second, "--restart")
