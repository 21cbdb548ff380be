"""Politeness benchmark (issue 21): the arena's misbehaving hosts, one URL list, fetched by
conveyor with its per-host controller, conveyor ``--no-adapt`` (fixed limits), and Scrapy
with AutoThrottle (its defaults, and ``AUTOTHROTTLE_TARGET_CONCURRENCY`` tuned).

Each run gets a fresh arena (``conveyor.testing.arena``) in its own process, so it does not
share the client's core more than it must, and so C's outage and E's date start afresh.
What each host saw is counted by the host itself (the server, never the client), read
through a small control endpoint this script serves beside the arena (``--serve``).

Reported per run: items/s, and per host the requests, refusals (429/503), other 5xx,
requests that hit C while it was down, and the wasted requests (all of those). Then the
issue's targets:

- A: refused share of A's requests after the first 30 s (target <= 2%), most in flight
  after 30 s (target <= k = 3);
- B: B alone, conveyor's controller vs the best fixed ``--per-host`` of a sweep (target:
  within 10%);
- C: requests that reached C while it was down, per break period (target <= 1);
- E: requests before E's date (target 0), also across a SIGKILL and a rerun;
- D: with ``--finish-at 99%`` the run ends with D's stalled URLs deferred (exit 75), and a
  second run ends each of them exactly once.

Usage::

    make bench                                  # installs Scrapy (the bench extra)
    .venv/bin/python benchmarks/polite.py --quick   # ~2 minutes, short arena timings
    .venv/bin/python benchmarks/polite.py           # the full arena (C down 20 s, E 30 s)

"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTROL_ADDRESS = "127.0.0.10"

SPIDER = """
import scrapy


class ListSpider(scrapy.Spider):
    name = "list"

    def __init__(self, urls="", **kwargs):
        super().__init__(**kwargs)
        self.urls_path = urls

    async def start(self):  # Scrapy 2.13's way (start_requests alone yielded none here)
        for request in self.start_requests():
            yield request

    def start_requests(self):
        with open(self.urls_path) as lines:
            for line in lines:
                if line.strip():
                    yield scrapy.Request(line.strip(), dont_filter=True, errback=self.failed)

    def parse(self, response):
        return {"url": response.url, "status": response.status}

    def failed(self, failure):
        return {"url": failure.request.url, "status": None, "error": type(failure.value).__name__}
"""


# -- the arena, served with a control endpoint (``--serve``) -----------------------------


async def _serve(settings_json: str) -> None:
    from aiohttp import web

    from conveyor.testing.arena import ArenaSettings, run_arena

    settings = ArenaSettings(**json.loads(settings_json))
    marks: dict[str, float] = {"start": time.monotonic()}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_arena(settings) as arena:

        async def mark(request: web.Request) -> web.Response:
            marks["start"] = time.monotonic()  # the run's start: "after 30 s" counts from here
            return web.json_response({"ok": True})

        async def stats(request: web.Request) -> web.Response:
            since = marks["start"] + float(request.query.get("after", "0"))
            out = {}
            for name, counters in arena.stats.hosts.items():
                summary = counters.summary()
                summary["max_in_flight_after"] = counters.max_in_flight_after(since)
                summary["refusal_share_after"] = counters.refusal_share_after(since)
                summary["arrived_after"] = sum(1 for a in counters.arrivals if a.at >= since)
                out[name] = summary
            return web.json_response(out)

        app = web.Application()
        app.router.add_get("/mark", mark)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, CONTROL_ADDRESS, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for name, base in arena.bases.items():
            print(f"{name} {base}", flush=True)
        print(f"control http://{CONTROL_ADDRESS}:{port}", flush=True)
        await stop.wait()
        await runner.cleanup()


@dataclass
class Arena:
    bases: dict[str, str]
    control: str
    proc: subprocess.Popen[str]

    def mark(self) -> None:
        urllib.request.urlopen(f"{self.control}/mark", timeout=10).read()

    def stats(self, after: float = 0.0) -> dict[str, dict[str, object]]:
        with urllib.request.urlopen(f"{self.control}/stats?after={after}", timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


@contextlib.contextmanager
def arena(settings: dict[str, object]) -> Iterator[Arena]:
    """A fresh arena in its own process, for one run."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", json.dumps(settings)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stdout is not None
    bases: dict[str, str] = {}
    try:
        for line in proc.stdout:
            name, url = line.split()
            if name == "control":
                yield Arena(bases, url, proc)
                return
            bases[name] = url
        raise SystemExit("the arena did not start")
    finally:
        proc.terminate()
        proc.wait(10)


