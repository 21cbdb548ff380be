"""``conveyor fetch INPUT -o OUTPUT``: the main job."""

from __future__ import annotations

from typing import Any

import click

from .errors import INTERRUPTED_EXIT, fail
from .options import HEADER, LOOPS, RATE, SIZE, TARGET
from .polite import (
    polite_fetch_options,
    polite_options,
    refuse_on_ray,
    run_options_of,
)


@click.command("fetch")
@click.argument("input_path", metavar="INPUT")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Output file: .jsonl .csv .parquet .db/.sqlite, or - for stdout.",
)
@click.option(
    "--column", help="Column (CSV, Parquet) or field (JSON lines) holding the URL [default: url]."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Requests in flight in all.",
)
@click.option(
    "--per-host",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Requests in flight per host.",
)
@click.option("--rate", type=RATE, help="Requests per second in all: 20/s, 600/min or a number.")
@click.option("--host-rate", type=RATE, help="Requests per second per host.")
@click.option(
    "--retries",
    type=click.IntRange(0),
    default=3,
    show_default=True,
    help="Retries after the first try.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds per attempt.",
)
@click.option(
    "--max-bytes", type=SIZE, default="50MiB", show_default=True, help="Largest body, e.g. 10MiB."
)
@click.option(
    "--header",
    "headers",
    type=HEADER,
    multiple=True,
    help="Extra header 'Name: value' (repeatable).",
)
@click.option("--user-agent", help="User-Agent header [default: conveyor/VERSION].")
@click.option(
    "--proxy",
    "proxies",
    multiple=True,
    metavar="URL",
    help="Forward proxy http://[user:password@]host:port (repeatable: hosts are spread over them, each host staying on one).",
)
@click.option(
    "--trust-env",
    is_flag=True,
    help="Take proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) and .netrc logins from the environment.",
)
@click.option(
    "--block-private",
    is_flag=True,
    help="Refuse private, loopback and metadata addresses (SSRF guard).",
)
@click.option(
    "--process",
    "process",
    type=TARGET,
    help="Your stage, module:function, taking the record dict and returning a dict to merge.",
)
@click.option(
    "--on",
    "on",
    type=click.Choice(["threads", "processes"]),
    default="threads",
    show_default=True,
    help="Where --process runs.",
)
@click.option("--workers", type=click.IntRange(1), help="Threads or processes for --process.")
@click.option(
    "--loops",
    type=LOOPS,
    default="auto",
    show_default=True,
    help="Event loops (one per process) that fetch and make rows; a host's URLs go to every "
    "loop, each holding its part of --per-host. auto: one loop, then one per core once it is "
    "CPU-bound (inputs under 20,000 URLs stay on one).",
)
@click.option(
    "--save-bodies",
    type=click.Path(file_okay=False),
    help="Keep each body as a file in this folder.",
)
@click.option("--journal", "journal_path", help="Resume journal [default: OUTPUT.journal].")
@click.option("--no-journal", is_flag=True, help="Do not keep a journal (no resume).")
@click.option("--restart", is_flag=True, help="Forget the journal and the output, and begin again.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="On resume, fetch again the URLs that got no response (a row with an error_kind) "
    "and those that ended 5xx or 429 after their retries; a URL that ended 4xx (other than "
    "429) or 1xx-3xx is done and is not fetched again.",
)
@polite_options
@click.option("--report", type=click.Path(dir_okay=False), help="Write an HTML report with charts.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: run the job as shards on a Ray cluster; OUTPUT is then a folder of parts.",
)
@click.option(
    "--address",
    help="With --backend ray: the cluster (auto, ray://HOST:PORT or HOST:PORT) "
    "[default: RAY_ADDRESS, else a new one-machine cluster].",
)
@click.option(
    "--shards",
    type=click.IntRange(1),
    help="With --backend ray: shards (Ray tasks) to cut the input into, by host "
    "[default: the cluster's CPUs].",
)
def fetch_command(input_path: str, output: str, column: str | None, **options: Any) -> None:
    """Fetch every URL in INPUT and write one record per URL to OUTPUT.

    INPUT is a text file of URLs (one per line; blank lines and # comments skipped; .gz
    read transparently), a CSV, JSON-lines or Parquet file with --column, or - for stdin.
    Running the same command again resumes where it stopped.
    """
    loops = options["loops"]
    if options["backend"] == "local":
        loops = _start_loops_early(input_path, loops, options["concurrency"])
    try:
        code = _fetch(input_path, output, column, loops, options)
    finally:
        if not isinstance(loops, int | str):  # started ahead: end those no run took
            loops.close()
    if code:
        raise SystemExit(code)


