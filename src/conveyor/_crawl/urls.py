"""URLs in a crawl: the URL to fetch, its canonical form, and the key the frontier keeps.

A link found on a page becomes two things:

- **the URL to fetch** (``resolve``): the ``href`` with the whitespace a browser strips
  removed, backslashes read as slashes before the query (as browsers read them in http(s)
  URLs), resolved against the page's URL (or its ``<base href>``) by RFC 3986, the
  fragment dropped, and encoded the way the client will send it: yarl, which the client
  parses every URL with, percent-encodes what may not appear raw (UTF-8), IDNA-encodes and
  lower-cases the host, removes dot segments and the scheme's default port. The request
  goes to this URL: path and query exactly as written, in their case and their order.
- **the canonical form** (``canonical``), only for de-duplication, a fixed point of these
  rules (``VERSION`` 1):

  1. scheme and host lower-case, the host IDNA-encoded (punycode) without a trailing dot;
  2. the default port (80 for http, 443 for https) dropped, any other kept;
  3. dot segments resolved, an empty path written ``/``;
  4. the fragment dropped;
  5. percent-escapes normalised: upper-case hex, escapes of unreserved characters
     (``A-Z a-z 0-9 - . _ ~``) decoded; an escaped reserved character (``%2F``) stays
     escaped, since it means something else than the raw one;
  6. path and query otherwise kept as they are, case included (``/About`` and ``/about``
     are two pages);
  7. optional (``CanonicalRules``): query parameters sorted, tracking parameters
     (``utm_*``, ``gclid``, ``fbclid`` ...) removed.

- **the key** (``url_key``): the 16-byte blake2b digest of the canonical form, the
  frontier's primary key.

A change to these rules changes keys: ``VERSION`` goes into the job's fingerprint
(``CanonicalRules.describe``) so a resumed crawl never mixes keys of two rule sets. The
rules lean on yarl's quoting (the client's own); a test pins golden keys, so a yarl
release that quotes differently fails there rather than silently in a resumed crawl.

Measured here (``benchmarks/crawl_core.py``; 2 shared cores, rough): ``locate`` (resolve,
canonical form and key in one parse) ~3.4 µs a link, where w3lib's ``canonicalize_url``
alone took 5.5-9 µs on the same machine (the notes measured it at 18 µs elsewhere).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from .._errors import UsageError

#: The version of the canonical form; goes into the job's fingerprint.
VERSION = 1

#: Query parameters removed by ``CanonicalRules(strip_tracking=True)``: ad-click and
#: campaign ids that never change the page. Names starting with ``utm_`` too.
TRACKING_PARAMETERS = frozenset(
    {
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid",
        "twclid", "ttclid", "igshid", "li_fat_id", "mc_cid", "mc_eid", "_ga", "_gl",
    }
)  # fmt: skip

_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# C0 controls and space, which a browser strips from both ends of an href.
_STRIP = "".join(chr(i) for i in range(0x21))
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters allowed in a host name as yarl hands it back (already IDNA, lower-case).
_HOST = re.compile(r"[a-z0-9._~!$&'()*+,;=-]+|\[[0-9a-f:.]+\]")


@dataclass(frozen=True, slots=True)
class CanonicalRules:
    """The options of the canonical form.

    Args:
        sort_query: sort the query's parameters (``?b=2&a=1`` and ``?a=1&b=2`` are one page).
        strip_tracking: drop ``TRACKING_PARAMETERS`` and ``utm_*`` parameters.
    """

    sort_query: bool = False
    strip_tracking: bool = False
    tracking: frozenset[str] = field(default=TRACKING_PARAMETERS, repr=False)

    def describe(self) -> dict[str, Any]:
        """What decides the keys, for the job's fingerprint."""
        return {
            "canonical": VERSION,
            "sort_query": self.sort_query,
            "strip_tracking": self.strip_tracking,
            "tracking": sorted(self.tracking) if self.strip_tracking else [],
        }


DEFAULT_RULES = CanonicalRules()


