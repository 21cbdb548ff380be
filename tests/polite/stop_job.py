"""A job for the Ctrl-C test of ``test_waiting_room.py``: fetch the URLs of ``argv[1]`` into
``argv[2]`` with a journal, on ``argv[3]`` loops, with a grace long enough to outlast the
held host's pause (so only the stop's leaving the waiting items ends the run early)."""

from __future__ import annotations

import sys
from pathlib import Path

import conveyor as cv


def main() -> None:
    urls = Path(sys.argv[1]).read_text().split()
    out = sys.argv[2]
    pipeline = cv.Pipeline(urls).fetch(concurrency=4, per_host=4)
    try:
        pipeline.run(sink=out, journal=f"{out}.journal", grace=600, loops=int(sys.argv[3]))
    except cv.RunInterrupted:
        sys.exit(130)


if __name__ == "__main__":
    main()
