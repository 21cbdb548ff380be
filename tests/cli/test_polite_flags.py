"""The politeness and tail flags: parsed with one-line errors, passed on as the library's
options (only when not at their defaults), refused with --backend ray where they cannot
hold, and the exit code of a run that ended with deferred items."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import orjson
import pytest

import conveyor as cv
from conveyor._cli.crawl import crawl_command
from conveyor._cli.ending import deferred_line, ended_code
from conveyor._cli.errors import DEFERRED_EXIT, INTERRUPTED_EXIT
from conveyor._cli.fetch import fetch_command, fetch_options_of
from conveyor._cli.options import BYTE_RATE, DURATION, PERCENT
from conveyor._cli.polite import run_options_of
from conveyor._engine.stats import RunResult
from conveyor._http.config import FetchConfig

from .conftest import Site, run_cli, write_urls

POLITE_FLAGS = ("--no-adapt", "--refuse-403", "--min-rate", "--max-pause", "--finish-at",
                "--deadline")  # fmt: skip


def _parsed(*args: str) -> dict[str, object]:
    """The options ``conveyor fetch`` parses from ``args`` (click's own parsing)."""
    ctx = fetch_command.make_context("fetch", ["in.txt", "-o", "o.jsonl", *args])
    return dict(ctx.params)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0), ("45", 45.0),
     ("1.5h", 5400.0), ("250ms", 0.25)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize(("text", "share"), [("99%", 0.99), ("100%", 1.0), ("0.5", 0.5)])
def test_shares(text: str, share: float) -> None:
    assert PERCENT.convert(text, None, None) == pytest.approx(share)


@pytest.mark.parametrize(
    ("text", "rate"), [("1KiB/s", 1024.0), ("1KiB", 1024.0), ("500B/s", 500.0), ("0", None)]
)
def test_byte_rates(text: str, rate: float | None) -> None:
    assert BYTE_RATE.convert(text, None, None) == rate


def test_defaults_pass_nothing_on_so_the_library_decides() -> None:
    options = _parsed()
    given = fetch_options_of(options)
    assert not {"adapt", "refuse_403", "min_rate", "max_pause"} & set(given)
    assert run_options_of(options) == {}
    # The CLI's defaults are FetchConfig's own, where it has them.
    fields = {f.name: f.default for f in dataclasses.fields(FetchConfig)}
    for name, default in (("min_rate", 1024.0), ("max_pause", 86_400.0)):
        if name in fields:
            assert fields[name] == default, name


def test_flags_map_to_the_fetch_and_run_options() -> None:
    options = _parsed(
        "--no-adapt", "--refuse-403", "--min-rate", "0", "--max-pause", "10m",
        "--finish-at", "99%", "--deadline", "30m",
    )  # fmt: skip
    given = fetch_options_of(options)
    assert given["adapt"] is False
    assert given["refuse_403"] is True
    assert given["min_rate"] is None  # 0: off
    assert given["max_pause"] == 600.0
    assert run_options_of(options) == {"deadline": 1800.0, "finish_at": pytest.approx(0.99)}
    assert fetch_options_of(_parsed("--min-rate", "4KiB/s"))["min_rate"] == 4096.0


def test_crawl_takes_the_same_flags_from_one_definition() -> None:
    fetch_params = {p.name: p for p in fetch_command.params}
    crawl_params = {p.name: p for p in crawl_command.params}
    for flag in POLITE_FLAGS:
        name = flag.lstrip("-").replace("-", "_")
        assert crawl_params[name] is fetch_params[name], flag


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--deadline", "soon"], "write it like 30s, 10m, 2h"),
        (["--deadline", "0s"], "write it like 30s, 10m, 2h"),
        (["--max-pause", "-5"], "write it like 30s, 10m, 2h"),
        (["--finish-at", "150%"], "write it like 99%"),
        (["--finish-at", "most"], "write it like 99%"),
        (["--min-rate", "fast"], "write it like 1KiB/s"),
    ],
)
def test_bad_values_are_one_line_naming_the_fix(tmp_path: Path, args: list[str], says: str) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/x"])
    result = run_cli("fetch", "urls.txt", "-o", "o.jsonl", *args, cwd=tmp_path)
    assert result.code == 2
    assert says in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("command", ["fetch", "crawl"])
def test_tail_flags_are_refused_with_ray(tmp_path: Path, command: str) -> None:
    write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/x"])
    target = "urls.txt" if command == "fetch" else "http://127.0.0.1:9/"
    result = run_cli(
        command, target, "-o", "parts", "--backend", "ray", "--finish-at", "99%", cwd=tmp_path
    )
    assert result.code == 2
    assert "--finish-at: not with --backend ray yet" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err


def _a_real_result() -> RunResult:
    return cv.Pipeline(range(5)).map(lambda x: x + 1).run([])


def test_a_run_that_ended_exits_0_and_an_interrupted_one_130() -> None:
    result = _a_real_result()
    assert ended_code(result, interrupted=False) == 0
    assert ended_code(result, interrupted=True) == INTERRUPTED_EXIT
    assert deferred_line(result, resumable=True) is None


def test_deferred_items_exit_75_and_say_why() -> None:
    result = dataclasses.replace(
        _a_real_result(), deferred=5, deferred_by_reason={"breaker": 3, "tail": 2}
    )
    assert ended_code(result, interrupted=False) == DEFERRED_EXIT == 75
    # Interrupted wins: the journal resumes it either way, and 130 says why it stopped.
    assert ended_code(result, interrupted=True) == INTERRUPTED_EXIT
    line = deferred_line(result, resumable=True)
    assert line is not None
    assert line.startswith("deferred 5 URLs (host failing (breaker open): 3")
    assert line.endswith("run the same command again to finish them")


def test_items_a_deadline_left_unread_exit_75_too() -> None:
    result = dataclasses.replace(_a_real_result(), unread=7)
    assert ended_code(result, interrupted=False) == DEFERRED_EXIT
    line = deferred_line(result, resumable=False)
    assert line == (
        "7 URLs not read (the deadline came first); no journal: give one (drop "
        "--no-journal) to finish them in a second run"
    )


def test_the_help_lists_the_flags() -> None:
    for command in (fetch_command, crawl_command):
        text = command.get_help(click.Context(command))
        for flag in POLITE_FLAGS:
            assert flag in text, (command.name, flag)


def test_a_fetch_with_the_flags_at_their_defaults_runs_as_before(
    site: Site, tmp_path: Path
) -> None:
    """The defaults pass nothing on, so a run works before and after the client has them."""
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}") for i in range(5)])
    result = run_cli(
        "fetch", "urls.txt", "-o", "o.jsonl", "-q", "--max-pause", "24h", "--min-rate",
        "1KiB/s", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = [orjson.loads(line) for line in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    assert sorted(r["status"] for r in rows) == [200] * 5


def test_no_adapt_runs_with_fixed_limits(site: Site, tmp_path: Path) -> None:
    write_urls(tmp_path / "urls.txt", [site.url(f"/page/{i}") for i in range(3)])
    result = run_cli("fetch", "urls.txt", "-o", "o.jsonl", "-q", "--no-adapt", cwd=tmp_path)
    assert result.code == 0, result.err
    assert len((tmp_path / "o.jsonl").read_bytes().splitlines()) == 3
