"""Running a fetch job with a live display, a summary, an optional report, and exit codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rich.console import Console

from .._engine.ports import Sink
from .._engine.stats import RunResult
from .._errors import ConveyorError, JobMismatchError, JournalError, RunInterrupted, SinkError
from .._observe import Progress, RunReport
from .._observe.summary import summary_console
from .ending import deferred_line, ended_code
from .errors import INTERRUPTED_EXIT, USAGE_EXIT, show_error
from .hints import PerHostHint
from .record import record_host


class Job(Protocol):
    """A job the command line runs with a display: ``conveyor fetch``'s, ``crawl``'s."""

    output: str
    journal: str | None

    @property
    def label(self) -> str: ...

    def make_sink(self, on_rows: Callable[[Sequence[dict[str, Any]]], None]) -> Sink: ...

    def run(self, sink: Sink, observers: tuple[Any, ...]) -> RunResult: ...

    def finish_report(self, report: RunReport, result: RunResult) -> None: ...


def run_with_display(
    job: Job,
    *,
    report: str | None,
    quiet: bool,
    title: str = "conveyor fetch",
    hints: bool = True,
) -> int:
    """Run ``job``; return the process exit code (``ended_code``: 0 done, 75 done but
    for deferred items, 2 usage error, 130 interrupted).

    ``hints``: name the flag to change when a setting holds the job back (the demo, whose
    settings are not the user's flags, has none)."""
    # With -o - the records own stdout; everything for people goes to stderr.
    console = summary_console(stderr=job.output == "-")  # not cut at 80 columns in a log
    progress_console = Console(stderr=True)
    run_report = RunReport()

    def tally(rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            run_report.add_record(
                status=row["status"],
                host=record_host(row),
                error_kind=row["error_kind"],
                depth=row.get("depth"),
            )

    sink = job.make_sink(tally)
    interrupted = False
    per_host = PerHostHint()  # given the display's note() once the display is up
    try:
        with Progress(
            console=progress_console,
            mode="quiet" if quiet else "auto",
            title=title,
            outcomes=run_report.outcomes,  # records by ok / 4xx / 5xx / failed, live
        ) as progress:
            per_host = PerHostHint(tell=progress.note)
            observers = (progress, run_report, per_host) if hints else (progress, run_report)
            result = job.run(sink, observers)
    except RunInterrupted as stop:
        result = stop.result
        interrupted = True
    except JobMismatchError as exc:
        show_error(str(exc))
        return USAGE_EXIT
    except (JournalError, SinkError) as exc:
        show_error(str(exc))
        return USAGE_EXIT if isinstance(exc, JournalError) else 1
    except ConveyorError as exc:
        show_error(str(exc))
        return USAGE_EXIT
    job.finish_report(run_report, result)
    if not quiet or interrupted:
        console.print(run_report.summary_table(result))
    if per_host.message is not None:
        console.print(f"hint: {per_host.message}", style="yellow")
    if report:
        run_report.write_html(report, result, title=f"{title}: {job.label}")
        console.print(f"report: {report}")
    if interrupted:
        hint = (
            "run the same command again to resume" if job.journal else "(no journal: cannot resume)"
        )
        console.print(f"interrupted after {result.results + result.failed:,} URLs; {hint}")
        return INTERRUPTED_EXIT
    if job.output != "-":
        console.print(f"wrote {result.results + result.failed:,} records to {job.output}")
    line = deferred_line(result, resumable=job.journal is not None)
    if line:
        console.print(line, style="yellow")
    return ended_code(result, interrupted=False)
