"""``Progress``: a live terminal display of a run, or plain progress lines when not a TTY.

The engine calls ``on_event`` on its event loop's thread, up to tens of thousands of times a
second, so ``on_event`` only updates a few fields. Rendering happens elsewhere: on rich's
``Live`` refresh thread (live mode), or at most once per ``plain_interval`` when a
``Tick`` arrives (plain mode). The render thread only reads: each ``Tick`` builds one
immutable ``ProgressView`` and swaps it in with a single assignment, so the renderer never
sees a half-updated state and no lock is taken on the hot path.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Literal, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._engine.events import Event, ItemRetrying, ItemStarted, RunFinished, RunStarted, Tick
from .._engine.stats import RunResult, RunStatistics, StageStatistics
from .._http.stats import FetchReport
from .health import StallLike, held_hosts, live_deferred, stall_of

Mode = Literal["auto", "live", "plain", "quiet"]

# Ticks come about 4 times a second: 21 of them span the last ~5 seconds, long enough to
# smooth out bursts and short enough to follow a change of pace.
_RATE_WINDOW = 21


@dataclass(frozen=True, slots=True)
class ProgressView:
    """What the display shows, as of the latest tick (or the end of the run).

    Attributes:
        stats: the latest engine statistics, None before the first tick.
        rate: input items taken in per second over the last few seconds.
        eta: seconds left, only when the source's total is known and items are moving.
        result: the final result once the run has finished.
        outcomes: counts to show instead of ok/failed, when the display was given a
            source of them (``conveyor fetch``: records by ok / 4xx / 5xx / failed).
    """

    stats: RunStatistics | None = None
    rate: float | None = None
    eta: float | None = None
    result: RunResult | None = None
    outcomes: Mapping[str, int] | None = None


def _outcome_pairs(view: ProgressView, ok: int, failed: int) -> list[tuple[str, int]]:
    """What the counters line starts with: the given outcomes, or ok and failed."""
    if view.outcomes:
        return list(view.outcomes.items())
    return [("ok", ok), ("failed", failed)]


def estimate(
    window: deque[tuple[float, int]], stats: RunStatistics, retrying: int = 0
) -> tuple[float, float | None]:
    """Rate (items taken in per second) over the window, and the ETA when the total is known.

    ``window`` holds ``(elapsed, admitted)`` pairs, oldest first, the newest being ``stats``.
    Items already taken in but still queued, in flight or waiting to retry count as work
    left: with bounded queues that can be hundreds of items, and leaving them out made the
    ETA run out well before the run did. Once the queues are full, back-pressure keeps the
    intake rate equal to the pipeline's throughput, so one rate serves both.
    """
    (t0, n0), (t1, n1) = window[0], window[-1]
    if t1 - t0 > 0:
        rate = (n1 - n0) / (t1 - t0)
    else:  # a single tick so far: the average since the start is all there is
        rate = stats.admitted / stats.elapsed if stats.elapsed > 0 else 0.0
    eta = None
    if stats.total is not None and rate > 0:
        unread = max(0, stats.total - stats.admitted - stats.skipped)
        inside = sum(st.queue_depth + st.in_flight for st in stats.stages) + retrying
        eta = (unread + inside) / rate
    return rate, eta


def clock(seconds: float) -> str:
    """``h:mm:ss``, for elapsed time and ETA."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _rate_text(rate: float | None) -> str:
    return "-/s" if rate is None else f"{rate:,.1f}/s" if rate < 100 else f"{rate:,.0f}/s"


# What holds a host back, in the live line's words (``health.held_hosts``'s reasons).
_HELD = {
    "paused": "paused by the server (429 / Retry-After)",
    "paused-beyond-cap": "paused beyond --max-pause, deferred",
    "breaker": "failing, breaker open",
    "quota": "rate-limit quota spent",
}


def held_text(held: Mapping[str, tuple[str, float]]) -> str:
    """Hosts held back, grouped by why, at most three named per reason."""
    by_reason: dict[str, list[tuple[str, float]]] = {}
    for host, (reason, left) in held.items():
        by_reason.setdefault(reason, []).append((host, left))
    parts = []
    for reason, hosts in by_reason.items():
        shown = ", ".join(f"{host} {left:.0f} s" for host, left in hosts[:3])
        more = f" and {len(hosts) - 3} more" if len(hosts) > 3 else ""
        parts.append(f"{_HELD.get(reason, reason)}: {shown}{more}")
    return "; ".join(parts)


