"""A script without ``if __name__ == "__main__":`` that starts processes: say so, and how.

Worker processes (``on="processes"``) and loop processes (``loops=N``) are *spawned*: a
fresh interpreter that first imports the main script, as ``__mp_main__``, to find the
functions it is sent. A script that starts its run at module level, unguarded, starts
it again in there, and that run starts processes of its own while the process is still
being prepared. multiprocessing refuses with a page of text in the child's stderr, and
the parent saw only a process that exited before it was ready.

So before starting processes, a run checks whether it is itself inside such a
preparation (``refuse_in_bootstrap``). If so, that process leaves at once with exit code
``UNGUARDED_EXIT`` and one line on stderr, and the parent, seeing that code, raises a
``UsageError`` that names the fix (``unguarded_message``).
"""

from __future__ import annotations

import os
import sys

# The exit code of a spawned process whose preparation re-ran the run (rare otherwise).
UNGUARDED_EXIT = 87

_FIX = (
    'the script that calls run() has no `if __name__ == "__main__":` guard: each '
    "{what} imports the main script to find your functions, which started the run again "
    "in there. Put the code that builds and runs the pipeline under that guard"
)


def refuse_in_bootstrap() -> None:
    """Leave this process at once (``UNGUARDED_EXIT``) when it is a spawned process still
    importing the main script: the script's run began again in it (see the docstring)."""
    import multiprocessing.process  # here: only a run that starts processes loads it

    # The flag multiprocessing itself checks before it refuses to start a process then.
    if getattr(multiprocessing.process.current_process(), "_inheriting", False):
        sys.stderr.write(
            "conveyor: a spawned process re-ran the script's run; guard it with "
            '`if __name__ == "__main__":`\n'
        )
        sys.stderr.flush()
        # At once: nothing of this run is worth finishing, and a SystemExit would have to
        # find its way out through the event loop first.
        os._exit(UNGUARDED_EXIT)


def unguarded_message(what: str) -> str:
    """The fix to show when a spawned ``what`` (a loop process) exited with
    ``UNGUARDED_EXIT``."""
    return _FIX.format(what=what)
