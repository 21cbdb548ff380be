"""``conveyor crawl SEED... -o OUTPUT``: follow links from a few pages, politely, once.

The client's options are ``conveyor fetch``'s own (the same click options, shared), the
crawl's are ``conveyor.crawl``'s (``docs/crawl.md``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .errors import fail
from .fetch import fetch_command, fetch_options_of
from .options import LOOPS
from .polite import NAMES as POLITE
from .polite import refuse_on_ray, run_options_of

# conveyor fetch's options that mean the same for a crawl, shared rather than repeated.
SHARED = (
    "concurrency", "per_host", "rate", "host_rate", "retries", "timeout", "max_bytes",
    "headers", "user_agent", "proxies", "trust_env", "block_private", "process", "on",
    "workers", "journal_path", "no_journal", "restart", "report", "quiet", "backend",
    "address", "shards", *POLITE,
)  # fmt: skip
# What a loop process of a crawl runs: imported while the parent builds the job.
LOOP_MODULES = ("conveyor._pipeline.crawl.service", "conveyor._http.client", "conveyor._cli.record")


@click.command("crawl")
@click.argument("seeds", nargs=-1, metavar="SEED...")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Output file: .jsonl .csv .parquet .db/.sqlite, .warc/.warc.gz (the pages "
    "themselves, for web archives), or - for stdout.",
)
@click.option(
    "--seeds",
    "seeds_file",
    type=click.Path(dir_okay=False),
    help="A file of seed URLs, one a line (# comments and blank lines skipped).",
)
@click.option(
    "--scope",
    default="host",
    show_default=True,
    help="Where links may go: host (the seeds' hosts), domain (their registrable "
    "domains), prefix (their host and folder), or a regex searched in each URL.",
)
@click.option("--depth", type=click.IntRange(0), help="Deepest page, in links from a seed.")
@click.option("--max-pages", type=click.IntRange(1), help="Pages fetched at most (all runs).")
@click.option("--max-pages-per-host", type=click.IntRange(1), help="Pages per host at most.")
@click.option("--allow", multiple=True, metavar="REGEX", help="Follow only URLs matching one.")
@click.option("--deny", multiple=True, metavar="REGEX", help="Never follow URLs matching one.")
@click.option("--ignore-robots", is_flag=True, help="Do not read or obey robots.txt.")
@click.option(
    "--robots-retry",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds before an unreachable robots.txt is asked again (doubled each time; "
    "after 3 retries its host's pages are left for the next run).",
)
@click.option("--sitemap", "sitemaps", multiple=True, metavar="URL", help="A sitemap to read.")
@click.option("--sort-query", is_flag=True, help="One page whatever its query's order.")
@click.option("--strip-tracking", is_flag=True, help="One page whatever its utm_* ... are.")
@click.option("--no-traps", is_flag=True, help="Follow trap-shaped URLs too (long, deep...).")
@click.option(
    "--loops",
    type=LOOPS,
    default="auto",
    show_default=True,
    help="Event loops (one per process) that fetch and read pages; hosts are spread over "
    "them. auto: one per core.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="On resume, fetch again the pages that got no response.",
)
def crawl_command(seeds: tuple[str, ...], output: str, **options: Any) -> None:
    """Crawl from SEED... (or --seeds FILE) and write one record per page to OUTPUT.

    Links are followed within --scope, robots.txt obeyed, sitemaps read (--sitemap, and
    those robots.txt names). Each record is conveyor fetch's, with depth, referrer and
    the sitemap's lastmod. Running the same command again resumes where it stopped; no
    page is fetched into the output twice.
    """
    seed_list = list(seeds) + (_read_seeds(options["seeds_file"]) if options["seeds_file"] else [])
    if not seed_list:
        fail("give seed URLs, e.g. conveyor crawl https://example.com/ -o pages.jsonl")
    if options["backend"] == "ray":
        refuse_on_ray(options)
        code = _crawl_on_ray(seed_list, output, options)
        if code:
            raise SystemExit(code)
        return
    if options["address"] or options["shards"]:
        fail("--address and --shards go with --backend ray; add it, or drop them")
    loops = _loops(options["loops"], options["concurrency"])
    code = 0
    try:
        code = _crawl(seed_list, output, loops, options)
    finally:
        if not isinstance(loops, int):
            loops.close()
    if code:
        raise SystemExit(code)


for _param in fetch_command.params:
    if _param.name in SHARED:
        crawl_command.params.append(_param)
del _param


def _crawl(seeds: list[str], output: str, loops: Any, options: dict[str, Any]) -> int:
    from .job import default_journal
    from .running import run_with_display

    journal = (
        None if options["no_journal"] else (options["journal_path"] or default_journal(output))
    )
    job = _job(seeds, output, loops, journal, options)
    job.build()
    return run_with_display(
        job, report=options["report"], quiet=options["quiet"], title="conveyor crawl"
    )


def _crawl_on_ray(seeds: list[str], output: str, options: dict[str, Any]) -> int:
    from .._pipeline.crawl.shards import crawl_sharded_job
    from .crawl_job import CrawlRowOutput
    from .job import is_warc
    from .sharded import drive_with_display

    if output == "-" or is_warc(output):
        fail("--backend ray writes a folder of parts; give -o a folder, e.g. -o pages.jsonl")
    if options["no_journal"] or options["journal_path"]:
        fail("--backend ray keeps one journal per shard beside its part; drop --journal")
    job = _job(seeds, output, 1, None, options)
    pipeline = job.build()
    return drive_with_display(
        crawl_sharded_job(pipeline, output=CrawlRowOutput),
        output,
        title=f"conveyor crawl --backend ray: {job.label}",
        shards=options["shards"],
        address=options["address"],
        restart=options["restart"],
        retry_failed=options["retry_failed"],
        report=options["report"],
        quiet=options["quiet"],
    )


def _job(
    seeds: list[str], output: str, loops: Any, journal: str | None, options: dict[str, Any]
) -> Any:
    from .crawl_job import CrawlJob

    return CrawlJob(
        seeds=seeds,
        output=output,
        crawl_options={
            "scope": options["scope"],
            "depth": options["depth"],
            "max_pages": options["max_pages"],
            "max_pages_per_host": options["max_pages_per_host"],
            "allow": options["allow"],
            "deny": options["deny"],
            "robots": not options["ignore_robots"],
            "robots_retry": options["robots_retry"],
            "sitemaps": options["sitemaps"],
            "sort_query": options["sort_query"],
            "strip_tracking": options["strip_tracking"],
            "traps": not options["no_traps"],
        },
        fetch_options=fetch_options_of(options),
        process=options["process"],
        on=options["on"],
        workers=options["workers"],
        loops=loops,
        journal=journal,
        restart=options["restart"],
        retry_failed=options["retry_failed"],
        run_options=run_options_of(options),
    )


def _loops(loops: int | str, concurrency: int) -> Any:
    """``--loops``: auto is one per core (a crawl's size is not known ahead); more than
    one start now, while this process builds the job (``loops.start_ahead``)."""
    if loops == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        loops = cores or os.cpu_count() or 1
    assert isinstance(loops, int)
    if loops > 1:
        from .._engine.loops import start_ahead

        return start_ahead(loops, shared=concurrency, modules=LOOP_MODULES)
    return loops


def _read_seeds(path: str) -> list[str]:
    target = Path(path)
    if not target.is_file():
        fail(f"--seeds {path}: no such file; give a file of URLs, one a line")
    lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


__all__ = ["crawl_command"]
