"""Which links a crawl follows: scope, ``--allow``/``--deny``, depth, and trap defences.

``Admission.check(url, depth)`` answers None (follow) or the reason it is not followed,
and counts each reason for the report. The checks run cheapest first: traps (string
lengths and splits), depth, scope, then the user's regexes.

Scopes (``--scope``), all built from the seeds:

- ``host`` (the default): the host name of a seed (any scheme or port: a site that
  redirects http to https stays in scope);
- ``domain``: the registrable domain of a seed by the Public Suffix List, private
  suffixes included (``a.github.io`` and ``b.github.io`` are two sites), read from the
  copy the ``publicsuffixlist`` package bundles: no network, no cache files. An IP
  address or a single-label name (``localhost``) is its own domain;
- ``prefix``: host and path under a seed's directory (``https://h/docs/x.html`` scopes
  to ``h/docs/``), case-sensitive, any scheme;
- anything else is a regular expression searched in the URL to fetch.

Traps (on by default, ``traps=False`` turns them off), after Scrapy's ``URLLENGTH_LIMIT``
and Heritrix's default profile: a URL longer than 2,083 characters, a path of more than
20 segments, the same path segment more than twice (``/a/b/a/b/a/`` calendars and
relative-link loops). The per-host page cap needs counts that survive a restart, so the
frontier applies it (``Frontier.offer``).

``publicsuffixlist`` was chosen over ``tldextract``: it bundles the list and has no
dependencies, where tldextract brings requests and filelock and fetches the list over
the network unless told ``suffix_list_urls=()``; a lookup cost ~1.7 µs against ~2.4 µs
here.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from .._http.hosts import host_key

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

#: Trap limits (Scrapy URLLENGTH_LIMIT; Heritrix's profile).
MAX_URL_LENGTH = 2083
MAX_SEGMENTS = 20
MAX_REPEATS = 2

SCOPES = ("host", "domain", "prefix")


def hostname(url: str) -> str:
    """The host of a URL, lower-case, IDNA, no port: ``host_key`` less its port."""
    key = host_key(url)
    name, colon, port = key.rpartition(":")
    return name if colon and port.isdigit() else key


@functools.cache
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the bundled copy: parsed once (~25 ms), never fetched


@functools.lru_cache(maxsize=16384)
def registrable_domain(host: str) -> str:
    """``a.b.example.co.uk`` → ``example.co.uk``; an IP address or a name that is itself
    a public suffix (``localhost``, ``co.uk``) is its own domain."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return host
    return _suffixes().privatesuffix(host) or host


@dataclass(frozen=True)
class Scope:
    """Where a crawl may go, built from its seeds by ``Scope.build``."""

    kind: str
    units: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    @classmethod
    def build(cls, spec: str, seeds: Iterable[str]) -> Scope:
        """``spec`` is ``host``, ``domain``, ``prefix`` or a regular expression."""
        seeds = list(seeds)
        if spec == "host":
            return cls("host", frozenset(hostname(seed) for seed in seeds))
        if spec == "domain":
            units = frozenset(registrable_domain(hostname(seed)) for seed in seeds)
            return cls("domain", units)
        if spec == "prefix":
            return cls("prefix", prefixes=tuple(sorted({directory(seed) for seed in seeds})))
        return cls("regex", pattern=compile_regex(spec, "--scope"))

    def unit(self, url: str) -> str:
        """The unit a shard or a per-host budget is keyed by: the host, or with
        ``domain`` the registrable domain."""
        host = hostname(url)
        return registrable_domain(host) if self.kind == "domain" else host

    def contains(self, url: str) -> bool:
        if self.kind == "host":
            return hostname(url) in self.units
        if self.kind == "domain":
            return registrable_domain(hostname(url)) in self.units
        if self.kind == "prefix":
            return location(url).startswith(self.prefixes)
        assert self.pattern is not None
        return self.pattern.search(url) is not None

    def describe(self) -> dict[str, Any]:
        return {
            "scope": self.kind,
            "units": sorted(self.units),
            "prefixes": list(self.prefixes),
            "pattern": None if self.pattern is None else self.pattern.pattern,
        }