# -- the clients ----------------------------------------------------------------------


@dataclass
class Run:
    name: str
    records: int
    wall: float
    code: int
    hosts: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.wall if self.wall else 0.0


def wasted(host: dict[str, object]) -> int:
    """Requests that brought nothing, as the host counted them."""
    statuses: dict[str, int] = host["statuses"]  # type: ignore[assignment]
    refused_or_failed = sum(n for status, n in statuses.items() if status in ("429", "503"))
    server_errors = sum(
        n for status, n in statuses.items() if status.startswith("5") and status != "503"
    )
    return refused_or_failed + server_errors + int(host["outage_hits"])  # type: ignore[call-overload]


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def conveyor_command(urls: Path, out: Path, args: argparse.Namespace, *extra: str) -> list[str]:
    return [sys.executable, "-m", "conveyor", "fetch", str(urls), "-o", str(out), "-q",
            "--concurrency", str(args.concurrency), "--per-host", str(args.per_host),
            "--timeout", str(args.timeout), *extra]  # fmt: skip


def scrapy_command(urls: Path, work: Path, out: Path, args: argparse.Namespace,
                   target: float | None) -> list[str]:  # fmt: skip
    spider = work / "list_spider.py"
    spider.write_text(SPIDER)
    settings: dict[str, object] = {
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.per_host,
        "AUTOTHROTTLE_ENABLED": True,
        "HTTPERROR_ALLOW_ALL": True,
        "DOWNLOAD_TIMEOUT": args.timeout,
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "FEEDS": f'{{"{out}": {{"format": "jsonlines"}}}}',
    }
    if target is not None:
        settings["AUTOTHROTTLE_TARGET_CONCURRENCY"] = target
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-a", f"urls={urls}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command


def run(name: str, command: list[str], the_arena: Arena, out: Path, *,
        kill_when: str | None = None) -> Run:  # fmt: skip
    """Run ``command`` to its end (or SIGKILL it once host ``kill_when`` has answered a
    request and records were written after that, so a commit has kept what the answer
    said): records written, wall time, exit code, and what every host saw."""
    the_arena.mark()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=out.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    written_at_answer: int | None = None
    while proc.poll() is None:
        if kill_when is not None:
            if written_at_answer is None:
                seen = the_arena.stats()[kill_when]
                if int(seen["requests"]) > 0:  # type: ignore[call-overload]
                    written_at_answer = lines(out)
            elif lines(out) > written_at_answer:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 75, -signal.SIGKILL):
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return Run(name, lines(out), wall, proc.returncode, the_arena.stats())


def print_run(result: Run) -> None:
    print(f"\n{result.name}: {result.records:,} records in {result.wall:.1f} s "
          f"({result.rate:,.1f} items/s), exit {result.code}")  # fmt: skip
    print(f"  {'host':<5}{'requests':>9}{'refused':>9}{'5xx':>6}{'down hits':>11}{'wasted':>8}"
          f"{'max in flight':>15}{'early':>7}")  # fmt: skip
    for name, host in result.hosts.items():
        statuses: dict[str, int] = host["statuses"]  # type: ignore[assignment]
        refused = sum(n for s, n in statuses.items() if s in ("429", "503"))
        errors = sum(n for s, n in statuses.items() if s.startswith("5") and s != "503")
        print(f"  {name:<5}{host['requests']:>9}{refused:>9}{errors:>6}{host['outage_hits']:>11}"
              f"{wasted(host):>8}{host['max_in_flight']:>15}{host['early']:>7}")  # fmt: skip


# -- the scenarios --------------------------------------------------------------------


def supports(name: str) -> bool:
    """Whether this build takes an option of issue 21 (before its merge, none)."""
    import dataclasses
    import inspect

    from conveyor._http.config import FetchConfig
    from conveyor._pipeline.pipeline import Pipeline

    fields = {f.name for f in dataclasses.fields(FetchConfig)}
    return name in fields or name in inspect.signature(Pipeline.run).parameters


