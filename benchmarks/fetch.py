"""Fetch benchmarks: conveyor against what people use instead, in the same run.

    .venv/bin/python benchmarks/fetch.py            # full: 5 interleaved repeats, 1M memory case
    .venv/bin/python benchmarks/fetch.py --quick    # under a minute: smaller N, 1 repeat

Servers run in processes of their own (``_servers.py``): nginx-light for the throughput
and memory cases, a bare uvloop protocol that answers after 100 ms for the latency case.
Every measurement is a fresh interpreter (``--case``), contenders are interleaved
(A B C A B C ...), and the report gives medians and ratios. All async contenders run on
uvloop, and every one is given the same concurrency (and, for conveyor, per_host = it).

1. latency: N URLs, 100 ms server delay, concurrency 500; ideal = N x 0.1 / 500.
2. throughput: N URLs, no delay, concurrency 100, the full job: fetch, parse the <title>,
   write one JSON line per page.
3. memory: the throughput job over URLs streamed from a file: peak RSS at two N.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TITLE = re.compile(rb"<title>(.*?)</title>", re.S | re.I)


def record(url: str, status: int, body: bytes) -> bytes:
    import orjson

    match = TITLE.search(body)
    title = match.group(1).decode("utf-8", "replace") if match else None
    return orjson.dumps({"url": url, "status": status, "title": title}) + b"\n"


def url_source(spec: str) -> Iterable[str]:
    """``base|n`` makes N URLs in memory; ``@file`` streams them from a file, lazily."""
    if spec.startswith("@"):
        return (line.rstrip("\n") for line in open(spec[1:]))
    base, n = spec.split("|")
    return [f"{base}/page/{i}" for i in range(int(n))]


# -- the contenders: each takes (urls, concurrency, out or None) and returns items done ------


def run_conveyor(
    urls: Iterable[str], c: int, out: IO[bytes] | None, *, journal: str | None = None
) -> int:
    import conveyor as cv

    def title(response: Any) -> bytes:  # cheap and plain: inline, right after the fetch
        return record(response.url, response.status, response.body)

    # With a journal, keyed by URL as ``conveyor fetch`` runs.
    pipeline = cv.Pipeline(urls, key=str if journal else None).fetch(concurrency=c, per_host=c)
    if out is None:
        result = pipeline.run(journal=journal)
    else:
        result = pipeline.map(title, on="inline").run(sink=out.write, journal=journal)
    if result.failed:
        raise SystemExit(f"conveyor: {result.failures_by_kind}")
    return result.results


def run_conveyor_journal(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    """The conveyor job with a resume journal keyed by URL."""
    with tempfile.TemporaryDirectory(dir=HERE) as folder:  # the real disk, not a tmpfs
        return run_conveyor(urls, c, out, journal=os.path.join(folder, "run.journal"))


def run_client(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    """conveyor's HttpClient on its own, driven by c workers (no pipeline)."""
    import asyncio

    import uvloop

    from conveyor.http import HttpClient

    done = 0

    async def main() -> None:
        nonlocal done
        source = iter(urls)
        async with HttpClient(concurrency=c, per_host=c) as client:

            async def worker() -> None:
                nonlocal done
                for url in source:
                    response = await client.fetch(url)
                    if out is not None:
                        out.write(record(url, response.status, response.body))
                    done += 1

            async with asyncio.TaskGroup() as group:
                for _ in range(c):
                    group.create_task(worker())

    uvloop.run(main())
    return done


