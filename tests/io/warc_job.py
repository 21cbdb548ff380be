"""A WARC sink and a journal driven by hand, in a child process the test kills.

    python -m tests.io.warc_job OUTPUT JOURNAL COUNT

Each item ``n`` becomes a ``conveyor.http.Response`` for ``http://127.0.0.3/item/n``
(built here: what is tested is the sink's durability, not the network); batches of 20
are admitted, written, flushed and recorded, as the writer thread does. Prints DONE.
"""
# ruff: noqa: T201 - this script talks to the test through its stdout

from __future__ import annotations

import sys

from multidict import CIMultiDict, CIMultiDictProxy

from conveyor._engine.ports import KeyOutcome
from conveyor._http.response import Response
from conveyor._io import open_journal
from conveyor._io.sinks import sink_for


def response(n: int) -> Response:
    body = (f"<html><title>item {n}</title>" + "x" * (n % 700) + "</html>").encode()
    headers = CIMultiDictProxy(CIMultiDict([("Content-Type", "text/html"), ("X-Item", str(n))]))
    url = f"http://127.0.0.3/item/{n}"
    return Response.build(
        url=url, final_url=url, status=200, reason="OK", headers=headers, body=body,
        elapsed=0.001, attempts=1, redirects=(), path=None, request=None, raw_bytes=len(body),
    )  # fmt: skip


def main() -> int:
    output, journal_path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sink = sink_for(output)
    with open_journal(journal_path, fingerprint={"job": "warc", "count": count}) as journal:
        sink.open(journal.sink_position)
        try:
            for start in range(0, count, 20):
                keys = [f"item-{n}" for n in range(start, min(start + 20, count))]
                admitted = [key for key, ok in zip(keys, journal.admit(keys), strict=True) if ok]
                sink.write([response(int(key.rpartition("-")[2])) for key in admitted])
                position = sink.flush()
                journal.record([KeyOutcome(key, "done") for key in admitted], position)
        finally:
            sink.close()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
