"""``conveyor demo`` and ``conveyor serve``: the main job on a built-in local site.

The demo starts the demo site (``conveyor.testing.demo_site``) in its own process on free
ports of three loopback addresses — three hosts, so per-host limits show — and three more
that misbehave (``conveyor.testing.demo_hosts``: one refuses above 4 requests at once,
one slows down under load, one goes away for 4 s and comes back in demos of
``OUTAGE_FROM`` pages or more), writes the list of its
pages, and runs the same job as ``conveyor fetch`` over it, with a CPU-heavy analysis step
on processes. Everything stays on 127.0.0.x; nothing reaches the internet.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from .errors import fail

DEMO_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
# The refusing, slowing and flapping hosts (``testing/demo_hosts.py``), in that order.
POLITE_HOSTS = ("127.0.0.4", "127.0.0.5", "127.0.0.6")
# Lines a real URL list might hold by mistake: they become bad-url records, not a crash.
MALFORMED = ("not a url", "ftp://files.example/archive.zip", "http://")
# The flapping host's outage opens its breaker, which holds the host's items 30 s (the
# breaker's first opening): most of a short demo's time, so demos under this many pages
# leave the outage out.
OUTAGE_FROM = 4_000


def start_site(
    pages: int, hosts: tuple[str, ...], polite: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start the demo site in its own process; return it and its base URLs (the
    ``polite`` hosts' after the others, refusing, slowing, flapping)."""
    flap_after = 60 if pages >= OUTAGE_FROM else 0  # 0: the flapping host never goes away
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.testing.demo_site",
         "--hosts", ",".join(hosts), "--pages", str(pages),
         "--polite-hosts", ",".join(polite), "--flap-after", str(flap_after)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    bases = []
    for line in proc.stdout:
        if "listening on " in line:
            bases.append(line.split()[-1])
        elif line.strip() == "ready":
            return proc, bases
    proc.kill()
    proc.wait()
    fail("the demo site did not start (is 127.0.0.2 reachable on this machine?)")


def write_urls(
    path: Path,
    bases: list[str],
    pages: int,
    *,
    malformed: bool = True,
    polite: list[str] | None = None,
) -> None:
    """The URL list: ``pages`` over ``bases``, then a share of them on each of the
    ``polite`` hosts (a few hundred: enough to see each handled, few enough to stay quick)."""
    with path.open("w") as out:
        out.write("# the demo site's pages, spread over its hosts\n")
        for n in range(pages):
            out.write(f"{bases[n % len(bases)]}/p/{n}\n")
        share = polite_share(pages)
        for n in range(share * len(polite or ())):
            assert polite is not None
            out.write(f"{polite[n % len(polite)]}/p/{n}\n")
        for line in MALFORMED if malformed else ():
            out.write(line + "\n")


