"""The arena: hosts that each misbehave in one way a polite client must handle.

Each host has its own loopback address (127.0.0.11, .12, ...: a host per address, as the
per-host limits see hosts), a port of its own, and one behaviour:

- **A** answers 429 with ``Retry-After`` when more than ``k`` (3) of its requests are in
  flight, the refused one counted; else it answers after ``latency``.
- **B** slows down with its load: ``latency * max(1, in_flight / knee)``, a knee at 4 in
  flight, so past it more concurrency buys no throughput, only latency.
- **C** goes down for ``c_down_for`` seconds (20) once it has answered ``c_down_after``
  requests (mid-run, chosen by progress, not by time), then comes back on the same port.
  ``c_outage="refuse"``: its port is closed (connections refused, as a host that is down)
  and requests on connections kept from before are dropped unanswered; ``"reset"``: it
  keeps listening and drops every request unanswered, so each attempt is counted.
- **D** is fine on ``/item/N``, never answers ``/stall/N``, and on ``/trickle/N`` sends its
  head and then one byte every ``trickle_every`` seconds, forever.
- **E** answers its first request 503 with ``Retry-After`` as an HTTP date
  ``e_retry_after`` (30) seconds ahead, and every request before that date the same way,
  counted as ``early``; after it, 200. With ``e_refuse_after`` it answers that many
  requests 200 first.
- **G**, with ``quota`` > 0, sends its quota (``RateLimit-Remaining``,
  ``RateLimit-Reset``): ``quota`` requests per ``quota_window`` seconds; a request over
  it is answered 429 (counted in its statuses).
- **F**, **G**, ... are otherwise healthy and fast.

Every host serves ``/item/N`` (a small page) and ``/_arena`` (everyone's counters, JSON).
In-process, for tests::

    async with run_arena(ArenaSettings(c_down_for=2.0)) as arena:
        arena.url("A", "/item/1")
        arena.stats["A"].max_in_flight_after(t0)

As a process, for the benchmark and the CLI: ``python -m conveyor.testing.arena`` prints
one ``NAME listening on URL`` line per host, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import ipaddress
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from .._errors import UsageError
from .arena_stats import ArenaStats, HostCounters

__all__ = ["ArenaSettings", "RunningArena", "run_arena"]

NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class ArenaSettings:
    """The arena's hosts and the numbers of their misbehaviour (see the module docstring)."""

    hosts: int = 8
    first_address: str = "127.0.0.11"
    latency: float = 0.02
    k: int = 3
    a_retry_after: int = 1
    knee: int = 4
    c_down_after: int = 20
    c_down_for: float = 20.0
    c_outage: Literal["refuse", "reset"] = "refuse"
    e_retry_after: float = 30.0
    e_refuse_after: int = 0
    quota: int = 0
    quota_window: float = 1.0
    trickle_every: float = 5.0
    page_bytes: int = 512

    def __post_init__(self) -> None:
        if not 5 <= self.hosts <= len(NAMES):
            raise UsageError(f"hosts={self.hosts}: the arena has 5 (A to E) to 26 hosts")
        if self.c_outage not in ("refuse", "reset"):
            raise UsageError(f"c_outage={self.c_outage!r}: give 'refuse' or 'reset'")

    def address(self, index: int) -> str:
        return str(ipaddress.IPv4Address(self.first_address) + index)


@dataclass
class RunningArena:
    """A started arena: each host's base URL and counters, by name."""

    settings: ArenaSettings
    bases: dict[str, str]
    stats: ArenaStats
    c_down: asyncio.Event = field(default_factory=asyncio.Event)  # set while C is down

    def url(self, name: str, path: str = "/") -> str:
        return self.bases[name] + path

    def host(self, name: str) -> str:
        """``"127.0.0.11:PORT"``: the host key of ``name``."""
        return self.bases[name].split("://", 1)[1]

    def urls(self, per_host: int, *, stalls: int = 0) -> list[str]:
        """``per_host`` item URLs of every host, interleaved; with ``stalls``, that many of
        D's are ``/stall/N`` and as many ``/trickle/N`` instead."""
        out = []
        for n in range(per_host):
            for name in self.bases:
                path = f"/item/{n}"
                if name == "D" and n < 2 * stalls:
                    path = f"/stall/{n}" if n % 2 == 0 else f"/trickle/{n}"
                out.append(self.url(name, path))
        return out