def flags(*wanted: tuple[str, str, str]) -> tuple[str, ...]:
    """``(option name, flag, value or "")`` triples: the flags this build takes; the
    others are named once, and left out (the run is then the build's default)."""
    out: list[str] = []
    for name, flag, value in wanted:
        if supports(name):
            out += [flag, value] if value else [flag]
        else:
            print(f"  (this build has no {flag} yet: run without it)")
    return tuple(out)


def settings_of(args: argparse.Namespace) -> dict[str, object]:
    if args.quick:
        return {"hosts": 8, "first_address": "127.0.0.11", "c_down_after": 40,
                "c_down_for": 8.0, "c_outage": "reset", "e_retry_after": 6.0}  # fmt: skip
    return {"hosts": 8, "first_address": "127.0.0.11", "c_outage": "reset"}


def url_list(bases: dict[str, str], per_host: int, path: Path, *, stalls: int = 0,
             only: str | None = None) -> Path:  # fmt: skip
    with path.open("w") as out:
        for n in range(per_host):
            for name, base in bases.items():
                if only is not None and name != only:
                    continue
                if name == "D" and n < stalls:
                    out.write(f"{base}/stall/{n}\n")
                else:
                    out.write(f"{base}/item/{n}\n")
    return path


def compare(args: argparse.Namespace, work: Path) -> dict[str, Run]:
    """The same URL list, every client: items/s and wasted requests per host; A and C."""
    runs: dict[str, Run] = {}
    variants: list[tuple[str, str, tuple[str, ...], float | None]] = [
        ("conveyor (controller)", "conveyor", (), None),
        ("conveyor --no-adapt", "conveyor", flags(("adapt", "--no-adapt", "")), None),
    ]
    if not args.skip_scrapy:
        variants += [
            ("Scrapy AutoThrottle (defaults)", "scrapy", (), None),
            (f"Scrapy AutoThrottle (target {args.scrapy_target:g})", "scrapy", (),
             args.scrapy_target),
        ]  # fmt: skip
    wanted = set(args.clients.split(","))
    keys = ("conveyor", "no-adapt", "scrapy", "scrapy-tuned")
    variants = [v for key, v in zip(keys, variants, strict=False) if key in wanted]
    for label, client, extra, target in variants:
        folder = work / label.split()[0].lower() / str(len(runs))
        folder.mkdir(parents=True)
        with arena(settings_of(args)) as the_arena:
            urls = url_list(the_arena.bases, args.per_host_urls, folder / "urls.txt")
            out = folder / "out.jsonl"
            if client == "conveyor":
                command = conveyor_command(urls, out, args, *extra)
            else:
                command = scrapy_command(urls, folder, out, args, target)
            result = run(label, command, the_arena, out)
            a_late = the_arena.stats(after=30.0)["A"]
        runs[label] = result
        print_run(result)
        print(f"  A after 30 s: refused {float(a_late['refusal_share_after']):.1%} of "  # type: ignore[arg-type]
              f"{a_late['arrived_after']} requests, most in flight {a_late['max_in_flight_after']}"
              " (targets: <= 2%, <= 3)")  # fmt: skip
        down_for = float(settings_of(args).get("c_down_for", 20.0))  # type: ignore[arg-type]
        periods = max(1.0, down_for / 30.0)
        c_hits = int(result.hosts["C"]["outage_hits"])  # type: ignore[call-overload]
        print(f"  C: {c_hits} requests while down for {down_for:g} s, "
              f"{c_hits / periods:.1f} per 30 s break (target <= 1)")  # fmt: skip
    return runs


def sweep_b(args: argparse.Namespace, work: Path) -> None:
    """B alone: the controller against the best fixed --per-host."""
    print("\nB alone: the controller against fixed --per-host")
    no_adapt = flags(("adapt", "--no-adapt", ""))
    best = 0.0
    for per_host in (1, 2, 4, 8, 16):
        folder = work / f"b-fixed-{per_host}"
        folder.mkdir(parents=True)
        with arena(settings_of(args)) as the_arena:
            urls = url_list(the_arena.bases, args.b_urls, folder / "urls.txt", only="B")
            out = folder / "out.jsonl"
            fixed = argparse.Namespace(**{**vars(args), "per_host": per_host})
            command = conveyor_command(urls, out, fixed, *no_adapt)
            result = run(f"fixed {per_host}", command, the_arena, out)
        best = max(best, result.rate)
        print(f"  --no-adapt --per-host {per_host:>2}: {result.rate:8,.1f} items/s")
    folder = work / "b-controller"
    folder.mkdir(parents=True)
    with arena(settings_of(args)) as the_arena:
        urls = url_list(the_arena.bases, args.b_urls, folder / "urls.txt", only="B")
        out = folder / "out.jsonl"
        wide = argparse.Namespace(**{**vars(args), "per_host": 16})
        result = run("controller", conveyor_command(urls, out, wide), the_arena, out)
    print(f"  controller (--per-host 16):  {result.rate:8,.1f} items/s = "
          f"{result.rate / best:.0%} of the best fixed (target >= 90%)")  # fmt: skip