def run_aiohttp(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    import asyncio

    import aiohttp
    import uvloop

    async def main() -> int:
        semaphore = asyncio.Semaphore(c)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:

            async def one(url: str) -> None:
                async with semaphore, session.get(url) as response:
                    body = await response.read()
                    if out is not None:
                        out.write(record(url, response.status, body))

            results = await asyncio.gather(*(one(u) for u in urls))
        return len(results)

    return uvloop.run(main())


def run_httpx(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    import asyncio

    import httpx
    import uvloop

    async def main() -> int:
        semaphore = asyncio.Semaphore(c)
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def one(url: str) -> None:
                async with semaphore:
                    response = await client.get(url)
                    if out is not None:
                        out.write(record(url, response.status_code, response.content))

            results = await asyncio.gather(*(one(u) for u in urls))
        return len(results)

    return uvloop.run(main())


def run_requests(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()

    def one(url: str) -> bytes:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.get(url, timeout=30)
        return record(url, response.status_code, response.content)

    done = 0
    with ThreadPoolExecutor(max_workers=c) as pool:
        for line in pool.map(one, urls):
            if out is not None:
                out.write(line)
            done += 1
    return done


def run_scrapy(urls: Iterable[str], c: int, out: IO[bytes] | None) -> int:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class Bench(scrapy.Spider):
        name = "bench"

        async def start(self) -> Any:
            for url in urls:
                yield scrapy.Request(url, dont_filter=True)

        def parse(self, response: Any) -> Iterator[dict[str, Any]]:
            if out is not None:
                match = TITLE.search(response.body)
                yield {"url": response.url, "status": response.status,
                       "title": match.group(1).decode() if match else None}  # fmt: skip

    feed = {"FEEDS": {out.name: {"format": "jsonlines"}}} if out is not None else {}
    process = CrawlerProcess({
        "LOG_LEVEL": "ERROR", "CONCURRENT_REQUESTS": c, "CONCURRENT_REQUESTS_PER_DOMAIN": c,
        "ROBOTSTXT_OBEY": False, "TELNETCONSOLE_ENABLED": False, "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False, "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False,
        "ASYNCIO_EVENT_LOOP": "uvloop.Loop", "LOGSTATS_INTERVAL": 0, **feed,
    })  # fmt: skip
    crawler = process.create_crawler(Bench)
    process.crawl(crawler)
    process.start()
    assert crawler.stats is not None
    return int(crawler.stats.get_value("response_received_count", 0))


CONTENDERS: dict[str, Callable[[Iterable[str], int, IO[bytes] | None], int]] = {
    "conveyor": run_conveyor,
    "conveyor-journal": run_conveyor_journal,
    "conveyor-client": run_client,
    "aiohttp": run_aiohttp,
    "httpx": run_httpx,
    "requests": run_requests,
    "scrapy": run_scrapy,
}
LABELS = {
    "conveyor": "conveyor Pipeline.fetch",
    "conveyor-journal": "conveyor Pipeline.fetch, journal keyed by URL",
    "conveyor-client": "conveyor HttpClient (no pipeline)",
    "aiohttp": "aiohttp + gather + semaphore",
    "httpx": "httpx.AsyncClient + gather + semaphore",
    "requests": "requests + ThreadPoolExecutor",
    "scrapy": "Scrapy",
}


MODULES = {
    "conveyor": ["conveyor", "conveyor.http", "conveyor._http.client", "uvloop", "orjson"],
    "conveyor-journal": ["conveyor", "conveyor.http", "conveyor._io", "uvloop", "orjson"],
    "conveyor-client": ["conveyor.http", "conveyor._http.client", "uvloop", "orjson"],
    "aiohttp": ["aiohttp", "uvloop", "orjson"],
    "httpx": ["httpx", "uvloop", "orjson"],
    "requests": ["requests", "orjson"],
    "scrapy": ["scrapy", "scrapy.crawler", "uvloop"],
}


def case(name: str, spec: str, c: int, with_output: bool) -> dict[str, float]:
    """One measurement, inside the fresh interpreter: seconds from first URL to last item.

    Imports happen before the clock starts, so no contender pays for its import time.
    """
    import importlib

    for module in MODULES[name]:
        importlib.import_module(module)
    urls = url_source(spec)
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as out:
        path = Path(out.name)
        began = time.perf_counter()
        done = CONTENDERS[name](urls, c, out if with_output else None)
        out.flush()
        seconds = time.perf_counter() - began
    lines = sum(1 for _ in path.open("rb")) if with_output else done
    path.unlink()
    return {"seconds": seconds, "items": done, "lines": lines}


# -- the driver ------------------------------------------------------------------------------


def measure(name: str, spec: str, c: int, with_output: bool) -> dict[str, float]:
    """Run one case in a fresh interpreter; add its peak RSS in MiB."""
    argv = [sys.executable, __file__, "--case", name, spec, str(c), str(int(with_output))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"case {name} failed: {output[-500:]}")
    return {**json.loads(output.strip().splitlines()[-1]), "rss_mib": usage.ru_maxrss / 1024}


def interleaved(names: list[str], spec: str, c: int, out: bool, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            runs[name].append(measure(name, spec, c, out))
    return runs


def median(runs: list[dict[str, float]], field: str = "seconds") -> float:
    return statistics.median(r[field] for r in runs)


def table(title: str, runs: dict[str, Any], n: int, ideal: float | None = None) -> list[str]:
    """Markdown rows: median seconds, items/s, RSS, and the ratio to the best peer."""
    lines = [f"### {title}", "", "| contender | median s | items/s | peak RSS MiB | vs conveyor |"]
    lines.append("| --- | --- | --- | --- | --- |")
    ours = median(runs["conveyor"]) if "conveyor" in runs else None
    for name, measured in runs.items():
        seconds = median(measured)
        ratio = f"{seconds / ours:.2f}x the time" if ours and name != "conveyor" else ""
        rss = median(measured, "rss_mib")
        lines.append(
            f"| {LABELS[name]} | {seconds:.3f} | {n / seconds:,.0f} | {rss:.0f} | {ratio} |"
        )
    for name, measured in runs.items():
        if any(r["lines"] != n for r in measured):
            lines.append(f"\n**{name} did not finish every item: {measured}**")
    if ideal is not None and ours is not None:
        lines.append(f"\nideal {ideal:.3f} s; conveyor {ours:.3f} s = ideal + "
                     f"{(ours / ideal - 1) * 100:.1f}%")  # fmt: skip
    if ours is not None:
        peers = {k: median(v) for k, v in runs.items() if not k.startswith("conveyor")}
        if peers:
            best = min(peers, key=peers.__getitem__)
            lines.append(
                f"\nfastest peer: {LABELS[best]} {peers[best]:.3f} s; conveyor "
                f"{peers[best] / ours:.2f}x its items/s"
            )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small N, one repeat (< 1 min)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", nargs="+", choices=["latency", "throughput", "memory"])
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS))
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.case:
        name, spec, c, out = options.case
        print(json.dumps(case(name, spec, int(c), out == "1")))
        return

    from _servers import delay_server, nginx

    quick = options.quick
    repeats = options.repeats or (1 if quick else 5)
    only = set(options.only or ["latency", "throughput", "memory"])
    names = options.contenders or list(CONTENDERS)
    report = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {repeats} interleaved "
        f"repeat(s), {'quick' if quick else 'full'} mode",
        "",
    ]
    print(report[0], flush=True)

    if "latency" in only:
        n, c, delay = (1_000 if quick else 10_000), 500, 0.1
        with delay_server(delay) as base:
            runs = interleaved(names, f"{base}|{n}", c, False, repeats)
        section = table(
            f"latency: {n:,} URLs, {delay * 1000:.0f} ms server delay, concurrency {c}",
            runs, n, ideal=n * delay / c,
        )  # fmt: skip
        report += section
        print("\n".join(section), flush=True)

    if "throughput" in only or "memory" in only:
        with nginx() as base:
            if "throughput" in only:
                n, c = (2_000 if quick else 20_000), 100
                runs = interleaved(names, f"{base}|{n}", c, True, repeats)
                section = table(
                    f"throughput: {n:,} URLs, nginx, concurrency {c}, fetch + title + JSON lines",
                    runs, n,
                )  # fmt: skip
                report += section
                print("\n".join(section), flush=True)
            if "memory" in only:
                report += memory_case(base, quick)

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"fetch-{'quick' if quick else 'full'}.md").write_text("\n".join(report) + "\n")


def memory_case(base: str, quick: bool) -> list[str]:
    sizes = (5_000, 20_000) if quick else (10_000, 1_000_000)
    lines = [
        "### memory: the throughput job, URLs streamed from a file, concurrency 100",
        "",
        "| N | conveyor peak RSS MiB | conveyor s | aiohttp + gather peak RSS MiB |",
        "| --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            path = Path(folder) / f"urls-{n}.txt"
            with path.open("w") as f:
                f.writelines(f"{base}/page/{i}\n" for i in range(n))
            ours = measure("conveyor", f"@{path}", 100, True)
            # gather needs every coroutine at once: measured up to 100k only (it grows ~linearly).
            peer = measure("aiohttp", f"@{path}", 100, True) if n <= 100_000 else None
            peer_rss = f"{peer['rss_mib']:.0f}" if peer else "(not run: grows with N)"
            lines.append(f"| {n:,} | {ours['rss_mib']:.0f} | {ours['seconds']:.1f} | {peer_rss} |")
            print(lines[-1], flush=True)
    return [*lines, ""]


if __name__ == "__main__":
    main()