class _Host:
    """One arena host: its app, runner and site, and what it does to each request."""

    def __init__(
        self, name: str, address: str, arena: RunningArena, settings: ArenaSettings
    ) -> None:
        self.name, self.address, self.settings = name, address, settings
        self.stats = arena.stats
        self.counters = self.stats.hosts.setdefault(name, HostCounters())
        self.port = 0
        self.down = False  # C: in its outage
        self.down_event = arena.c_down
        self.outage_started = False
        self.e_until: float | None = None  # E: the wall time its Retry-After named
        self.window_start = 0.0  # G: the start of its quota's window (time.monotonic())
        self.used = 0  # G: requests in that window
        self.forever = asyncio.Event()  # never set: what D's stalled requests wait for
        self.tasks: set[asyncio.Task[None]] = set()
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/_arena", self._summary)
        app.router.add_get("/{kind}/{n}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        self.site: web.TCPSite | None = None

    async def start(self, port: int = 0) -> None:
        # SO_REUSEPORT: C listens on its port again while connections of before still hold it.
        self.site = web.TCPSite(self.runner, self.address, port, reuse_port=self.name == "C")
        await self.site.start()
        server = self.site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def _summary(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.summary())

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/_arena":
            return await handler(request)
        counters = self.counters
        counters.arrive(request.path)
        arrived_with = counters.in_flight
        try:
            if self.down:
                counters.outage_hits += 1
                assert request.transport is not None
                request.transport.abort()  # no answer at all: the client sees a reset
                return web.Response(status=503)
            response = await handler(request)
            counters.answered(response.status)
            if not response.prepared:  # what the host saw, for tests to check each answer
                response.headers["X-Arena-In-Flight"] = str(arrived_with)
            return response
        finally:
            counters.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        s, name, counters = self.settings, self.name, self.counters
        if name == "A" and counters.in_flight > s.k:
            return web.Response(status=429, headers={"Retry-After": str(s.a_retry_after)})
        if name == "E" and counters.requests > s.e_refuse_after:
            refusal = self._e_refusal()
            if refusal is not None:
                return refusal
        quota: dict[str, str] = {}
        if name == "G" and s.quota:
            quota = self._quota()
            if int(quota["RateLimit-Remaining"]) < 0:
                quota["RateLimit-Remaining"] = "0"
                return web.Response(status=429, headers=quota)
        if name == "D" and request.match_info["kind"] in ("stall", "trickle"):
            return await self._stall(request)
        delay = s.latency
        if name == "B":
            delay *= max(1.0, counters.in_flight / s.knee)
        if name not in "ABCDE":
            delay = 0.0
        if delay:
            await asyncio.sleep(delay)
        headers = {"X-Arena-Delay": repr(delay), **quota}
        if name == "C" and counters.requests >= s.c_down_after and not self.outage_started:
            self.outage_started = True
            self._spawn(self._outage())
        return web.Response(body=b"x" * s.page_bytes, content_type="text/html", headers=headers)

    def _quota(self) -> dict[str, str]:
        """G's quota headers for this request (remaining below 0: over the quota)."""
        now, window = time.monotonic(), self.settings.quota_window
        if now - self.window_start >= window:
            self.window_start, self.used = now, 0
        self.used += 1
        # Whole seconds, rounded up: a client waiting that long never comes back early.
        reset = math.ceil(self.window_start + window - now)
        return {
            "RateLimit-Remaining": str(self.settings.quota - self.used),
            "RateLimit-Reset": str(reset),
        }

    def _e_refusal(self) -> web.Response | None:
        now = time.time()
        if self.e_until is None:
            # A whole second: an HTTP date has no fractions, and "not before" must hold.
            self.e_until = float(math.ceil(now + self.settings.e_retry_after))
        elif now >= self.e_until:
            return None
        else:
            self.counters.early += 1
        date = email.utils.formatdate(self.e_until, usegmt=True)
        return web.Response(status=503, headers={"Retry-After": date})

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        self.counters.stalled += 1
        try:
            if request.match_info["kind"] == "stall":
                await self.forever.wait()
            response = web.StreamResponse(headers={"Content-Length": str(1 << 20)})
            await response.prepare(request)
            while True:
                await response.write(b"x")
                await asyncio.sleep(self.settings.trickle_every)
        finally:
            self.counters.stalled -= 1

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        # Owned here: cancelled and awaited by ``close``.
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _outage(self) -> None:
        """C goes down, stays down ``c_down_for`` seconds, and comes back."""
        self.down = True
        self.down_event.set()
        if self.settings.c_outage == "refuse" and self.site is not None:
            await self.site.stop()
        try:
            await asyncio.sleep(self.settings.c_down_for)
        finally:
            if self.settings.c_outage == "refuse":
                await self._listen_again()
            self.down = False
            self.down_event.clear()

    async def _listen_again(self) -> None:
        for attempt in range(50):  # the port is ours, but a closing socket may hold it
            try:
                await self.start(self.port)
                return
            except OSError:
                await asyncio.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"arena host C could not listen on {self.address}:{self.port} again")

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def run_arena(settings: ArenaSettings | None = None) -> AsyncIterator[RunningArena]:
    """Serve the arena's hosts until the block ends."""
    settings = settings or ArenaSettings()
    stats = ArenaStats()
    running = RunningArena(settings, {}, stats)
    hosts = []
    try:
        for index in range(settings.hosts):
            host = _Host(NAMES[index], settings.address(index), running, settings)
            hosts.append(host)
            await host.runner.setup()
            await host.start()
            running.bases[host.name] = f"http://{host.address}:{host.port}"
        yield running
    finally:
        for host in hosts:
            await host.close()


async def _serve_forever(settings: ArenaSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_arena(settings) as arena:
        for name, base in arena.bases.items():
            sys.stdout.write(f"{name} listening on {base}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    defaults = ArenaSettings()
    parser = argparse.ArgumentParser(description="conveyor's arena of misbehaving hosts")
    parser.add_argument("--hosts", type=int, default=defaults.hosts)
    parser.add_argument("--first-address", default=defaults.first_address)
    parser.add_argument("--latency", type=float, default=defaults.latency)
    parser.add_argument("--k", type=int, default=defaults.k)
    parser.add_argument("--knee", type=int, default=defaults.knee)
    parser.add_argument("--c-down-after", type=int, default=defaults.c_down_after)
    parser.add_argument("--c-down-for", type=float, default=defaults.c_down_for)
    parser.add_argument("--c-outage", choices=("refuse", "reset"), default=defaults.c_outage)
    parser.add_argument("--e-retry-after", type=float, default=defaults.e_retry_after)
    args = parser.parse_args(argv)
    try:
        settings = ArenaSettings(**vars(args))
    except UsageError as exc:
        parser.error(str(exc))  # one line and exit status 2, no traceback
    asyncio.run(_serve_forever(settings))


if __name__ == "__main__":
    main()
