"""A job for the crash tests, run in a child process that the test kills.

    python -m tests.io.crash_job MODE SINK OUTPUT JOURNAL INPUT [--delay S] [--fsize BYTES]

MODE ``direct`` drives a sink and a journal by hand in a tight admit/write/flush/record
loop; MODE ``pipeline`` runs ``Pipeline(...).run(sink=..., journal=...)`` with each line as
its key; MODE ``positions`` runs it with the default keys, the input positions. Exit codes: 0
done, 1 a conveyor error (its message is the one line on stderr), 130 interrupted.
"""
# ruff: noqa: T201 - this script talks to the test through its stdout and stderr

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import conveyor as cv
from conveyor._engine.ports import KeyOutcome
from conveyor._io import open_journal, read_lines, sink_for

DELAY = 0.0
PAYLOAD = 40


def work(line: str) -> dict[str, Any]:
    if DELAY:
        time.sleep(DELAY)
    return {
        "key": line,
        "n": int(line.rpartition("-")[2]),
        "payload": os.urandom(PAYLOAD // 2).hex(),
    }


def own_key(line: str) -> str:
    return line


def direct(sink: Any, journal_path: str, source: Any) -> None:
    journal = open_journal(journal_path, fingerprint={"source": source.describe()})
    try:
        sink.open(journal.sink_position)
        try:
            batch: list[str] = []
            for line in source:
                batch.append(line)
                if len(batch) == 50:
                    commit(sink, journal, batch)
                    batch = []
            commit(sink, journal, batch)
        finally:
            sink.close()
    finally:
        journal.close()


def commit(sink: Any, journal: Any, batch: list[str]) -> None:
    admitted = [line for line, ok in zip(batch, journal.admit(batch), strict=True) if ok]
    sink.write([work(line) for line in admitted])
    position = sink.flush()
    journal.record([KeyOutcome(line, "done") for line in admitted], position)


def main() -> int:
    global DELAY, PAYLOAD
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["direct", "pipeline", "positions"])
    parser.add_argument("sink")
    parser.add_argument("output")
    parser.add_argument("journal")
    parser.add_argument("input")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fsize", type=int, default=0)
    parser.add_argument("--payload", type=int, default=40)
    args = parser.parse_args()
    DELAY, PAYLOAD = args.delay, args.payload
    if args.fsize:
        # A "full disk": writes past this size fail with EFBIG (Python ignores SIGXFSZ).
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize, args.fsize))
    sink = sink_for(args.output)
    source = read_lines(args.input)
    try:
        if args.mode == "direct":
            direct(sink, args.journal, source)
        else:
            key = own_key if args.mode == "pipeline" else None
            pipeline = cv.Pipeline(source, key=key).map(work, on="threads", workers=4)
            result = pipeline.run(sink=sink, journal=args.journal)
            print(f"DONE results={result.results} skipped={result.skipped}")
    except cv.RunInterrupted:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except cv.ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
