"""The safety rules as pure verdicts: no network, no loop, no state.

* only ``http`` and ``https``, for the input and for every redirect target;
* credentials (``Authorization``, ``Cookie``, ``Proxy-Authorization``) never follow a
  redirect to another origin -- the rule requests adopted after CVE-2018-18074 and urllib3
  after CVE-2018-20060 / CVE-2023-43804, including requests' one exception (an upgrade from
  ``http`` to ``https`` on the default ports keeps them);
* with ``block_private`` no connection goes to a non-global address (loopback, RFC 1918,
  link-local with the cloud metadata service at 169.254.169.254, CGNAT, ULA, multicast,
  reserved), checked on the literal host here and after DNS in ``connect.py`` (the wire)
  and ``resolver.py`` (aiohttp);
* a file name derived from a URL can never leave its directory.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from yarl import URL

from .._errors import BadURL, Blocked, UsageError

SCHEMES = frozenset({"http", "https"})
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# A DNS name in its ASCII (IDNA) form; yarl has already lower-cased and encoded it.
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*\.?$")
# Legacy IPv4 spellings (2130706433, 127.1, 0x7f.0.0.1) that getaddrinfo would accept and
# that slip past a policy looking only at the text: refuse them outright.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]*))*\.?$")


def check_url(url: str | URL, *, redirect_from: URL | None = None) -> URL:
    """The parsed URL, or ``BadURL`` (input) / ``Blocked`` (a redirect) saying why not."""
    text = str(url)
    try:
        parsed = url if isinstance(url, URL) else URL(text)
    except (ValueError, TypeError) as exc:
        raise _refuse(f"unparsable URL {text!r}: {exc}", text, redirect_from) from None
    if parsed.scheme not in SCHEMES:
        what = f"scheme {parsed.scheme!r}" if parsed.scheme else "no scheme"
        raise _refuse(f"{text!r} has {what}: only http and https are fetched", text, redirect_from)
    host = parsed.raw_host
    if not host:
        raise _refuse(f"{text!r} has no host", text, redirect_from)
    if not _valid_host(host):
        raise _refuse(f"{text!r} has an invalid host {host!r}", text, redirect_from)
    return parsed


@functools.lru_cache(maxsize=4096)
def _valid_host(host: str) -> bool:
    """Cached: a run usually fetches many URLs from few hosts."""
    if ip_literal(host) is not None:
        return True
    return not _NUMERIC_HOST.match(host) and _HOSTNAME.match(host) is not None


def _refuse(message: str, url: str, redirect_from: URL | None) -> BadURL | Blocked:
    if redirect_from is None:
        return BadURL(message, url=url)
    return Blocked(f"redirect from {redirect_from} refused: {message}", url=url)


def ip_literal(host: str) -> Address | None:
    """The address when the host is an IP literal (``[::1]`` included), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.raw_host or "").lower(), url.port)


def should_strip_credentials(old: URL, new: URL) -> bool:
    """Whether a redirect from ``old`` to ``new`` leaves the origin the credentials were for."""
    old_scheme, old_host, old_port = origin(old)
    new_scheme, new_host, new_port = origin(new)
    if old_host != new_host:
        return True
    if (old_scheme, old_port, new_scheme, new_port) == ("http", 80, "https", 443):
        return False  # an upgrade to TLS on the default ports keeps them (as requests does)
    return (old_scheme, old_port) != (new_scheme, new_port)


def strip_credentials(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() not in SENSITIVE_HEADERS)


_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


def redirect_drops_body(status: int, method: str) -> bool:
    """Whether the next hop becomes a GET without a body: 303 (but HEAD stays HEAD), and
    301/302 after a POST -- what browsers do, and requests and aiohttp. 307/308 keep both."""
    return (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST")


def without_body_headers(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() not in _BODY_HEADERS)


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(n, strict=False) for n in networks)
    except ValueError as exc:
        raise UsageError(f"allow_networks: {exc} (write networks like '10.1.0.0/16')") from None


class AddressRefused(Exception):
    """``block_private``: a name resolves to (or a proxy would reach) an address that is not
    allowed. Raised by the wire's lookups and by aiohttp's guarded resolver; deliberately
    not an ``OSError``, so aiohttp lets it through unwrapped instead of calling it a DNS
    failure. Defined here, beside the rule, so that both import it from a module that
    imports neither."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")
        self.host, self.address, self.reason = host, address, reason


def address_refusal(address: str | Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``block_private`` refuses this address (e.g. ``"loopback"``), or None if it may go."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6"
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on the wire
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip in _METADATA:
        return "cloud metadata"
    for reason in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{reason}"):
            return reason.replace("_", "-")
    if not ip.is_global:
        return "non-global"
    return None


_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+|\.{2,}")
_MAX_NAME = 120


def safe_filename(url: URL) -> str:
    """A file name for ``url`` made of ``[A-Za-z0-9._-]`` only, unique per URL.

    The readable part (host and last path segment) is a convenience; uniqueness and safety
    come from the hash of the whole URL and from the character whitelist, so ``..``,
    slashes, NUL bytes, drive letters or device names in the URL cannot reach the path.
    """
    digest = hashlib.sha256(str(url).encode()).hexdigest()[:16]
    host = _UNSAFE_CHARS.sub("_", url.raw_host or "host").strip("._-") or "host"
    leaf = url.raw_path.rsplit("/", 1)[-1]
    stem, dot, ext = leaf.rpartition(".")
    if not dot:
        stem, ext = leaf, ""
    stem = _UNSAFE_CHARS.sub("_", stem).strip("._-")[:60]
    ext = _UNSAFE_CHARS.sub("", ext)[:10]
    parts = [host, stem, digest] if stem else [host, digest]
    name = "_".join(parts)[:_MAX_NAME]
    return f"{name}.{ext}" if ext else name


def target_path(base: Path, url: URL) -> Path:
    """Where ``save_to`` writes ``url``: directly inside ``base`` (an absolute, resolved path).

    Pure on purpose (no ``resolve()`` here, which would touch the disk on the loop): the
    name has no separator and is never ``.`` or ``..``, so the join cannot climb out.
    """
    name = safe_filename(url)
    path = base / name
    if name in ("", ".", "..") or "/" in name or "\\" in name or path.parent != base:
        raise Blocked(f"refusing to write {url} outside {base}", url=str(url))
    return path
