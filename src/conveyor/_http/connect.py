"""Opening a connection for the wire: a name's addresses (looked up once per ``DNS_TTL``,
checked for ``block_private``), raced as RFC 8305 says, and a proxy's ``CONNECT`` tunnel.

* **Lookups.** One lookup at a time per name, a task of its own shared by every request
  that asks meanwhile (one of them cancelled, say by its timeout, does not cancel the
  others'). The tasks belong to ``Lookups``, which ``close()`` cancels and awaits: none
  outlives the pool that made it. With ``block_private`` every address of the answer is
  checked when it comes, and the connection then goes to one of those very addresses, so
  a second lookup cannot see another answer (DNS rebinding); one refused address refuses
  the name.
* **Happy eyeballs.** A name's addresses are tried in turn, the next one started 250 ms
  after the last if it has not connected yet (RFC 8305; families interleaved), the first
  to connect wins and the rest are closed: a host whose IPv6 path silently drops packets
  loads over IPv4 a quarter of a second later, instead of failing with ``connect_timeout``
  on its first address. ``aiohappyeyeballs`` (aiohttp's own, a dependency of it) does the
  race on the addresses given, which is why not ``loop.create_connection(host, ...,
  happy_eyeballs_delay=...)``: that looks the name up again, unchecked. The caller bounds
  the whole race with ``connect_timeout``; it fails with ``connect`` only when every
  address has failed.
* **Tunnels.** ``CONNECT host:port`` over a connection to a proxy; on a 2xx the same
  socket carries TLS to the origin (``loop.start_tls``), anything else is ``proxy``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohappyeyeballs

from .errors import BadResponse, ConnectFailed, DNSFailed, ProxyRefused, ServerDisconnected
from .safety import AddressRefused, Network, address_refusal, ip_literal

DNS_TTL = 10.0  # seconds a name's addresses are reused (aiohttp's default too)
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended Connection Attempt Delay
MAX_REPLY_BYTES = 64 * 1024  # a proxy's answer to CONNECT longer than this is refused
_MAX_NAMES = 100_000  # a crawl over many names: keep the cache bounded

Address = tuple[int, tuple[Any, ...]]  # (family, sockaddr with port 0)
Resolve = Callable[[str], Awaitable[list[Address]]]
# A name's answer: (expiry, addresses, the first refused (address, reason) or None)
_Answer = tuple[float, list[Address], tuple[str, str] | None]
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?\r?\n")


class Lookups:
    """A name's addresses, cached for ``DNS_TTL``, with the ``block_private`` verdict.

    Args:
        allowed: the networks ``block_private`` exempts; None: no ``block_private``.
        resolve: looks a name up (default ``getaddrinfo``); tests give their own DNS.
    """

    def __init__(self, allowed: Sequence[Network] | None, resolve: Resolve | None = None) -> None:
        self._allowed = None if allowed is None else tuple(allowed)
        self._lookup = resolve or getaddrinfo
        self._cache: dict[str, _Answer] = {}
        self._running: dict[str, asyncio.Task[_Answer]] = {}

    async def addresses(self, host: str, *, checked: bool = True) -> list[Address]:
        """Where ``host`` is. ``checked``: refuse it (``AddressRefused``) when
        ``block_private`` refuses any of its addresses; a proxy the user named is not."""
        literal = ip_literal(host)
        if literal is not None:
            # IP literals are checked by the client on every hop (block_private).
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return [(family, (str(literal), 0))]
        answer = self._cache.get(host)
        if answer is None or answer[0] <= time.monotonic():
            lookup = self._running.get(host)
            if lookup is None:
                lookup = asyncio.get_running_loop().create_task(self._resolve(host))
                # Owned: close() cancels and awaits it; _done retrieves its outcome.
                self._running[host] = lookup
                lookup.add_done_callback(lambda done: self._done(host, done))
            answer = await asyncio.shield(lookup)
        refusal = answer[2]
        if checked and refusal is not None:
            raise AddressRefused(host, *refusal)
        return answer[1]

    async def close(self) -> None:
        """Cancel the lookups still running and wait for them to end."""
        running = list(self._running.values())
        for lookup in running:
            lookup.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _done(self, host: str, lookup: asyncio.Task[_Answer]) -> None:
        self._running.pop(host, None)
        if not lookup.cancelled():
            lookup.exception()  # each waiter has it; retrieved here in case none waits

    async def _resolve(self, host: str) -> _Answer:
        addresses = await self._lookup(host)
        if not addresses:
            raise DNSFailed(f"{host}: no addresses")
        refusal = None
        if self._allowed is not None:
            for _, sockaddr in addresses:
                reason = address_refusal(str(sockaddr[0]), self._allowed)
                if reason is not None:
                    refusal = (str(sockaddr[0]), reason)
                    break
        if len(self._cache) > _MAX_NAMES:
            self._cache.clear()
        answer = self._cache[host] = (time.monotonic() + DNS_TTL, addresses, refusal)
        return answer


async def getaddrinfo(host: str) -> list[Address]:
    """The system's answer for ``host``, each address once, in its order.

    Raises:
        DNSFailed: the name did not resolve.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DNSFailed(f"{host}: {exc.strerror or exc}") from None
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        entry = (int(family), tuple(sockaddr))
        if entry not in addresses:
            addresses.append(entry)
    return addresses