def stall_text(stall: StallLike) -> str:
    """The stall watchdog's notice: the stage, its hosts and its oldest items' ages."""
    hosts = ", ".join(stall.hosts[:5]) or "-"
    oldest = ", ".join(f"{key} ({age:.0f} s)" for key, age in stall.oldest[:5])
    return (
        f"stalled: nothing finished for {stall.seconds:.0f} s in {stall.stage} "
        f"(hosts: {hosts}); oldest in flight: {oldest or '-'}"
    )


def _notices(stats: RunStatistics | None) -> list[tuple[str, str]]:
    """The live lines below the table: hosts held back and a stall, with their styles."""
    lines = []
    held = held_hosts(stats)
    if held:
        lines.append((held_text(held), "yellow"))
    stall = stall_of(stats)
    if stall is not None:
        lines.append((stall_text(stall), "bold red"))
    return lines


def plain_line(title: str, view: ProgressView, retrying: int) -> str:
    """One line of plain progress, for logs and pipes (no colour, no cursor movement)."""
    result = view.result
    if result is not None:
        ended = "interrupted" if result.interrupted else "done"
        counts = ", ".join(
            f"{name} {n:,}" for name, n in _outcome_pairs(view, result.results, result.failed)
        )
        return (
            f"{title}: {ended} in {result.wall_seconds:.1f} s: {result.items:,} items, "
            f"{counts}, filtered {result.filtered:,}, "
            f"skipped {result.skipped:,} ({result.items_per_second:,.1f} items/s)"
        )
    s = view.stats
    if s is None:
        return f"{title}: starting"
    taken = s.admitted + s.skipped
    if s.total:
        where = f"{taken:,}/{s.total:,} ({taken / s.total:.0%})"
    else:
        where = f"{taken:,} items"
    eta = f" ETA {clock(view.eta)}" if view.eta is not None else ""
    stages = "; ".join(f"{st.name} {_in_flight(st)}, {st.queue_depth} queued" for st in s.stages)
    line = (
        f"{title}: [{clock(s.elapsed)}] {where} {_rate_text(view.rate)}{eta} | "
        + " ".join(f"{name} {n:,}" for name, n in _outcome_pairs(view, s.results, s.failed))
        + f" retrying {retrying:,} "
        f"retries {sum(st.retried for st in s.stages):,}"
    )
    deferred = live_deferred(s)
    if deferred:
        line = f"{line} deferred {deferred:,}"
    line = f"{line} | {stages}" if stages else line
    return " | ".join([line, *(text for text, _ in _notices(s))])


