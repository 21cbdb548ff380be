"""How a run that ended is told: the exit code, and the closing line on deferred items.

The exit codes (``docs/cli.md``): 0 everything ended (failed URLs included: each has its
record), 75 the run ended with items deferred to the next run, 130 interrupted, 2 a
usage error, 1 the output failed.
"""

from __future__ import annotations

from .._engine.stats import RunResult
from .._observe.health import deferred_by_reason, deferred_count, unread_count
from .._observe.host_rows import reason_text
from .errors import DEFERRED_EXIT, INTERRUPTED_EXIT


def ended_code(result: RunResult, *, interrupted: bool) -> int:
    """The exit code of a run that ended: 130 interrupted (whatever else), 75 when items
    were deferred to the next run, else 0, failures or not (a failed URL has its record:
    it ended). A script may run the command again for as long as it exits 75."""
    if interrupted:
        return INTERRUPTED_EXIT
    return DEFERRED_EXIT if deferred_count(result) or unread_count(result) else 0


def deferred_line(result: RunResult, *, resumable: bool) -> str | None:
    """The closing line for deferred items (and those a deadline left unread): how many,
    why, and what to do."""
    count, unread = deferred_count(result), unread_count(result)
    if not count and not unread:
        return None
    reasons = ", ".join(
        f"{reason_text(reason)}: {n:,}"
        for reason, n in sorted(deferred_by_reason(result).items(), key=lambda item: -item[1])
    )
    left = [f"deferred {count:,} URLs" + (f" ({reasons})" if reasons else "")] if count else []
    if unread:
        left.append(f"{unread:,} URLs not read (the deadline came first)")
    todo = (
        "run the same command again to finish them"
        if resumable
        else "no journal: give one (drop --no-journal) to finish them in a second run"
    )
    return f"{' and '.join(left)}; {todo}"
