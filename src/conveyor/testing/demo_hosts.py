"""The demo site's three impolite-to-crawl hosts, each misbehaving in one way a polite
client must handle (``conveyor demo`` shows it handling them):

- **refusing**: answers 429 with ``Retry-After: 1`` when more than ``limit`` (4) of its
  requests are in flight, the refused one counted; else the page after ``latency``.
- **slowing**: slows down with its load, ``latency * max(1, in_flight / knee)`` (knee 3):
  past the knee more requests at once buy no pages, only waiting.
- **flapping**: goes away once it has answered ``down_after`` requests (never when it is
  None): its port is closed (connections refused) and requests on connections kept from
  before are dropped, for ``down_for`` seconds (4); then it listens on the same port again.

Each serves the demo's pages (``/p/N``, always 200) and ``/_host`` (its counters, JSON).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field

from aiohttp import web

from .demo_site import page_html

KINDS = ("refusing", "slowing", "flapping")


@dataclass
class Counters:
    """What one host saw: for the demo's tests (and anyone curious, at ``/_host``)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    refused: int = 0
    dropped: int = 0  # requests that came while it was away, on an old connection
    outages: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HostSettings:
    limit: int = 4
    knee: int = 3
    latency: float = 0.02
    down_after: int | None = 60
    down_for: float = 4.0


class DemoHost:
    """One of the three hosts, on its own address and port."""

    def __init__(self, kind: str, address: str, pages: int, settings: HostSettings) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: one of {', '.join(KINDS)}")
        self.kind, self.address, self.pages, self.settings = kind, address, pages, settings
        self.counters = Counters()
        self.port = 0
        self.down = False
        self.tasks: set[asyncio.Task[None]] = set()
        app = web.Application()
        app.router.add_get("/_host", self._summary)
        app.router.add_get("/p/{n:\\d+}", self._page)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        self.site: web.TCPSite | None = None

    @property
    def base(self) -> str:
        return f"http://{self.address}:{self.port}"

    async def start(self, port: int = 0) -> None:
        """Listen (the runner set up first), on ``port`` or a free one."""
        # SO_REUSEPORT: listen on the port again while connections of before still hold it.
        self.site = web.TCPSite(self.runner, self.address, port, reuse_port=True)
        await self.site.start()
        sockets = getattr(self.site._server, "sockets", None) or ()  # asyncio's or uvloop's
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def _summary(self, request: web.Request) -> web.Response:
        c = self.counters
        return web.json_response(
            {"kind": self.kind, "requests": c.requests, "max_in_flight": c.max_in_flight,
             "refused": c.refused, "dropped": c.dropped, "outages": c.outages,
             "statuses": {str(k): v for k, v in c.statuses.items()}}
        )  # fmt: skip

    async def _page(self, request: web.Request) -> web.StreamResponse:
        c = self.counters
        c.requests += 1
        c.in_flight += 1
        c.max_in_flight = max(c.max_in_flight, c.in_flight)
        try:
            if self.down:
                c.dropped += 1
                assert request.transport is not None
                request.transport.abort()  # gone: no answer at all
                return web.Response(status=503)
            response = await self._answer(int(request.match_info["n"]))
            c.statuses[response.status] = c.statuses.get(response.status, 0) + 1
            return response
        finally:
            c.in_flight -= 1

    async def _answer(self, n: int) -> web.Response:
        c, s = self.counters, self.settings
        met = c.in_flight  # the load this request arrived into, itself counted
        if self.kind == "refusing" and met > s.limit:
            c.refused += 1
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        delay = s.latency
        if self.kind == "slowing":
            delay *= max(1.0, met / s.knee)
        await asyncio.sleep(delay)
        answered = sum(c.statuses.values()) + 1
        if self.kind == "flapping" and answered == s.down_after:
            self._spawn(self._outage())
        # What the host did, for tests to check each answer without timing it.
        headers = {"X-Demo-Delay": repr(delay), "X-Demo-In-Flight": str(met)}
        return web.Response(
            text=page_html(n, self.pages), content_type="text/html", headers=headers
        )

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        # Owned here: cancelled and awaited by ``close``.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _outage(self) -> None:
        self.down = True
        self.counters.outages += 1
        if self.site is not None:
            await self.site.stop()
        try:
            await asyncio.sleep(self.settings.down_for)
        finally:
            for attempt in range(50):  # the port is ours, but a closing socket may hold it
                try:
                    await self.start(self.port)
                    break
                except OSError:
                    await asyncio.sleep(0.05 * (attempt + 1))
            self.down = False

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runner.cleanup()


async def start_hosts(
    addresses: list[str], pages: int, settings: HostSettings | None = None
) -> list[DemoHost]:
    """Start one host of each kind, in order, on ``addresses`` (three of them)."""
    hosts = []
    for kind, address in zip(KINDS, addresses, strict=True):
        host = DemoHost(kind, address, pages, settings or HostSettings())
        await host.runner.setup()
        await host.start()
        hosts.append(host)
    return hosts
