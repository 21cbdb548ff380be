"""The demo site: thousands of pages that behave like the real web, deterministically.

Each page's behaviour is a pure function of its number (``plan(n)``), so a demo run is
repeatable and a test can predict what every URL will do:

- latency from a few milliseconds to a second (most pages fast, a few slow);
- transient 500s (fail once, then succeed: retries fix them) and a few permanent 500s;
- 429s with ``Retry-After: 1`` on the first request;
- 301 redirects to a moved page, a few 404s, and a few huge pages (4 MiB).

Serve it alone with ``conveyor serve`` or ``python -m conveyor.testing.demo_site``; it binds
one port on each given loopback address, so per-host limits have several hosts to show.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

if TYPE_CHECKING:
    from .demo_hosts import DemoHost

Kind = Literal["ok", "flaky", "broken", "throttled", "redirect", "missing", "huge"]
HUGE_BYTES = 4 * 1024 * 1024
_TOPICS = ("rivers", "engines", "bridges", "orchards", "comets", "harbours", "looms", "lanterns")
_SEEN = web.AppKey("seen", set)
_PAGES = web.AppKey("pages", int)


@dataclass(frozen=True, slots=True)
class PagePlan:
    kind: Kind
    delay: float  # seconds before answering


def _fraction(n: int, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def plan(n: int) -> PagePlan:
    """What page ``n`` does: the same answer every time, for the server and for tests."""
    roll = _fraction(n, "kind")
    kind: Kind
    if roll < 0.02:
        kind = "flaky"
    elif roll < 0.025:
        kind = "broken"
    elif roll < 0.0255:
        # Few: each 429 pauses its host for everyone and slows it down for a while.
        kind = "throttled"
    elif roll < 0.0555:
        kind = "redirect"
    elif roll < 0.0575:
        kind = "missing"
    elif roll < 0.0605:
        kind = "huge"
    else:
        kind = "ok"
    speed = _fraction(n, "delay")
    if speed < 0.01:
        delay = 1.0
    elif speed < 0.04:
        delay = 0.1 + 0.3 * _fraction(n, "slow")
    else:
        delay = 0.002 + 0.038 * _fraction(n, "fast")
    return PagePlan(kind, delay)


def page_html(n: int, pages: int) -> str:
    topic = _TOPICS[n % len(_TOPICS)]
    links = "".join(
        f'<li><a href="/p/{(n * 7 + i * 131) % pages}">page {(n * 7 + i * 131) % pages}</a></li>'
        for i in range(12)
    )
    words = " ".join(_TOPICS[(n + i) % len(_TOPICS)] for i in range(300))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Page {n} about {topic}</title>"
        f'<meta name="description" content="Demo page {n}: notes on {topic}."></head>'
        f"<body><h1>{topic.title()} #{n}</h1><p>{words}</p><ul>{links}</ul></body></html>"
    )


async def _page(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    pages = request.app[_PAGES]
    the_plan = plan(n)
    await asyncio.sleep(the_plan.delay)
    seen: set[int] = request.app[_SEEN]
    first_time = n not in seen
    seen.add(n)
    if the_plan.kind == "flaky" and first_time:
        return web.Response(status=500, text="temporary failure, try again")
    if the_plan.kind == "broken":
        return web.Response(status=500, text="this page is broken")
    if the_plan.kind == "throttled" and first_time:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
    if the_plan.kind == "redirect" and not request.path.endswith("/moved"):
        raise web.HTTPMovedPermanently(location=f"/p/{n}/moved")
    if the_plan.kind == "missing":
        return web.Response(status=404, text="no such page")
    if the_plan.kind == "huge":
        return await _huge(request, n)
    return web.Response(text=page_html(n, pages), content_type="text/html")


async def _huge(request: web.Request, n: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    response.content_length = HUGE_BYTES
    await response.prepare(request)
    head = f"<html><head><title>Huge page {n}</title></head><body>".encode()
    chunk = b"<p>" + b"data " * 200 + b"</p>\n"
    sent = len(head)
    await response.write(head)
    while sent + len(chunk) <= HUGE_BYTES:
        await response.write(chunk)
        sent += len(chunk)
    await response.write(b" " * (HUGE_BYTES - sent))
    await response.write_eof()
    return response


def make_demo_app(pages: int = 10_000) -> web.Application:
    app = web.Application()
    app[_PAGES] = pages
    app[_SEEN] = set()
    app.router.add_get("/p/{n:\\d+}", _page)
    app.router.add_get("/p/{n:\\d+}/moved", _page)
    return app


async def serve(
    hosts: Sequence[str],
    pages: int,
    port: int = 0,
    polite: Sequence[str] = (),
    flap_after: int | None = 60,
) -> None:
    """Serve until SIGINT/SIGTERM, printing ``listening on URL`` once per address, and
    ``KIND listening on URL`` for each of the three hosts of ``demo_hosts`` on the
    ``polite`` addresses (none, or three: refusing, slowing, flapping)."""
    from .demo_hosts import HostSettings, start_hosts  # it imports this module's pages

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_demo_app(pages), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    extra: list[DemoHost] = []
    try:
        for host in hosts:
            site = web.TCPSite(runner, host, port, backlog=1024)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or ()
            bound = sockets[0].getsockname()[1] if sockets else port
            sys.stdout.write(f"listening on http://{host}:{bound}\n")
        settings = HostSettings(down_after=flap_after)
        extra += await start_hosts(list(polite), pages, settings) if polite else []
        for demo_host in extra:
            sys.stdout.write(f"{demo_host.kind} listening on {demo_host.base}\n")
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        for demo_host in extra:
            await demo_host.close()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="conveyor's demo site")
    parser.add_argument("--hosts", default="127.0.0.1,127.0.0.2,127.0.0.3")
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--polite-hosts",
        default="",
        help="three addresses for the refusing, slowing and flapping hosts (demo_hosts.py)",
    )
    parser.add_argument(
        "--flap-after",
        type=int,
        default=60,
        help="the flapping host goes away after this many answers (0: never)",
    )
    args = parser.parse_args(argv)
    polite = [a for a in args.polite_hosts.split(",") if a]
    if polite and len(polite) != 3:
        parser.error("--polite-hosts takes three addresses (refusing, slowing, flapping)")
    main_coro = serve(args.hosts.split(","), args.pages, args.port, polite, args.flap_after or None)
    try:
        import uvloop

        uvloop.run(main_coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(main_coro)


if __name__ == "__main__":
    main()
