"""The code that runs inside a worker process. Kept tiny: it is imported by every worker.

Protocol on the pipe: the host sends a list of values (a chunk), the worker answers with
``(seconds, [(ok, value_or_failure), ...])``, a failure described here, once, as every
remote failure is (``outcomes.RemoteFailure``). Before each item the worker writes the item's
index and start time into shared memory, so the host knows exactly which item was running
if the process dies or overruns its deadline, without a message per item.
"""

from __future__ import annotations

import pickle
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from .outcomes import RemoteFailure


def worker_main(conn: Connection, fn_bytes: bytes, state: Any) -> None:
    # Ctrl-C goes to the whole process group; the host decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fn = pickle.loads(fn_bytes)
    except BaseException as exc:
        conn.send(("init-error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        results: list[tuple[bool, Any]] = []
        began = time.monotonic()
        for index, value in enumerate(chunk):
            state[1] = time.monotonic()
            state[0] = index
            try:
                results.append((True, fn(value)))
            except Exception as exc:
                results.append((False, RemoteFailure.describe(exc)))
        state[0] = -1
        elapsed = time.monotonic() - began
        try:
            conn.send((elapsed, results))
        except Exception:
            # One result could not be pickled: send the others, and say which one failed.
            conn.send((elapsed, [_checked(r) for r in results]))


def _checked(result: tuple[bool, Any]) -> tuple[bool, Any]:
    try:
        pickle.dumps(result[1])
    except Exception as exc:
        return (False, RemoteFailure.describe(TypeError(f"result cannot be pickled: {exc}")))
    return result
