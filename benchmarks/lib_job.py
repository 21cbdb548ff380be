"""The library's version of the job: ``Pipeline.fetch`` then a plain function, one loop.

    python benchmarks/lib_job.py URLS.txt OUT.jsonl [CONCURRENCY]

The function is the gather script's own ``summary`` (regex title, link count), given as a
user would write it: a plain ``.map`` with the default placement.
"""

import sys
from typing import Any

from gather_script import summary

import conveyor as cv


def page(response: Any) -> dict[str, object]:
    return summary(response.url, response.status, response.body)


if __name__ == "__main__":
    urls, output = sys.argv[1], sys.argv[2]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    result = (
        cv.Pipeline(cv.read_lines(urls))
        .fetch(concurrency=concurrency, per_host=concurrency)
        .map(page)
        .run(sink=cv.JsonLines(output))
    )
    if result.failed:
        raise SystemExit(f"failed: {result.failures_by_kind}")
