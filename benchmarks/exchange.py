"""What one HTTP exchange costs in CPU: aiohttp's session, conveyor's client, a bare protocol.

    .venv/bin/python benchmarks/exchange.py              # 20,000 requests, 3 rounds
    .venv/bin/python benchmarks/exchange.py -n 50000
    .venv/bin/python benchmarks/exchange.py --contenders conveyor,conveyor-proxy

Against nginx on 64 loopback hosts (``_servers.site_pages``), 100 requests at once on
uvloop, each contender in a fresh process, rounds interleaved; CPU is the process's user +
system time over the timed requests (a warm-up of 2,000 requests first). Contenders:

* ``aiohttp``: ``ClientSession.get`` + ``read()``, what the gather script does;
* ``conveyor``: ``HttpClient.fetch`` (limits, deadlines, the response record, on the wire);
* ``conveyor-proxy``: the same through a forward proxy (a second nginx, in front of the
  first, that the client sends absolute-form requests to): what a proxy costs the client;
* ``bare``: ~40 lines of ``asyncio.Protocol`` + ``httptools`` with a keep-alive pool and
  nothing else: the floor for Python on this machine.

This is the measurement that moved conveyor off aiohttp's session (``_http/wire.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


async def _with_conveyor(urls: list[str], proxy: str | None = None) -> int:
    from conveyor.http import HttpClient

    options: dict[str, Any] = {"concurrency": CONCURRENCY, "per_host": CONCURRENCY}
    if proxy is not None:  # only then: the same script measures clients without proxy=
        options["proxy"] = proxy
    async with HttpClient(**options) as client:

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


async def _through_proxy(urls: list[str]) -> int:
    return await _with_conveyor(urls, proxy=os.environ["EXCHANGE_PROXY"])


CONTENDERS = {
    "aiohttp": _with_aiohttp,
    "conveyor": _with_conveyor,
    "conveyor-proxy": _through_proxy,
    "bare": _bare,
}

PROXY_HTTP = r"""    upstream origin {{ server 127.0.0.1:{origin}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}"""


@contextlib.contextmanager
def forward_proxy(origin: str) -> Iterator[str]:
    """nginx as a forward proxy for plain http: every absolute-form request it gets goes
    to ``origin``'s port (the 64 hosts are one nginx), over kept connections."""
    from _servers import free_port, run_nginx

    root = Path(tempfile.mkdtemp(prefix="conveyor-proxy-"))
    root.chmod(0o755)
    port = free_port()
    http = PROXY_HTTP.format(port=port, origin=origin.rsplit(":", 1)[1])
    try:
        with run_nginx(root, http, port):
            yield f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma-separated, of: " + ", ".join(CONTENDERS),
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    from _servers import host_urls, nginx

    chosen = options.contenders.split(",")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in chosen}
    with nginx(hosts=64) as base, forward_proxy(base) as proxy:
        url_file = HERE / ".exchange-urls.txt"
        url_file.write_text("\n".join(host_urls(base, options.n, 64)) + "\n")
        try:
            for _ in range(options.rounds):
                for name in chosen:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", name, str(url_file)],
                        capture_output=True, text=True, check=True,
                        env={**os.environ, "EXCHANGE_PROXY": proxy},
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