def base_url(url: str) -> URL | None:
    """A page's URL parsed once, to resolve all its links against; None when not http(s)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in _SCHEMES or not parsed.raw_host:
        return None
    return parsed


def resolve(href: str, base: URL | str) -> str | None:
    """The URL to fetch for ``href`` found on the page at ``base``; None when the link
    is not an http(s) URL with a valid host (``mailto:``, ``javascript:``, ``data:``...).

    ``base`` is the page's URL, or its ``<base href>`` already resolved (``base_url``).
    """
    target = _resolve(href, base)
    return None if target is None else str(target)


def locate(
    href: str, base: URL | str, rules: CanonicalRules = DEFAULT_RULES
) -> tuple[str, bytes] | None:
    """``(url to fetch, key)`` of a link, with one parse: what the crawl asks of each link."""
    target = _resolve(href, base)
    if target is None:
        return None
    return str(target), url_key(_canonical(target, rules))


def canonical(url: str, rules: CanonicalRules = DEFAULT_RULES) -> str:
    """The canonical form of a URL ``resolve`` returned (see the module's rules).

    Raises:
        UsageError: ``url`` is not an absolute http(s) URL.
    """
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot read {url!r} as a URL: {exc}") from None
    if parsed.scheme not in _SCHEMES or not parsed.raw_host:
        raise UsageError(
            f"{url!r} is not an http(s) URL with a host; give e.g. 'https://example.com/'"
        )
    return _canonical(parsed, rules)


def _resolve(href: str, base: URL | str) -> URL | None:
    if isinstance(base, str):
        parsed = base_url(base)
        if parsed is None:
            return None
        base = parsed
    href = href.strip(_STRIP)
    if "\t" in href or "\n" in href or "\r" in href:
        href = href.replace("\t", "").replace("\n", "").replace("\r", "")
    if "\\" in href:
        cut = len(href)
        for stop in "?#":
            at = href.find(stop)
            if 0 <= at < cut:
                cut = at
        href = href[:cut].replace("\\", "/") + href[cut:]
    try:
        target = base.join(URL(href))
    except (ValueError, TypeError):  # a bad port, an unparsable host
        return None
    if target.scheme not in _SCHEMES:
        return None
    host = target.raw_host
    if not host or not _HOST.fullmatch(host):
        return None
    return target.with_fragment(None) if target.raw_fragment else target


def _canonical(parsed: URL, rules: CanonicalRules) -> str:
    scheme = parsed.scheme
    host = parsed.raw_host or ""
    if host.endswith("."):
        host = host.rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parsed.explicit_port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    user = parsed.raw_user
    if user is not None:
        password = parsed.raw_password
        netloc = f"{user}:{password}@{netloc}" if password is not None else f"{user}@{netloc}"
    path = parsed.raw_path or "/"
    if "%" in path:
        path = _normalise_escapes(path)
    query = parsed.raw_query_string
    if query:
        if "%" in query:
            query = _normalise_escapes(query)
        if rules.strip_tracking or rules.sort_query:
            query = _tidy_query(query, rules)
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


def url_key(canonical_url: str) -> bytes:
    """The frontier's key of a canonical URL: its 16-byte blake2b digest."""
    return hashlib.blake2b(canonical_url.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def canonical_key(url: str, rules: CanonicalRules = DEFAULT_RULES) -> bytes:
    """``url_key(canonical(url))``."""
    return url_key(canonical(url, rules))


def normalize(url: str, rules: CanonicalRules = DEFAULT_RULES) -> tuple[str, str]:
    """A URL typed by a person (a seed): ``(url to fetch, canonical form)``.

    Raises:
        UsageError: not an absolute http(s) URL with a valid host.
    """
    target = resolve(url, _SEED_BASE) if "://" in url else None
    if target is None:
        raise UsageError(
            f"{url!r} is not an absolute http(s) URL with a host; give e.g. 'https://example.com/'"
        )
    return target, canonical(target, rules)


# A base only so that ``resolve`` can read an absolute URL; a seed never resolves against it.
_SEED_BASE = URL("http://seed.invalid/")


def _normalise_escapes(text: str) -> str:
    return _ESCAPE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    value = int(match.group(1), 16)
    return chr(value) if value in _UNRESERVED else f"%{value:02X}"


def _tidy_query(query: str, rules: CanonicalRules) -> str:
    parameters: Iterable[str] = query.split("&")
    if rules.strip_tracking:
        tracking = rules.tracking
        parameters = [
            p
            for p in parameters
            if not ((name := p.partition("=")[0]).startswith("utm_") or name in tracking)
        ]
    if rules.sort_query:
        # By name, then value: the order of two values of one name is kept apart by value,
        # so "a=2&a=1" and "a=1&a=2" become one key, as w3lib's canonicalize_url does.
        parameters = sorted(parameters, key=lambda p: p.partition("="))
    return "&".join(p for p in parameters if p)
