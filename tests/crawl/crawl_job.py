"""``conveyor crawl``'s own job, run by a child process that kills itself inside the
journal's commit: after the frontier's part of the transaction is written (pages
finished, links offered) and before the transaction commits.

    python -m tests.crawl.crawl_job OUT LOOPS KILL_AT SEED...

Runs the command's job (``_cli/crawl_job.CrawlJob``, the same fingerprint as the
command's) with the options the test's command line uses, and SIGKILLs this process in
its KILL_AT-th commit that records pages.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from conveyor._cli.crawl_job import CrawlJob
from conveyor._pipeline.crawl import hook

# The command line's settings in the kill test (tests/cli/test_crawl.py): the same job.
CRAWL = {"robots_retry": 0.2}
FETCH = {"retries": 1, "concurrency": 16, "per_host": 4}


def main() -> int:
    out, loops, kill_at, *seeds = sys.argv[1:]
    commits = 0
    stage = hook.CrawlHook.stage

    def stage_then_die(self: hook.CrawlHook, *args: Any, commit: bool) -> None:
        nonlocal commits
        stage(self, *args, commit=commit)
        if commit and args[1]:  # pages finished in this commit: killed before it lands
            commits += 1
            if commits == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    hook.CrawlHook.stage = stage_then_die  # type: ignore[method-assign]
    job = CrawlJob(
        seeds=seeds,
        output=out,
        crawl_options=CRAWL,
        fetch_options=FETCH,
        loops=int(loops),
        journal=f"{out}.journal",
    )
    job.build()
    job.run(job.make_sink(lambda rows: None), ())
    return 0


if __name__ == "__main__":
    sys.exit(main())
