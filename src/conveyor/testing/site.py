"""The test site: an aiohttp.web app with misbehaving routes and counters.

In-process (tests)::

    async with run_site(hosts=("127.0.0.1", "127.0.0.2")) as site:
        site.url("/flaky/k?fail=2")            # on the first address
        site.url("/echo", host=1)              # the same app on the second: another host
        site.stats.max_in_flight[site.host(0)] # what the server saw

As a process (CLI tests, the demo, benchmarks)::

    python -m conveyor.testing.site --host 127.0.0.1 --port 0
    listening on http://127.0.0.1:41234

Every address of the loopback network 127.0.0.0/8 reaches this machine, so binding
127.0.0.2 as well gives tests a second *host* without DNS or a second machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiohttp import web

from . import redirects as _redirects  # noqa: F401 - registers its routes
from .routes import routes
from .stats import STATS, SiteStats, count_requests

__all__ = ["RunningSite", "SiteStats", "make_app", "run_site"]


def make_app(stats: SiteStats | None = None) -> web.Application:
    """A fresh app with all routes; its counters are ``app[STATS]`` (or ``stats``)."""
    app = web.Application(middlewares=[count_requests])
    app[STATS] = stats if stats is not None else SiteStats()
    app.add_routes(routes)
    app.router.add_get("/_stats", _stats_route)
    return app


async def _stats_route(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].summary())


@dataclass(frozen=True)
class RunningSite:
    """A started site: its base URLs (one per address) and its counters."""

    bases: tuple[str, ...]
    stats: SiteStats

    def url(self, path: str = "/", *, host: int = 0) -> str:
        return self.bases[host] + path

    def host(self, index: int = 0) -> str:
        """``"127.0.0.1:PORT"``: the key the counters use (the Host header)."""
        return self.bases[index].split("://", 1)[1]


@contextlib.asynccontextmanager
async def run_site(
    hosts: Sequence[str] = ("127.0.0.1", "127.0.0.2"), port: int = 0
) -> AsyncIterator[RunningSite]:
    """Serve one app on each address (each on its own free port) until the block ends."""
    app = make_app()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        bases = []
        for address in hosts:
            site = web.TCPSite(runner, address, port)
            await site.start()
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            bound = server.sockets[0].getsockname()[1]
            bases.append(f"http://{address}:{bound}")
        yield RunningSite(tuple(bases), app[STATS])
    finally:
        await runner.cleanup()


async def _serve_forever(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_site((host,), port) as site:
        # The one line a parent process reads to learn the port (like Scrapy's mockserver).
        sys.stdout.write(f"listening on {site.bases[0]}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="conveyor's misbehaving test site")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