def render(
    title: str, view: ProgressView, retrying: int, retries: int, notes: tuple[str, ...] = ()
) -> RenderableType:
    """The live display: a bar line, a counters line and one row per stage."""
    s = view.stats
    result = view.result
    if s is None and result is None:
        return Text(f"{title}  starting…", style="dim")
    if result is not None:
        total: float | None = (result.items + result.skipped) or 1
        taken = result.items + result.skipped
        ok, failed, filtered = result.results, result.failed, result.filtered
        skipped, elapsed, rate = result.skipped, result.wall_seconds, result.items_per_second
    else:
        assert s is not None
        total, taken = s.total, s.admitted + s.skipped
        ok, failed, filtered = s.results, s.failed, s.filtered
        skipped, elapsed, rate = s.skipped, s.elapsed, view.rate or 0.0
    head = Table.grid(expand=True, padding=(0, 1))
    head.add_column(no_wrap=True, style="bold")
    head.add_column(ratio=1)
    head.add_column(no_wrap=True, justify="right")
    if total:
        where = f"{taken:,}/{total:,.0f} {taken / total:>4.0%}"
    else:
        where = f"{taken:,} items"
    if result is not None:
        tail = f"{where}  {_rate_text(rate)}  {'interrupted' if result.interrupted else 'done'}"
    else:
        eta = f"ETA {clock(view.eta)}" if view.eta is not None else "ETA -:--:--"
        tail = f"{where}  {_rate_text(rate)}  {eta if total else ''}".rstrip()
    head.add_row(title, ProgressBar(total=total or None, completed=taken), tail)
    styles = {"ok": "green", "failed": "red", "4xx": "yellow", "5xx": "red"}
    parts: list[tuple[str, str] | str] = []
    for name, n in _outcome_pairs(view, ok, failed):
        style = styles.get(name, "") if n or name == "ok" else ""
        parts += [(f"{'   ' if parts else ''}{name} ", "dim"), (f"{n:,}", style)]
    counters = Text.assemble(
        *parts,
        ("   retrying ", "dim"),
        (f"{retrying:,}", "yellow" if retrying else ""),
        ("   retries ", "dim"),
        f"{retries:,}",
        ("   filtered ", "dim"),
        f"{filtered:,}",
        ("   skipped ", "dim"),
        f"{skipped:,}",
        ("   elapsed ", "dim"),
        clock(elapsed),
    )
    deferred = live_deferred(s) if result is None else 0
    if deferred:  # items left for the next run (after the run, the summary says why)
        counters.append_text(Text.assemble(("   deferred ", "dim"), (f"{deferred:,}", "yellow")))
    stages = result.stages if result is not None else s.stages if s is not None else ()
    table = Table(box=None, pad_edge=False, header_style="dim", padding=(0, 2, 0, 0))
    for name in ("stage", "on", "workers", "in flight", "queue", "ok", "failed", "retried"):
        table.add_column(name, justify="left" if name in ("stage", "on") else "right")
    table.add_column("p50 ms", justify="right")
    for st in stages:
        table.add_row(
            st.name,
            st.place,
            str(st.workers),
            # Once the run is over nothing is in flight; the last queue holds only its end marker.
            "-" if result is not None else _in_flight(st, short=True),
            "-" if result is not None else f"{st.queue_depth:,}",
            f"{st.succeeded:,}",
            f"{st.failed:,}",
            f"{st.retried:,}",
            "-" if st.p50 is None else f"{st.p50 * 1000:,.1f}",
        )
    lines: list[RenderableType] = [head, counters, table]
    if result is None:
        lines.extend(Text(text, style=style) for text, style in _notices(s))
    lines.extend(Text(note, style="yellow") for note in notes)
    return Group(*lines)


def _in_flight(st: StageStatistics, *, short: bool = False) -> str:
    """A stage's items in progress. A fetch's are its requests out, and apart the items
    waiting (for their host, in the fetch's waiting room, or for a retry): counted
    together, a held host showed as "1,120 in flight" at ``--concurrency 96``."""
    report = st.details
    if isinstance(report, FetchReport) and st.in_flight > report.in_flight:
        waiting = st.in_flight - report.in_flight
        if short:
            return f"{report.in_flight:,} +{waiting:,} waiting"
        return f"{report.in_flight:,} in flight, {waiting:,} waiting"
    return f"{st.in_flight:,}" if short else f"{st.in_flight:,} in flight"