async def open_socket(addresses: Sequence[Address], port: int) -> socket.socket:
    """A connected socket to the first of ``addresses`` that answers, raced 250 ms apart.

    Raises:
        ConnectFailed: every address failed.
    """
    infos = [
        (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (sockaddr[0], port, *sockaddr[2:]))
        for family, sockaddr in addresses
    ]
    try:
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
        )
    except TimeoutError:
        raise  # the kernel's own SYN timeout: a connect timeout, as ours is
    except (OSError, RuntimeError) as exc:  # uvloop raises RuntimeError for some
        raise ConnectFailed(str(exc) or type(exc).__name__) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests go in one write
    return sock


def authority(host: str, port: int) -> str:
    """``host:port`` as a request line writes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_tunnel(
    sock: socket.socket, target: str, proxy_label: str, credentials: str | None
) -> asyncio.Transport:
    """Ask the proxy at the other end of ``sock`` for a tunnel to ``target`` (host:port);
    return the transport once it said 2xx, for TLS to the origin through it.

    Raises:
        ProxyRefused: any other answer.
    """
    loop = asyncio.get_running_loop()
    transport, reply = await loop.create_connection(_TunnelReply, sock=sock)
    auth = b"" if credentials is None else b"Proxy-Authorization: %s\r\n" % credentials.encode()
    where = target.encode()
    transport.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (where, where, auth))
    try:
        status, reason = await reply.answer
    except BaseException:
        transport.abort()
        raise
    if not 200 <= status < 300:
        transport.abort()
        raise ProxyRefused(refusal(proxy_label, f"CONNECT {target}", status, reason, credentials))
    return transport


def refusal(proxy_label: str, what: str, status: int, reason: str, credentials: str | None) -> str:
    """What to tell the user of a proxy's refusal, with the fix for a 407."""
    message = f"{proxy_label} answered {status} {reason} to {what}".rstrip()
    if status == 407:
        message += (
            ": it refused the credentials in the proxy URL"
            if credentials is not None
            else ": it wants credentials; write them in the proxy URL, http://user:password@host:port"
        )
    return message


class _TunnelReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: a status line and headers, nothing after them
    (the origin speaks only once TLS begins)."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_REPLY_BYTES:
                self.answer.set_exception(BadResponse("the proxy's answer to CONNECT is too long"))
            return
        match = _STATUS.match(self._buffer)
        if match is None:
            self.answer.set_exception(BadResponse("the proxy's answer to CONNECT is not HTTP"))
            return
        status = int(match.group(1))
        if 200 <= status < 300 and len(self._buffer) > end + 4:
            # Bytes from the "origin" before we spoke: not a tunnel we can trust.
            self.answer.set_exception(BadResponse("the proxy sent bytes after its 2xx to CONNECT"))
            return
        self.answer.set_result((status, (match.group(2) or b"").decode("latin-1")))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            message = "the proxy closed the connection before answering CONNECT"
            self.answer.set_exception(ServerDisconnected(message + (f": {exc}" if exc else "")))
