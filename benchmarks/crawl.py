"""Crawl benchmark: ``conveyor crawl`` against Scrapy's CrawlSpider (with its JOBDIR) on the
same generated site, served by nginx on several loopback hosts.

    .venv/bin/python benchmarks/crawl.py                 # 100,000 pages (and 10,000)
    .venv/bin/python benchmarks/crawl.py --pages 4000 --small 2000 --skip-resume

The site is ``conveyor.testing.crawl_site`` written out as static files (``write_static``):
``--hosts`` hosts (127.0.0.71, .72, ...) of ``pages / hosts`` pages each, every page linking
to its two children, its parent, ``--fanout`` pages of its host chosen by a hash and the
same page of the next host (~``fanout + 4`` links), with ~``--page-bytes`` of text. Both
crawlers start from every host's home page, obey robots.txt, stay on the site's hosts, go
breadth-first, keep their state on disk (conveyor's journal, Scrapy's JOBDIR) and run at
the same concurrency (``--concurrency`` in all, ``per host = concurrency / hosts``).

Measured, for each crawler, in its own process tree:

- pages/s and CPU seconds a page (user + system, every process of the tree), and peak RSS
  (the tree's resident memory summed, sampled every 0.1 s; and the top process's own), for
  a crawl stopped at ``--small`` pages (``--max-pages`` / ``CLOSESPIDER_PAGECOUNT``) and
  for the whole site;
- a resume: the crawl SIGKILLed once half of the site is written, then run again; the
  second run's wall time, and how many pages the two runs wrote twice (conveyor: none).

nginx: Debian's nginx-light (``apt-get install -y nginx-light``); Scrapy: the ``bench``
extra. Figures go in ``benchmarks/README.md``. The machines here have 2 shared cores: run
it on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import free_port, run_nginx

from conveyor.testing.crawl_site import CrawlSite, write_static

ROOT = Path(__file__).resolve().parents[1]

HTTP = """    default_type text/html;
    types {{ text/plain txt; }}
{servers}"""
SERVER = """    server {{
        listen {address}:{port} backlog=4096;
        root {folder};
        location = /robots.txt {{ default_type text/plain; }}
        location / {{ try_files $uri /index.html =404; }}
    }}"""

SPIDER = """
import sys
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class SiteSpider(CrawlSpider):
    name = "site"
    rules = (Rule(LinkExtractor(), callback="page", follow=True),)

    def __init__(self, seeds="", hosts="", **kwargs):
        self.start_urls = seeds.split(",")
        self.allowed_domains = hosts.split(",")
        super().__init__(**kwargs)

    def parse_start_url(self, response):
        return [self.page(response)]

    def page(self, response):
        return {"url": response.url, "status": response.status,
                "depth": response.meta.get("depth", 0)}
