"""The politeness and tail flags, defined once for ``conveyor fetch`` and ``conveyor crawl``.

``--no-adapt``, ``--refuse-403``, ``--min-rate`` and ``--max-pause`` are the client's
(``FetchConfig``: ``adapt``, ``refuse_403``, ``min_rate``, ``max_pause``); ``--finish-at``
and ``--deadline`` are the run's (``Pipeline.run(finish_at=, deadline=)``). A flag left at
its default is not passed on at all, so the defaults stay the library's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .errors import fail
from .options import BYTE_RATE, DURATION, PERCENT

F = TypeVar("F", bound=Callable[..., Any])

# The option names (click's) of these flags: ``conveyor crawl`` takes them from fetch's.
NAMES = ("no_adapt", "refuse_403", "min_rate", "max_pause", "finish_at", "deadline")

# FetchConfig's defaults: a flag at its default is not passed, so the library decides.
_DEFAULT_MIN_RATE = 1024.0
_DEFAULT_MAX_PAUSE = 86_400.0


def polite_options(command: F) -> F:
    """Add the flags to a click command (applied bottom-up, so listed in reverse)."""
    options = [
        click.option(
            "--no-adapt",
            is_flag=True,
            help="Keep --per-host and --host-rate fixed instead of adapting each host's "
            "concurrency and rate to how it answers (they are then ceilings).",
        ),
        click.option(
            "--refuse-403",
            is_flag=True,
            help="Take a 403 as a refusal (slow down), as some sites block with it.",
        ),
        click.option(
            "--min-rate",
            type=BYTE_RATE,
            default="1KiB/s",
            show_default=True,
            help="Slowest transfer, averaged over 30 s, before an attempt is given up; 0: off.",
        ),
        click.option(
            "--max-pause",
            type=DURATION,
            default="24h",
            show_default=True,
            help="Longest pause a site may ask for (Retry-After); beyond it the host's URLs "
            "are deferred to the next run.",
        ),
        click.option(
            "--finish-at",
            type=PERCENT,
            help="Once this share of the input has ended (e.g. 99%), defer what is left "
            "on hosts that would hold the run's end, and end; run again to finish them.",
        ),
        click.option(
            "--deadline",
            type=DURATION,
            help="End the run after this long (30s, 10m, 2h): what has not been fetched "
            "is deferred to the next run.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def polite_fetch_options(options: dict[str, Any]) -> dict[str, Any]:
    """``FetchConfig``'s options from the flags, only those not at their defaults."""
    found: dict[str, Any] = {}
    if options.get("no_adapt"):
        found["adapt"] = False
    if options.get("refuse_403"):
        found["refuse_403"] = True
    min_rate = options.get("min_rate", _DEFAULT_MIN_RATE)
    if min_rate != _DEFAULT_MIN_RATE:
        found["min_rate"] = min_rate  # None: off
    max_pause = options.get("max_pause", _DEFAULT_MAX_PAUSE)
    if max_pause is not None and max_pause != _DEFAULT_MAX_PAUSE:
        found["max_pause"] = max_pause
    return found


def run_options_of(options: dict[str, Any]) -> dict[str, Any]:
    """``Pipeline.run``'s options from the flags: ``deadline`` in seconds of the run's
    time, ``finish_at`` a share of the input (0.99 for 99%); only those given."""
    found: dict[str, Any] = {}
    if options.get("deadline") is not None:
        found["deadline"] = options["deadline"]
    if options.get("finish_at") is not None:
        found["finish_at"] = options["finish_at"]
    return found


def refuse_on_ray(options: dict[str, Any]) -> None:
    """``--backend ray`` runs shards that each end on their own: a deadline or a share of
    the whole input is not theirs to keep (yet)."""
    given = [flag for flag, name in (("--finish-at", "finish_at"), ("--deadline", "deadline"))
             if options.get(name) is not None]  # fmt: skip
    if given:
        fail(f"{' and '.join(given)}: not with --backend ray yet; run it locally, or drop it")
