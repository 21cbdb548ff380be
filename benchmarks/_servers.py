"""Servers for the fetch benchmark, each in a process of its own (never the client's).

* ``nginx()``: Debian's nginx-light serving one small HTML page for every path, started
  with a generated config in a temporary directory and stopped afterwards. For the
  throughput case: nginx is not the bottleneck of anything written in Python.
* ``delay_server()``: answers every request after a fixed delay. nginx cannot wait
  (nginx-light has no echo module), and the aiohttp test site costs ~100 us of Python per
  request. This is a bare ``asyncio.Protocol`` on uvloop: per request it finds the end of
  the headers, schedules one ``call_later`` and writes a prebuilt response -- a few
  microseconds, so 5,000 requests/s (500 in flight x 10 per second each) use a small
  fraction of one core, and all waiting is timers, not threads or tasks.

Run as ``python benchmarks/_servers.py delay --port 0 --delay 0.1``: prints
``listening on http://127.0.0.1:PORT`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Benchmark page</title></head>"
    b"<body>" + b"<p>conveyor benchmark body text.</p>" * 16 + b"</body></html>"
)

NGINX_CONF = r"""
worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log crit;
{user}
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp-body;
    proxy_temp_path {root}/tmp-proxy;
    fastcgi_temp_path {root}/tmp-fastcgi;
    uwsgi_temp_path {root}/tmp-uwsgi;
    scgi_temp_path {root}/tmp-scgi;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
{http}
}}
"""

PAGES_HTTP = r"""    open_file_cache max=16;
    server {{
{listen}
        root {root}/www;
        default_type text/html;
        location / {{ try_files /page.html =404; }}
        location ~ ^/site/\d*?(\d\d)$ {{ try_files /site/p$1.html =404; }}
    }}"""


def site_pages(count: int = 100) -> list[bytes]:
    """``count`` HTML pages of 5-20 KB, as a real site has: a title, a description, a
    navigation of links, paragraphs with links in them. Served at ``/site/N`` (N mod 100)."""
    import random

    rng = random.Random(7)
    words = ("conveyor fetch page index data queue loop thread process journal sink host "
             "rate limit retry timeout record title link report summary event").split()  # fmt: skip
    pages = []
    for number in range(count):
        size = rng.randint(5_000, 20_000)
        head = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Page {number}: {' '.join(rng.choices(words, k=5))}</title>"
            f"<meta name='description' content='{' '.join(rng.choices(words, k=12))}'>"
            "<link rel='stylesheet' href='/style.css'></head><body><nav>"
            + "".join(f"<a href='/site/{rng.randrange(10**6)}'>{w}</a> " for w in words[:12])
            + "</nav><main>"
        )
        parts = [head]
        length = len(head)
        while length < size:
            text = " ".join(rng.choices(words, k=rng.randint(20, 60)))
            link = f"<a href='/site/{rng.randrange(10**6)}'>{rng.choice(words)}</a>"
            part = f"<p>{text} {link} {' '.join(rng.choices(words, k=10))}.</p>\n"
            parts.append(part)
            length += len(part)
        parts.append("</main><footer>&copy; conveyor</footer></body></html>\n")
        pages.append("".join(parts).encode())
    return pages


def host_urls(base: str, n: int, hosts: int, path: str = "/site/") -> list[str]:
    """``n`` URLs of ``base``'s port spread over 127.0.0.1 ... 127.0.0.``hosts``, in turn."""
    port = base.rsplit(":", 1)[1]
    return [f"http://127.0.0.{i % hosts + 1}:{port}{path}{100_000 + i}" for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for_port(port: int, timeout: float = 10.0, address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} (see the server's error.log)")


@contextlib.contextmanager
def nginx(workers: int = 1, hosts: int = 1) -> Iterator[str]:
    """Start nginx on a free port; yield its base URL; stop it and remove its files.

    With ``hosts`` > 1 it also listens on 127.0.0.2 ... 127.0.0.N (the same port): to a
    client, that many hosts (see ``host_urls``)."""
    root = Path(tempfile.mkdtemp(prefix="conveyor-nginx-"))
    root.chmod(0o755)  # nginx workers may run as another user when started as root
    (root / "www").mkdir()
    (root / "www" / "page.html").write_bytes(PAGE)
    site = root / "www" / "site"
    site.mkdir()
    for number, page in enumerate(site_pages()):
        (site / f"p{number:02d}.html").write_bytes(page)
    site.chmod(0o755)
    (root / "www").chmod(0o755)
    port = free_port()
    listen = "\n".join(
        f"        listen 127.0.0.{n}:{port} backlog=4096;" for n in range(1, hosts + 1)
    )
    try:
        with run_nginx(root, PAGES_HTTP.format(root=root, listen=listen), port, workers):
            yield f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def run_nginx(
    root: Path, http: str, port: int, workers: int = 1, address: str = "127.0.0.1"
) -> Iterator[None]:
    """Run nginx from ``root`` (its config, pid, logs and temp files go there) with the
    common settings (no access log, long keep-alive) and ``http`` inside its ``http``
    block, until the block ends; wait until ``address:port`` answers first."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise SystemExit("nginx is needed: apt-get install -y nginx-light")
    user = "user root;" if os.geteuid() == 0 else ""  # workers may not read root's files
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, root=root, user=user, http=http))
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, address=address)
        yield
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop of master and workers
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def delay_server(delay: float, hosts: int = 1) -> Iterator[str]:
    """Start the delay server in a subprocess; yield its base URL; stop it."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "delay", "--delay", str(delay), "--hosts", str(hosts)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"delay server did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(10)


RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
    + str(len(PAGE)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + PAGE
)


class DelayProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only: answer each request ``delay`` seconds after it came."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is duck-typed

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            loop.call_later(self.delay, self.respond)

    def respond(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve_delay(delay: float, port: int, hosts: int = 1) -> None:
    loop = asyncio.get_running_loop()
    addresses = [f"127.0.0.{n}" for n in range(1, hosts + 1)]
    if port == 0:
        port = free_port()
    server = await loop.create_server(
        lambda: DelayProtocol(delay), addresses, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server", choices=["delay"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--hosts", type=int, default=1)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve_delay(args.delay, args.port, args.hosts))


if __name__ == "__main__":
    main()