"""


@dataclass
class Measured:
    pages: int
    wall: float
    cpu: float
    peak_rss_mib: float
    parent_rss_mib: float = 0.0  # the top process's own peak (the loops are the rest)

    def line(self, name: str) -> str:
        rate = self.pages / self.wall if self.wall else 0.0
        per_page = self.cpu / self.pages * 1e6 if self.pages else 0.0
        return (
            f"{name:<34} {self.pages:>8,} pages {self.wall:8.2f} s {rate:9,.0f} pages/s "
            f"{per_page:8,.0f} us CPU/page  peak RSS {self.peak_rss_mib:7.1f} MiB"
            f" (parent {self.parent_rss_mib:.1f})"
        )


@contextlib.contextmanager
def serve(site: CrawlSite, root: Path, port: int) -> Iterator[None]:
    folders = write_static(site, root / "www")
    for path in (root, root / "www", *folders, *(folder / "p" for folder in folders)):
        path.chmod(0o755)
    servers = "\n".join(
        SERVER.format(address=_address(base), port=port, folder=f)
        for base, f in zip(site.bases, folders, strict=False)
    )
    with run_nginx(root, HTTP.format(servers=servers), port, address=_address(site.bases[0])):
        yield


def _address(base: str) -> str:
    return base.partition("://")[2].rpartition(":")[0]


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of ``pid`` and its descendants, and of ``pid`` alone."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        number = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(number)
        rss[number] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
    return total, rss.get(pid, 0)


def run_measured(
    command: list[str], *, cwd: Path, output: Path, kill_at: int | None = None
) -> Measured:
    """Run ``command`` to its end (or SIGKILL it once ``output`` has ``kill_at`` lines):
    its wall time, its tree's CPU time and peak resident memory, the lines it wrote."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines_before = _lines(output)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = parent = 0
    while proc.poll() is None:
        tree, top = _tree_rss(proc.pid)
        peak, parent = max(peak, tree), max(parent, top)
        if kill_at is not None and _lines(output) >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.1)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if kill_at is None and proc.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(_lines(output) - lines_before, wall, cpu, peak / 2**20, parent / 2**20)


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def conveyor_command(
    site: CrawlSite, out: Path, args: argparse.Namespace, pages: int | None
) -> list[str]:
    per_host = max(1, args.concurrency // args.hosts)
    command = [sys.executable, "-m", "conveyor", "crawl", *site.seeds(), "-o", str(out), "-q",
               "--concurrency", str(args.concurrency), "--per-host", str(per_host),
               "--loops", str(args.loops)]  # fmt: skip
    return [*command, "--max-pages", str(pages)] if pages else command


def scrapy_command(
    site: CrawlSite, work: Path, out: Path, args: argparse.Namespace, pages: int | None
) -> list[str]:
    spider = work / "site_spider.py"
    spider.write_text(SPIDER)
    hosts = ",".join(base.partition("://")[2].rpartition(":")[0] for base in site.bases)
    per_host = max(1, args.concurrency // args.hosts)
    settings = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_host,
        "DOWNLOAD_DELAY": 0,
        "ROBOTSTXT_OBEY": True,
        "JOBDIR": str(work / "jobdir"),
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        # Breadth-first, as conveyor crawls (Scrapy's FAQ for broad crawls).
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "CLOSESPIDER_PAGECOUNT": pages or 0,
        "FEEDS": f'{{"{out}": {{"format": "jsonlines"}}}}',
    }
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider),
               "-a", f"seeds={','.join(site.seeds())}", "-a", f"hosts={hosts}"]  # fmt: skip
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def duplicates(path: Path) -> int:
    import orjson

    from conveyor._crawl.urls import canonical

    urls = [canonical(orjson.loads(line)["url"]) for line in path.read_bytes().splitlines()]
    return len(urls) - len(set(urls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the first measure point")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--page-bytes", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--skip-scrapy", action="store_true")
    parser.add_argument("--skip-resume", action="store_true")
    args = parser.parse_args()
    port = free_port()
    bases = tuple(f"http://127.0.0.{71 + i}:{port}" for i in range(args.hosts))
    site = CrawlSite(
        bases, content=args.hosts, pages=args.pages // args.hosts, fanout=args.fanout,
        features=False, page_bytes=args.page_bytes,
    )  # fmt: skip
    total = len(site.expected())
    work = Path(tempfile.mkdtemp(prefix="conveyor-crawl-bench-"))
    print(f"site: {total:,} pages on {args.hosts} hosts, ~{args.fanout + 4} links a page")
    try:
        with serve(site, work / "site", port):
            for pages in (args.small, None):
                label = f"{pages or total:,} pages"
                fresh = work / "conveyor"
                shutil.rmtree(fresh, ignore_errors=True)
                fresh.mkdir()
                out = fresh / "out.jsonl"
                got = run_measured(conveyor_command(site, out, args, pages), cwd=fresh, output=out)
                print(got.line(f"conveyor crawl, {label}"), flush=True)
                if not args.skip_scrapy:
                    fresh = work / "scrapy"
                    shutil.rmtree(fresh, ignore_errors=True)
                    fresh.mkdir()
                    out = fresh / "out.jsonl"
                    command = scrapy_command(site, fresh, out, args, pages)
                    got = run_measured(command, cwd=fresh, output=out)
                    print(got.line(f"Scrapy CrawlSpider, {label}"), flush=True)
            if not args.skip_resume:
                resume(site, work, args, total)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resume(site: CrawlSite, work: Path, args: argparse.Namespace, total: int) -> None:
    """Kill each crawler half way (by pages written), run it again: the second run's wall
    time, and the pages written twice."""
    for name in ("conveyor", "scrapy"):
        if name == "scrapy" and args.skip_scrapy:
            continue
        fresh = work / f"resume-{name}"
        fresh.mkdir()
        out = fresh / "out.jsonl"
        if name == "conveyor":
            command = conveyor_command(site, out, args, None)
        else:
            command = scrapy_command(site, fresh, out, args, None)
        killed = run_measured(command, cwd=fresh, output=out, kill_at=total // 2)
        again = run_measured(command, cwd=fresh, output=out)
        written = _lines(out)
        print(
            f"{name} resume after SIGKILL at {killed.pages:,} pages: {again.wall:.2f} s for "
            f"{again.pages:,} more; {written:,} written in all, {duplicates(out):,} twice, "
            f"{total - (written - duplicates(out)):,} missing",
            flush=True,
        )


if __name__ == "__main__":
    main()