def polite_share(pages: int) -> int:
    """Pages on each misbehaving host: a fortieth of the run, at least 100."""
    return max(100, pages // 40)


@click.command("demo")
@click.option(
    "--pages", type=click.IntRange(1), default=10_000, show_default=True, help="Pages to fetch."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="demo-output",
    show_default=True,
    help="Folder for the output, journal and report.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet", "db"]),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--crawl",
    is_flag=True,
    help="Crawl the generated crawl site instead (conveyor.testing.crawl_site): robots.txt, "
    "sitemaps, traps, a host whose robots.txt is down at first.",
)
def demo_command(pages: int, out_dir: str, fmt: str, quiet: bool, crawl: bool) -> None:
    """Run the main job on the built-in demo site, offline.

    The site has fast and slow pages (a few ms to a second), transient and permanent
    500s, 429s with Retry-After, redirects, 404s and a few 4 MiB pages, and three hosts
    that misbehave: one refuses above 4 requests at once, one slows down under load, one
    goes away for 4 s and comes back (with 4,000 pages or more). Output, journal and an
    HTML report go to demo-output/.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if crawl:
        _crawl_demo(folder, pages, fmt, quiet)
        return
    polite = POLITE_HOSTS
    proc, bases = start_site(pages, DEMO_HOSTS, polite)
    try:
        urls = folder / "urls.txt"
        write_urls(urls, bases[: len(DEMO_HOSTS)], pages, polite=bases[len(DEMO_HOSTS) :])
        from .job import FetchJob  # loaded here: `conveyor --help` must stay quick
        from .running import run_with_display

        job = FetchJob(
            input=str(urls),
            output=str(folder / f"pages.{fmt}"),
            fetch_options={
                "concurrency": 96,
                "per_host": 24,
                "retries": 3,
                "timeout": 20.0,
                "backoff": 0.2,
            },
            process="conveyor._cli.analysis:analyze_text",
            on="processes",
            workers=2,
            journal=str(folder / f"pages.{fmt}.journal"),
            restart=True,  # a demo starts afresh each time
        )
        code = run_with_display(
            job,
            report=str(folder / "report.html"),
            quiet=quiet,
            title="conveyor demo",
            hints=False,  # its settings are the demo's, not flags the user could change
        )
    finally:
        proc.terminate()
        proc.wait(10)
    if code:
        raise SystemExit(code)


def _crawl_demo(folder: Path, pages: int, fmt: str, quiet: bool) -> None:
    """``conveyor demo --crawl``: ``conveyor crawl`` over the generated crawl site, in its
    own process on 127.0.0.21-23 (its page count capped: a crawl site is a tree)."""
    import json

    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.testing.crawl_site", "--pages", str(min(pages, 5_000)),
         "--delay", "0.005"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        fail("the crawl site did not start (is 127.0.0.21 reachable on this machine?)")
    bases = json.loads(line.partition("listening on ")[2])
    try:
        from .crawl_job import CrawlJob  # loaded here: `conveyor --help` must stay quick
        from .running import run_with_display

        job = CrawlJob(
            seeds=[f"{bases[0]}/", f"{bases[1]}/f/0"],
            output=str(folder / f"crawl.{fmt}"),
            crawl_options={"robots_retry": 0.5},
            fetch_options={"concurrency": 64, "per_host": 16, "retries": 1},
            journal=str(folder / f"crawl.{fmt}.journal"),
            restart=True,  # a demo starts afresh each time
        )
        job.build()
        code = run_with_display(
            job,
            report=str(folder / "crawl-report.html"),
            quiet=quiet,
            title="conveyor demo --crawl",
            hints=False,
        )
    finally:
        proc.terminate()
        proc.wait(10)
    if code:
        raise SystemExit(code)


@click.command("serve")
@click.option(
    "--pages", type=click.IntRange(1), default=10_000, show_default=True, help="Pages on the site."
)
@click.option(
    "--hosts",
    default=",".join(DEMO_HOSTS),
    show_default=True,
    help="Loopback addresses to serve on.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port (0: a free one per address).",
)
@click.option(
    "--urls",
    "urls_path",
    type=click.Path(dir_okay=False),
    help="Also write the list of page URLs here.",
)
def serve_command(pages: int, hosts: str, port: int, urls_path: str | None) -> None:
    """Serve the demo site alone, for trying things (Ctrl-C stops it)."""
    from ..testing.demo_site import serve

    addresses = [h.strip() for h in hosts.split(",") if h.strip()]
    for address in addresses:
        if not address.startswith("127.") and address not in ("localhost", "::1"):
            fail(f"--hosts {address}: the demo site serves loopback addresses only (127.x.x.x)")
    if urls_path and port == 0:
        fail("--urls needs a fixed --port, so the URLs stay valid; e.g. --port 8080")
    if urls_path:
        write_urls(
            Path(urls_path), [f"http://{a}:{port}" for a in addresses], pages, malformed=False
        )
    import asyncio

    asyncio.run(serve(addresses, pages, port))