class Progress:
    """Shows a run's progress: live on a terminal, plain lines otherwise, or nothing.

    Use it as a context manager around the run, and pass it as an observer::

        with Progress() as progress:
            result = pipeline.run(observers=(progress,))

    Args:
        console: the rich console for live mode; default a console on stderr, so results
            written to stdout are never mixed with the display.
        mode: ``"live"``, ``"plain"``, ``"quiet"``, or ``"auto"``: live when the console is
            a terminal, plain lines otherwise.
        plain_interval: seconds of run time between two plain lines. A last line is always
            written when the run finishes.
        title: the label at the start of the display and of each plain line.
        stream: where plain lines go; default the console's file when a console is given,
            else ``sys.stderr`` (looked up when writing, so redirections are honoured).
        refresh_per_second: how often the live display redraws.
        outcomes: a function giving counts to show instead of "ok" and "failed" (called at
            each tick on the loop's thread; ``RunReport.outcomes`` for fetch records).
    """

    wants_item_events = False  # see EventBus.items: neither ItemStarted nor ItemFinished

    def __init__(
        self,
        *,
        console: Console | None = None,
        mode: Mode = "auto",
        plain_interval: float = 5.0,
        title: str = "conveyor",
        stream: TextIO | None = None,
        refresh_per_second: float = 4.0,
        outcomes: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        if mode not in ("auto", "live", "plain", "quiet"):
            raise ValueError(f"mode must be 'auto', 'live', 'plain' or 'quiet', not {mode!r}")
        if plain_interval < 0:
            raise ValueError(f"plain_interval must be >= 0, not {plain_interval!r}")
        self._console_given = console
        self.console = console if console is not None else Console(stderr=True)
        if mode == "auto":
            terminal = self.console.is_terminal and not self.console.is_dumb_terminal
            mode = "live" if terminal else "plain"
        self.mode: Literal["live", "plain", "quiet"] = mode
        self.title = title
        self._plain_interval = plain_interval
        self._stream = stream
        self._refresh = refresh_per_second
        self._live: Live | None = None
        self._outcomes = outcomes
        self._notes: tuple[str, ...] = ()  # lines from note(), shown until the run ends
        self._reset()

    def _counted(self) -> Mapping[str, int] | None:
        return self._outcomes() if self._outcomes is not None else None

    def note(self, text: str) -> None:
        """Show ``text`` from now on: below the live display, or once as a plain line.
        Callable from the loop's thread (an observer reacting to a tick)."""
        if self.mode == "quiet" or text in self._notes:
            return
        self._notes = (*self._notes, text)
        if self.mode == "plain":
            self._write(f"{self.title}: {text}")

    def _reset(self) -> None:
        self._view = ProgressView()
        self._window: deque[tuple[float, int]] = deque(maxlen=_RATE_WINDOW)
        self._retrying = 0
        self._retries = 0
        self._next_line = self._plain_interval
        self._notes = ()

    # -- the observer -------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Update the state the display reads; O(1), never renders in live mode."""
        if self.mode == "quiet":
            return
        # Exact-type checks, the commonest event first: this runs once per item event.
        if type(event) is ItemStarted:
            if event.attempt > 1 and self._retrying > 0:
                self._retrying -= 1  # the retry's wait is over: it is running again
        elif type(event) is Tick:
            stats = event.statistics
            # Every stage's retries, the fetch's own included (counted by the engine).
            self._retries = sum(stage.retried for stage in stats.stages)
            self._window.append((stats.elapsed, stats.admitted))
            rate, eta = estimate(self._window, stats, self._retrying)
            self._view = ProgressView(stats, rate, eta, outcomes=self._counted())
            if self.mode == "plain" and stats.elapsed >= self._next_line:
                self._next_line = stats.elapsed + self._plain_interval
                self._write(plain_line(self.title, self._view, self._retrying))
        elif type(event) is ItemRetrying:
            self._retrying += 1
        elif type(event) is RunStarted:
            self._reset()
        elif type(event) is RunFinished:
            self._retrying = 0
            self._retries = sum(stage.retried for stage in event.result.stages)
            self._view = ProgressView(
                self._view.stats, None, None, event.result, outcomes=self._counted()
            )
            if self.mode == "plain":
                self._write(plain_line(self.title, self._view, 0))

    def _write(self, line: str) -> None:
        stream: IO[str]
        if self._stream is not None:
            stream = self._stream
        elif self._console_given is not None:
            stream = self._console_given.file
        else:
            stream = sys.stderr
        stream.write(line + "\n")
        stream.flush()

    # -- reading and rendering ----------------------------------------------------------

    @property
    def view(self) -> ProgressView:
        """The latest snapshot (what the display shows)."""
        return self._view

    @property
    def retrying(self) -> int:
        """Items waiting to be tried again right now."""
        return self._retrying

    @property
    def retries(self) -> int:
        """Retries so far, all stages together."""
        return self._retries

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Called on rich's refresh thread: reads one immutable view and two ints.
        yield render(self.title, self._view, self._retrying, self._retries, self._notes)

    # -- the live display's lifetime ----------------------------------------------------

    def __enter__(self) -> Progress:
        if self.mode == "live" and self._live is None:
            self._live = Live(
                self,
                console=self.console,
                refresh_per_second=self._refresh,
                transient=False,
                # stdout may carry results (``-o -``): never route it into the display.
                redirect_stdout=False,
                redirect_stderr=self._console_given is None,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            # rich signals its refresh thread to stop but does not wait for it; join it so
            # no thread of ours outlives the ``with`` block (a rule the run itself keeps).
            refresher = getattr(live, "_refresh_thread", None)
            live.stop()  # draws the final state once more and restores the cursor
            if isinstance(refresher, threading.Thread):
                refresher.join(timeout=2.0)
