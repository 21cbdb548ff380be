"""Which proxy a request goes through: pure choices, made once per origin by the wire.

``proxy=`` names one or more forward proxies, ``http://[user:password@]host:port``. With
more than one, hosts are spread over them by a stable hash of the host identity
(``hosts.host_key``): a host stays on one proxy, in every loop process and Ray shard
alike, so its per-host limits and pacing mean what they say at the site.

With ``trust_env``, ``HTTP_PROXY`` and ``HTTPS_PROXY`` name the proxy for each scheme
where ``proxy=`` names none (read by ``urllib.request.getproxies_environment``: lower-case
names first, ``HTTP_PROXY`` ignored under CGI), and ``NO_PROXY`` lists the hosts that go
direct, through either kind of proxy: ``*``, domains (with their subdomains), IP networks,
each with an optional port, as curl and requests read it. Only ``http://`` proxies are spoken to (``https://``
targets go through them with ``CONNECT``); a proxy of another scheme is refused with a
message rather than bypassed.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from yarl import URL

from .._errors import UsageError
from .auth import Netrc, basic, userinfo
from .hosts import host_key
from .safety import ip_literal


@dataclass(frozen=True, slots=True)
class Proxy:
    """One forward proxy, as the wire connects and speaks to it."""

    host: str  # lower-cased, IDNA; an IPv6 address without brackets
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the URL's user info
    label: str  # ``http://host:port``, without the credentials, for messages


def parse_proxy(text: object, *, where: str = "proxy") -> Proxy:
    """A ``Proxy`` from its URL (``host:port`` alone means ``http://host:port``).

    Raises:
        UsageError: not an ``http://`` URL with a host.
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}={text!r}: give a proxy URL, e.g. http://127.0.0.1:3128")
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw  # as curl and requests read "host:port"
    try:
        url = URL(raw)
        port = url.port
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}={text!r} is not a URL: {exc}") from None
    if url.scheme != "http":
        raise UsageError(
            f"{where}={_hidden(text)!r}: only http:// proxies are spoken to (https:// targets "
            "go through them with CONNECT); write http://host:port"
        )
    if not url.raw_host or port is None:
        raise UsageError(f"{where}={_hidden(text)!r} has no host: write http://host:port")
    if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment:
        raise UsageError(
            f"{where}={_hidden(text)!r}: a proxy URL has no path; write http://host:port"
        )
    credentials = userinfo(url)
    host = url.raw_host.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    return Proxy(host, port, basic(*credentials) if credentials else None, f"http://{shown}:{port}")


def _hidden(text: object) -> str:
    """A proxy URL as it may be shown: the password replaced by ***."""
    try:
        url = URL(str(text))
        return str(url.with_password("***")) if url.password else str(text)
    except (ValueError, TypeError):
        return "<unparsable>"


class ProxyRoutes:
    """The proxy for each origin: ``proxies`` spread by host, else one per scheme, none
    for the hosts ``no_proxy`` lists."""

    def __init__(
        self,
        proxies: Sequence[Proxy] = (),
        *,
        by_scheme: Mapping[str, Proxy] | None = None,
        no_proxy: str | None = None,
    ) -> None:
        self.proxies = tuple(proxies)
        self.by_scheme = dict(by_scheme or {})
        self.no_proxy = no_proxy
        self._bypass = parse_no_proxy(no_proxy)

    def with_logins(self, logins: Netrc) -> ProxyRoutes:
        """These routes, each proxy without credentials given its host's from ``.netrc``."""

        def login(proxy: Proxy) -> Proxy:
            if proxy.authorization is not None:
                return proxy
            return replace(proxy, authorization=logins.authorization(proxy.host))

        return ProxyRoutes(
            [login(p) for p in self.proxies],
            by_scheme={scheme: login(p) for scheme, p in self.by_scheme.items()},
            no_proxy=self.no_proxy,
        )

    def choose(self, url: URL) -> Proxy | None:
        """The proxy ``url`` goes through, or None: direct."""
        if self._bypass and bypasses(self._bypass, url.raw_host or "", url.port):
            return None
        if self.proxies:
            key = host_key(url)
            return self.proxies[zlib.crc32(key.encode()) % len(self.proxies)]
        return self.by_scheme.get(url.scheme)


# One NO_PROXY entry: "*", or a host (a domain and its subdomains, a leading dot or not),
# or an IP network, with or without a port.
Bypass = tuple[str, int | None]


def parse_no_proxy(text: str | None) -> tuple[Bypass, ...]:
    """``NO_PROXY``'s entries, comma- or space-separated, as curl and requests read them."""
    entries = []
    for raw in (text or "").replace(",", " ").split():
        entry = raw.strip().lower()
        port: int | None = None
        if entry.startswith("["):  # [v6]:port
            address, _, rest = entry[1:].partition("]")
            entry, port = address, int(rest[1:]) if rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, number = entry.partition(":")
            if number.isdigit():
                entry, port = name, int(number)
        entries.append((entry.lstrip(".").rstrip("."), port))
    return tuple(entries)


def bypasses(entries: Sequence[Bypass], host: str, port: int | None) -> bool:
    """Whether ``host:port`` goes direct by these ``NO_PROXY`` entries."""
    host = host.lower().rstrip(".")
    address = ip_literal(host)
    for entry, entry_port in entries:
        if entry_port is not None and entry_port != port:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == entry or host.endswith("." + entry):
            return True
    return False


def routes_for(proxies: Iterable[str], *, trust_env: bool) -> ProxyRoutes | None:
    """The routes for ``proxy=`` and, with ``trust_env``, the environment; None when
    every request goes direct."""
    named = tuple(parse_proxy(text) for text in proxies)
    if not trust_env:
        return ProxyRoutes(named) if named else None
    import urllib.request  # ~10 ms of imports: only with trust_env

    env = urllib.request.getproxies_environment()
    by_scheme = {}
    for scheme in ("http", "https"):
        text = env.get(scheme)
        if text and not named:
            by_scheme[scheme] = parse_proxy(text, where=f"the environment's {scheme}_proxy")
    no_proxy = env.get("no")
    if not named and not by_scheme:
        return None
    return ProxyRoutes(named, by_scheme=by_scheme, no_proxy=no_proxy)