def _fetch(
    input_path: str, output: str, column: str | None, loops: Any, options: dict[str, Any]
) -> int:
    # Loaded here, not at the top: `conveyor --help` must not pay for the pipeline.
    from .job import FetchJob, default_journal
    from .running import run_with_display

    if options["backend"] == "ray":
        refuse_on_ray(options)  # before asking the library: this holds whatever it takes
    fetch_options = fetch_options_of(options)
    if options["save_bodies"]:
        fetch_options["save_to"] = options["save_bodies"]
    journal = (
        None if options["no_journal"] else (options["journal_path"] or default_journal(output))
    )
    job = FetchJob(
        input=input_path,
        output=output,
        column=column,
        fetch_options=fetch_options,
        process=options["process"],
        on=options["on"],
        workers=options["workers"],
        loops=loops,
        journal=journal,
        restart=options["restart"],
        retry_failed=options["retry_failed"],
        run_options=run_options_of(options),
    )
    if options["backend"] == "ray":
        return _run_on_ray(job, options)
    if options["address"] or options["shards"]:
        fail("--address and --shards go with --backend ray; add it, or drop them")
    return run_with_display(job, report=options["report"], quiet=options["quiet"])


def fetch_options_of(options: dict[str, Any]) -> dict[str, Any]:
    """The client's options (``FetchConfig``'s names) from the command's (``conveyor
    crawl`` takes the same ones)."""
    fetch_options: dict[str, Any] = {
        "concurrency": options["concurrency"],
        "per_host": options["per_host"],
        "rate": options["rate"],
        "host_rate": options["host_rate"],
        "retries": options["retries"],
        "timeout": options["timeout"],
        "max_bytes": options["max_bytes"],
        "headers": tuple(options["headers"]),
        "block_private": options["block_private"],
    }
    # Only when given, as --user-agent: the defaults stay FetchConfig's.
    if options["user_agent"]:
        fetch_options["user_agent"] = options["user_agent"]
    if options["proxies"]:
        fetch_options["proxy"] = tuple(options["proxies"])
    if options["trust_env"]:
        fetch_options["trust_env"] = True
    fetch_options.update(polite_fetch_options(options))
    return fetch_options


# What a loop process of the main job runs: imported while the parent builds the job.
LOOP_MODULES = ("conveyor._pipeline.fetch", "conveyor._http.client", "conveyor._cli.record")


def _start_loops_early(input_path: str, loops: int | str, concurrency: int) -> Any:
    """Start the loop processes of ``--loops N`` now: each takes ~0.2 s to start (an
    interpreter and its imports), which then overlaps this process's own imports instead
    of following them. Returns the run's ``loops=``: the number of loops (resolved once,
    so the two agree), the processes started ahead (``loops.start_ahead``), which the run
    takes over, or ``"auto"`` for an input large enough to measure."""
    from .._engine.loops import resolve_loops_for_file, start_ahead

    count = resolve_loops_for_file(loops, input_path)
    if count > 1 and loops != "auto":
        return start_ahead(count, shared=concurrency, modules=LOOP_MODULES)
    # "auto" starts on one loop, and its loop processes only once that loop is busy
    # (``_engine/loops/grow.py``): a job that waits on its servers never pays for them.
    return loops if count > 1 else count


def _run_on_ray(job: Any, options: dict[str, Any]) -> int:
    if job.output == "-":
        fail("--backend ray writes a folder of parts; give -o a folder name, e.g. -o pages.jsonl")
    if job.output.lower().endswith((".warc", ".warc.gz")):
        fail("--backend ray does not write WARC parts yet; run it locally, or write .jsonl")
    if options["no_journal"] or options["journal_path"]:
        fail(
            "--backend ray keeps one journal per shard beside its part; drop --journal/--no-journal"
        )
    from .sharded import run_sharded  # Ray itself is imported only there, and only now

    return run_sharded(
        job,
        shards=options["shards"],
        address=options["address"],
        report=options["report"],
        quiet=options["quiet"],
    )


__all__ = ["INTERRUPTED_EXIT", "fetch_command"]