def location(url: str) -> str:
    """``host/path`` of a URL, without scheme, port or query."""
    rest = url.partition("://")[2]
    end = len(rest)
    for stop in "?#":
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    slash = rest.find("/", 0, end)
    path = rest[slash:end] if slash >= 0 else "/"
    return hostname(url) + path


def directory(url: str) -> str:
    """``host/dir/`` of a URL: its location up to the last slash of the path."""
    where = location(url)
    return where[: where.rfind("/") + 1]


def compile_regex(pattern: str, flag: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"{flag} {pattern!r} is not a regular expression ({exc}); give host, domain, "
            "prefix or a valid regex such as 'example\\.com/docs/'"
            if flag == "--scope"
            else f"{flag} {pattern!r} is not a regular expression ({exc}); escape special "
            "characters, e.g. '\\?page='"
        ) from None


def trap(url: str) -> str | None:
    """The trap a URL falls in, or None: ``url-too-long``, ``too-many-segments``,
    ``repeated-segment``."""
    if len(url) > MAX_URL_LENGTH:
        return "url-too-long"
    rest = url.partition("://")[2]
    slash = rest.find("/")
    if slash < 0:
        return None
    path = rest[slash:]
    for stop in "?#":
        path = path.partition(stop)[0]
    if path.count("/") <= MAX_REPEATS:
        return None  # too short for any trap (the common top-level page)
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) > MAX_SEGMENTS:
        return "too-many-segments"
    if len(segments) > MAX_REPEATS and len(set(segments)) < len(segments):
        counts = Counter(segments)
        if max(counts.values()) > MAX_REPEATS:
            return "repeated-segment"
    return None


@dataclass(frozen=True, slots=True)
class AdmissionStatistics:
    """What admission turned away, by reason (``out-of-scope``, ``too-deep``, ``denied``,
    ``not-allowed``, and the trap names)."""

    checked: int
    rejected: dict[str, int]


class Admission:
    """Scope, ``allow``/``deny`` regexes, depth limit and traps, with counters.

    Args:
        scope: where the crawl may go.
        max_depth: the deepest page followed (seeds are depth 0); None for no limit.
        allow: regexes of which a URL must match one (searched), when any are given.
        deny: regexes of which a URL may match none.
        traps: reject the trap shapes (``trap``).
    """

    def __init__(
        self,
        scope: Scope,
        *,
        max_depth: int | None = None,
        allow: Sequence[str] = (),
        deny: Sequence[str] = (),
        traps: bool = True,
    ) -> None:
        if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 0):
            raise UsageError(f"--depth {max_depth!r}: give a whole number >= 0 (0: the seeds only)")
        self.scope = scope
        self.max_depth = max_depth
        self.allow = [compile_regex(p, "--allow") for p in allow]
        self.deny = [compile_regex(p, "--deny") for p in deny]
        self.traps = traps
        self._checked = 0
        self._rejected: Counter[str] = Counter()

    def check(self, url: str, depth: int) -> str | None:
        """None to follow ``url`` found at ``depth``; else the reason, counted."""
        self._checked += 1
        reason = self._reason(url, depth)
        if reason is not None:
            self._rejected[reason] += 1
        return reason

    def allows(self, url: str, depth: int) -> bool:
        """``check`` without counting: safe from any thread (a sitemap read on one)."""
        return self._reason(url, depth) is None

    def _reason(self, url: str, depth: int) -> str | None:
        if self.traps and (caught := trap(url)) is not None:
            return caught
        if self.max_depth is not None and depth > self.max_depth:
            return "too-deep"
        if not self.scope.contains(url):
            return "out-of-scope"
        if self.deny and any(p.search(url) for p in self.deny):
            return "denied"
        if self.allow and not any(p.search(url) for p in self.allow):
            return "not-allowed"
        return None

    def statistics(self) -> AdmissionStatistics:
        return AdmissionStatistics(self._checked, dict(self._rejected))

    def describe(self) -> dict[str, Any]:
        """The rules, for the job's fingerprint."""
        return {
            **self.scope.describe(),
            "max_depth": self.max_depth,
            "allow": [p.pattern for p in self.allow],
            "deny": [p.pattern for p in self.deny],
            "traps": self.traps,
        }
