"""What one HTTP exchange costs in CPU: aiohttp's session, conveyor's client, a bare protocol.

    .venv/bin/python benchmarks/exchange.py              # 20,000 requests, 3 rounds
    .venv/bin/python benchmarks/exchange.py -n 50000

Against nginx on 64 loopback hosts (``_servers.site_pages``), 100 requests at once on
uvloop, each contender in a fresh process, rounds interleaved; CPU is the process's user +
system time over the timed requests (a warm-up of 2,000 requests first). Contenders:

* ``aiohttp``: ``ClientSession.get`` + ``read()``, what the gather script does;
* ``conveyor``: ``HttpClient.fetch`` (limits, deadlines, the response record, on the wire);
* ``bare``: ~40 lines of ``asyncio.Protocol`` + ``httptools`` with a keep-alive pool and
  nothing else: the floor for Python on this machine.

This is the measurement that moved conveyor off aiohttp's session (``_http/wire.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CONCURRENCY = 100


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _with_aiohttp(urls: list[str]) -> int:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await _workers(urls, lambda url: _aiohttp_get(session, url))


async def _aiohttp_get(session: Any, url: str) -> int:
    async with session.get(url) as response:
        return len(await response.read())


async def _with_conveyor(urls: list[str]) -> int:
    from conveyor.http import HttpClient

    async with HttpClient(concurrency=CONCURRENCY, per_host=CONCURRENCY) as client:

        async def get(url: str) -> int:
            return len((await client.fetch(url)).body)

        return await _workers(urls, get)


class _Bare(asyncio.Protocol):
    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.waiter: asyncio.Future[bytes] | None = None
        self.chunks: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        body, self.chunks = b"".join(self.chunks), []
        assert self.waiter is not None
        self.waiter.set_result(body)


async def _bare(urls: list[str]) -> int:
    import httptools

    loop = asyncio.get_running_loop()
    pool: dict[tuple[bytes, int], list[_Bare]] = collections.defaultdict(list)

    async def get(url: str) -> int:
        parsed = httptools.parse_url(url.encode())
        idle = pool[(parsed.host, parsed.port)]
        if idle:
            connection = idle.pop()
        else:
            _, connection = await loop.create_connection(_Bare, parsed.host, parsed.port)
        connection.waiter = loop.create_future()
        connection.transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept-Encoding: gzip\r\n\r\n"
            % (parsed.path, parsed.host, parsed.port)
        )
        body = await connection.waiter
        idle.append(connection)
        return len(body)

    return await _workers(urls, get)


async def _workers(urls: list[str], get: Any) -> int:
    feed = iter(urls)
    total = 0

    async def worker() -> None:
        nonlocal total
        for url in feed:
            total += await get(url)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return total


CONTENDERS = {"aiohttp": _with_aiohttp, "conveyor": _with_conveyor, "bare": _bare}


def child(name: str, url_file: str) -> None:
    """One contender in this process: print CPU µs a request and requests a second."""
    import uvloop

    urls = Path(url_file).read_text().split()
    run = CONTENDERS[name]
    uvloop.run(run(urls[:2000]))  # connections open, code warm
    cpu, began = _cpu(), time.perf_counter()
    received = uvloop.run(run(urls))
    wall = time.perf_counter() - began
    print(f"{(_cpu() - cpu) / len(urls) * 1e6:.1f} {len(urls) / wall:.0f} {received}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    from _servers import host_urls, nginx

    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
    with nginx(hosts=64) as base:
        url_file = HERE / ".exchange-urls.txt"
        url_file.write_text("\n".join(host_urls(base, options.n, 64)) + "\n")
        try:
            for _ in range(options.rounds):
                for name in CONTENDERS:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", name, str(url_file)],
                        capture_output=True, text=True, check=True,
                    ).stdout.split()  # fmt: skip
                    results[name].append((float(out[0]), float(out[1])))
        finally:
            url_file.unlink()
    print(f"{options.n:,} requests, {CONCURRENCY} at once, medians of {options.rounds}")
    print("| contender | CPU µs a request | requests/s |")
    print("| --- | --- | --- |")
    for name, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        print(f"| {name} | {cpu:.0f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
