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


def _tick(report: object) -> object:
    from conveyor._engine.events import Tick
    from conveyor._engine.stats import RunStatistics, StageStatistics

    stage = StageStatistics(
        name="fetch", place="loop", workers=100, started=10, succeeded=4, failed=0,
        filtered=0, retried=0, in_flight=4, queue_depth=50, busy_seconds=1.0,
        abandoned_threads=0, p50=None, p95=None, p99=None, details=report,  # type: ignore[arg-type]
    )  # fmt: skip
    stats = RunStatistics(
        elapsed=1.0, total=100, admitted=60, skipped=0, results=4, failed=0, filtered=0,
        stages=(stage,),
    )  # fmt: skip
    return Tick(stats)


def test_with_the_controller_the_hint_needs_a_host_at_the_ceiling() -> None:
    """A host the controller cut down (refusals, slowness) would not go faster for a
    higher ceiling: no hint then; one whose limit stands at its highest: the hint."""

    from conveyor._cli.hints import PerHostHint
    from conveyor._http.host_report import HostReport, Step
    from conveyor._http.stats import FetchReport

    def report(*limits: int) -> FetchReport:
        steps = tuple(Step(float(at), limit, None) for at, limit in enumerate(limits))
        host = HostReport("a:80", requests=10, ok=10, timeline=steps)
        return FetchReport(  # type: ignore[call-arg]
            requests=10, in_flight=4, concurrency=100, per_host=8, waiting_for_host=50,
            hosts={"a:80": host},
        )  # fmt: skip

    held_low = PerHostHint()
    for _ in range(8):
        held_low.on_event(_tick(report(2, 8, 4)))  # grew, then cut down  # type: ignore[arg-type]
    assert held_low.message is None
    at_ceiling = PerHostHint()
    for _ in range(8):
        at_ceiling.on_event(_tick(report(2, 4, 8)))  # type: ignore[arg-type]
    assert at_ceiling.message is not None
    assert at_ceiling.message.startswith("--per-host 8 is what holds this job back")