def e_across_sigkill(args: argparse.Namespace, work: Path) -> None:
    """E: no request before its date, also when the job is SIGKILLed and run again."""
    folder = work / "e-sigkill"
    folder.mkdir(parents=True)
    with arena(settings_of(args)) as the_arena:
        urls = url_list(the_arena.bases, args.per_host_urls, folder / "urls.txt")
        out = folder / "out.jsonl"
        command = conveyor_command(urls, out, args)
        killed = run("killed", command, the_arena, out, kill_when="E")
        again = run("rerun", command, the_arena, out)
    got = Counter(json.loads(line)["url"] for line in out.read_bytes().splitlines())
    print(f"\nE across a SIGKILL: killed after {killed.records} records (exit {killed.code}); "
          f"the rerun exited {again.code}; requests to E before its date: "
          f"{again.hosts['E']['early']} (target 0); URLs written twice: "
          f"{sum(1 for n in got.values() if n > 1)}")  # fmt: skip


def d_finish_at(args: argparse.Namespace, work: Path) -> None:
    """D: --finish-at 99% ends with the stalled URLs deferred; a second run ends them once."""
    folder = work / "d-finish-at"
    folder.mkdir(parents=True)
    with arena(settings_of(args)) as the_arena:
        urls = url_list(the_arena.bases, args.per_host_urls, folder / "urls.txt", stalls=2)
        out = folder / "out.jsonl"
        tail = flags(("finish_at", "--finish-at", "99%"))
        first = run("finish-at", conveyor_command(urls, out, args, *tail), the_arena, out)
        second = run("second", conveyor_command(urls, out, args), the_arena, out)
    listed = [line for line in urls.read_text().splitlines() if line]
    got = Counter(json.loads(line)["url"] for line in out.read_bytes().splitlines())
    print(f"\nD with --finish-at 99%: the first run wrote {first.records} of {len(listed)} "
          f"in {first.wall:.1f} s, exit {first.code} (target 75); the second exited "
          f"{second.code} in {second.wall:.1f} s; every URL once: "
          f"{sorted(got) == sorted(listed) and set(got.values()) == {1}}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="short arena timings, fewer URLs")
    parser.add_argument("--skip-scrapy", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=8, help="the ceiling per host")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument(
        "--scrapy-target",
        type=float,
        default=3.0,
        help="AUTOTHROTTLE_TARGET_CONCURRENCY, tuned (A refuses above 3)",
    )
    parser.add_argument("--per-host-urls", type=int, help="URLs per host [400; quick: 120]")
    parser.add_argument("--b-urls", type=int, help="URLs for B alone [600; quick: 200]")
    parser.add_argument("--only", choices=("compare", "b", "e", "d"), action="append")
    parser.add_argument(
        "--clients",
        default="conveyor,no-adapt,scrapy,scrapy-tuned",
        help="which clients the comparison runs (comma-separated)",
    )
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    args.per_host_urls = args.per_host_urls or (120 if args.quick else 400)
    args.b_urls = args.b_urls or (200 if args.quick else 600)
    if not args.skip_scrapy:
        try:
            import scrapy  # noqa: F401
        except ImportError:
            print("Scrapy is not installed (make bench installs it): skipping its runs")
            args.skip_scrapy = True
    import tempfile

    with tempfile.TemporaryDirectory(prefix="conveyor-polite-") as tmp:
        work = Path(tmp)
        only = set(args.only or ("compare", "b", "e", "d"))
        if "compare" in only:
            compare(args, work)
        if "b" in only:
            sweep_b(args, work)
        if "e" in only:
            e_across_sigkill(args, work)
        if "d" in only:
            d_finish_at(args, work)


if __name__ == "__main__":
    main()
