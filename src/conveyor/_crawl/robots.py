"""robots.txt by RFC 9309, as a pure policy around protego.

The crawl fetches ``/robots.txt`` once per scheme, host and port (the fetch is the
crawl's, so politeness applies to it too) and hands the outcome to ``robots_entry``, which
decides without I/O:

==========================  ==================================================================
outcome                     entry
==========================  ==================================================================
2xx                         ``parsed``: the first 500 KiB (cut at a line end) are the rules
3xx left over, 4xx          ``allow-all`` (RFC 9309 2.3.1.3: "unavailable"; more than five
(429 excepted)              redirects count as unavailable too)
429, 5xx, network errors    ``unreachable``: the host is paused and robots.txt asked again
                            after 5 min, 10 min, 20 min; after that its pages are *deferred*
                            (left for a later run, with the reason), never fetched as if
                            allowed, and the run goes on with the other hosts
==========================  ==================================================================

An entry is a small JSON-able value (``to_json``/``from_json``) for the journal, with its
fetch time: a ``parsed`` or ``allow-all`` entry is reused for 24 h, across runs. When a
refetch finds robots.txt unreachable and the last good copy is at most 30 days old, that
copy stays in force (RFC 9309 2.4, as Google does) while the refetch is retried.

``RobotsPolicy`` answers for one host: ``check(path)`` is ``ALLOW``, ``DISALLOW``,
``WAIT`` (unreachable, retrying: the host is paused until ``entry.retry_at``) or
``DEFER`` (unreachable for good this run, or a Crawl-delay above the cap). ``/robots.txt``
itself is always allowed. ``delay`` is the spacing the host asks for: its ``Crawl-delay``
or ``Request-rate`` (seconds per request), whichever is longer; one above ``max_delay``
(30 s, as Nutch and StormCrawler cap it) defers the host's pages with the reason rather
than crawling faster than asked.

Parsing a large file costs: a 620 KiB file of 22,000 wildcard rules took 0.26 s to parse
and ~8 ms a ``can_fetch`` here (protego 0.7; a small file takes ~0.7 µs). ``parse_robots``
and ``RobotsPolicy`` are plain functions and objects so the crawl can run them off the
event loop, and ``heavy`` says when checks too belong on a thread. A heavy file's decisions
are memoised by path (bounded; a small file's check costs less than a memo's memory). They
are not memoised by path prefix: a wildcard rule (``/*.pdf$``) depends on the whole path,
and for plain rules protego already decides with one ``startswith`` over all of them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from .._errors import UsageError
from .._http.hosts import host_key

if TYPE_CHECKING:
    from protego import Protego

#: RFC 9309 2.5: a crawler must parse at least 500 KiB.
MAX_BYTES = 500 * 1024
#: RFC 9309 2.4: a cached copy is not used longer than 24 h (unless unreachable).
REUSE_SECONDS = 24 * 3600.0

#: RFC 9309 2.3.1.2: at least five redirects are followed; more mean "unavailable".
MAX_REDIRECTS = 5

State = Literal["parsed", "allow-all", "unreachable"]


def robots_key(url: str) -> str:
    """What one robots.txt covers: scheme, host and port (``http://h:80``); the journal's
    key for its entry."""
    return f"{url.partition('://')[0].lower()}://{host_key(url)}"


def robots_url(url: str) -> str:
    """The robots.txt that rules ``url``: ``http://h:8080/robots.txt``."""
    return f"{robots_key(url)}/robots.txt"


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The crawl's robots.txt settings.

    Args:
        user_agent: the product token matched against ``User-agent`` lines.
        max_bytes: how much of the file is read (RFC 9309: at least 500 KiB).
        reuse: seconds a fetched copy is trusted.
        retry_after: seconds before the first retry of an unreachable robots.txt; each
            further retry waits twice as long.
        retries: retries before the host's pages are deferred.
        keep_stale: seconds a good copy stays in force while robots.txt is unreachable.
        max_delay: the longest Crawl-delay (or Request-rate spacing) honoured; above it
            the host's pages are deferred.
    """

    user_agent: str = "conveyor"
    max_bytes: int = MAX_BYTES
    reuse: float = REUSE_SECONDS
    retry_after: float = 300.0
    retries: int = 3
    keep_stale: float = 30 * 24 * 3600.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if not self.user_agent or not isinstance(self.user_agent, str):
            raise UsageError("RobotsRules(user_agent=...): give a product token, e.g. 'conveyor'")
        for name in ("max_bytes", "reuse", "retry_after", "keep_stale", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise UsageError(f"RobotsRules({name}={value!r}): give a positive number")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise UsageError(f"RobotsRules(retries={self.retries!r}): give a whole number >= 0")


DEFAULT_RULES = RobotsRules()


@dataclass(frozen=True, slots=True)
class RobotsEntry:
    """What is known of one host's robots.txt: the cache entry kept in the journal.

    Attributes:
        state: ``parsed``, ``allow-all`` or ``unreachable``.
        fetched_at: when the rules in force were fetched (epoch seconds).
        text: the rules (``parsed``), at most ``max_bytes`` of the file.
        reason: why this state (``HTTP 503``, ``dns``, ``HTTP 404``...).
        failures: unreachable answers in a row since the last good one.
        retry_at: when to ask again while unreachable; None otherwise.
        stale: the rules in force are a good copy kept while robots.txt is unreachable.
    """

    state: State
    fetched_at: float
    text: str = ""
    reason: str = ""
    failures: int = 0
    retry_at: float | None = None
    stale: bool = False

    def usable(self, now: float, rules: RobotsRules = DEFAULT_RULES) -> bool:
        """Whether this entry may answer now without a new fetch of robots.txt."""
        if self.retry_at is not None:
            return now < self.retry_at or self.given_up(rules)
        return now - self.fetched_at < rules.reuse

    def given_up(self, rules: RobotsRules = DEFAULT_RULES) -> bool:
        """Unreachable after every retry: the host's pages are deferred for this run."""
        return self.state == "unreachable" and self.failures > rules.retries

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "fetched_at": self.fetched_at,
            "text": self.text,
            "reason": self.reason,
            "failures": self.failures,
            "retry_at": self.retry_at,
            "stale": self.stale,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RobotsEntry:
        return cls(
            state=data["state"],
            fetched_at=float(data["fetched_at"]),
            text=str(data.get("text", "")),
            reason=str(data.get("reason", "")),
            failures=int(data.get("failures", 0)),
            retry_at=None if data.get("retry_at") is None else float(data["retry_at"]),
            stale=bool(data.get("stale", False)),
        )


def robots_entry(
    *,
    now: float,
    status: int | None = None,
    body: bytes = b"",
    error: str | None = None,
    redirects: int = 0,
    previous: RobotsEntry | None = None,
    rules: RobotsRules = DEFAULT_RULES,
) -> RobotsEntry:
    """The entry for one fetch of robots.txt (see the module's table).

    Args:
        now: when the fetch ended.
        status: the final HTTP status (after redirects), or None on a network error.
        body: the body (decoded, decompressed); only the first ``max_bytes`` are used.
        error: the failure's kind (``dns``, ``connect``, ``timeout``,
            ``too-many-redirects``...) when there was no response.
        redirects: redirects followed to get the response.
        previous: the entry this fetch refreshes, if any.
    """
    if error == "too-many-redirects" or redirects > MAX_REDIRECTS:
        return RobotsEntry("allow-all", now, reason=f"more than {MAX_REDIRECTS} redirects")
    if error is not None or status is None:
        return _unreachable(now, error or "no response", previous, rules)
    if 200 <= status < 300:
        return RobotsEntry(
            "parsed", now, text=_text(body, rules.max_bytes), reason=f"HTTP {status}"
        )
    if status == 429 or status >= 500 or status < 200:
        return _unreachable(now, f"HTTP {status}", previous, rules)
    return RobotsEntry("allow-all", now, reason=f"HTTP {status}")


def _unreachable(
    now: float, reason: str, previous: RobotsEntry | None, rules: RobotsRules
) -> RobotsEntry:
    failures = previous.failures + 1 if previous is not None else 1
    retry_at = now + rules.retry_after * 2 ** min(failures - 1, 20)
    if (
        previous is not None
        and previous.state != "unreachable"
        and now - previous.fetched_at <= rules.keep_stale
    ):
        # A good copy in force: keep using it while asking again (RFC 9309 2.4).
        return replace(previous, reason=reason, failures=failures, retry_at=retry_at, stale=True)
    return RobotsEntry("unreachable", now, reason=reason, failures=failures, retry_at=retry_at)


def _text(body: bytes, limit: int) -> str:
    if len(body) > limit:
        # Cut at the last line end inside the limit, so no rule is read half-way (a
        # truncated "Disallow: /private" would match more than the file says).
        cut = body.rfind(b"\n", 0, limit)
        body = body[: cut + 1 if cut >= 0 else limit]
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    return body.decode("utf-8", "replace")  # RFC 9309 2.3: UTF-8


def parse_robots(entry: RobotsEntry) -> Protego | None:
    """The parsed rules of a ``parsed`` entry (a plain function: call it off the event
    loop, it can take most of a second); None when there are no rules to parse."""
    if entry.state != "parsed" or not entry.text.strip():
        return None
    from protego import Protego

    return Protego.parse(entry.text)


class Verdict(Enum):
    """What robots.txt says of one path now."""

    ALLOW = "allow"
    DISALLOW = "disallow"
    WAIT = "wait"  # robots.txt unreachable, retrying: the host is paused
    DEFER = "defer"  # not this run: unreachable after every retry, or Crawl-delay over the cap


@dataclass(frozen=True, slots=True)
class RobotsStatistics:
    checks: int
    memo_hits: int
    disallowed: int


class RobotsPolicy:
    """One host's answers, from its entry (and the rules ``parse_robots`` made of it).

    Args:
        entry: the host's robots.txt entry.
        parsed: ``parse_robots(entry)``, when already made off the loop; parsed here if
            omitted.
        rules: the crawl's robots.txt settings.
        memo: how many path decisions to remember; by default 4,096 for a heavy file and
            none for the rest. A crawl asks once a page, so a memo seldom hits, and a policy
            is kept for each of up to 2,048 hosts: 4,096 paths each (~150 bytes a path)
            would be ~0.6 MiB a host, ~1.2 GiB for a broad crawl, where a small file's
            check costs ~0.7 µs.
    """

    def __init__(
        self,
        entry: RobotsEntry,
        parsed: Protego | Literal[False] | None = False,
        *,
        rules: RobotsRules = DEFAULT_RULES,
        memo: int | None = None,
    ) -> None:
        self.entry = entry
        self.rules = rules
        self._parser = parse_robots(entry) if parsed is False else parsed
        self._memo: OrderedDict[str, bool] = OrderedDict()
        self._memo_size = memo if memo is not None else 4096 if self.heavy else 0
        self._checks = self._hits = self._disallowed = 0
        agent = rules.user_agent
        parser = self._parser
        self.crawl_delay: float | None = parser.crawl_delay(agent) if parser else None
        rate = parser.request_rate(agent) if parser else None
        self.request_rate: tuple[int, int] | None = (
            (rate.requests, rate.seconds) if rate is not None and rate.requests > 0 else None
        )
        self.sitemaps: tuple[str, ...] = tuple(parser.sitemaps) if parser else ()

    @property
    def delay(self) -> float | None:
        """Seconds between two requests to this host that robots.txt asks for, or None."""
        spacings = []
        if self.crawl_delay is not None and self.crawl_delay > 0:
            spacings.append(self.crawl_delay)
        if self.request_rate is not None:
            requests, seconds = self.request_rate
            spacings.append(seconds / requests)
        return max(spacings) if spacings else None

    @property
    def defer_reason(self) -> str | None:
        """Why every page of this host is deferred, or None."""
        if self.entry.given_up(self.rules):
            return f"robots.txt unreachable ({self.entry.reason}) after {self.entry.failures} tries"
        delay = self.delay
        if delay is not None and delay > self.rules.max_delay:
            return (
                f"robots.txt asks for {delay:g} s between requests, over the "
                f"{self.rules.max_delay:g} s cap"
            )
        return None

    @property
    def heavy(self) -> bool:
        """A large file: check paths on a thread, not on the event loop."""
        return len(self.entry.text) > 64 * 1024

    def check(self, path: str) -> Verdict:
        """The verdict for ``path`` (the path and query of a URL of this host)."""
        self._checks += 1
        if path == "/robots.txt" or path.startswith("/robots.txt?"):
            return Verdict.ALLOW
        if self.defer_reason is not None:
            return Verdict.DEFER
        if self.entry.state == "unreachable":
            return Verdict.WAIT
        parser = self._parser
        if parser is None:
            return Verdict.ALLOW
        if not self._memo_size:
            allowed = parser.can_fetch(path, self.rules.user_agent)
        else:
            allowed = self._memoised(parser, path)
        if not allowed:
            self._disallowed += 1
            return Verdict.DISALLOW
        return Verdict.ALLOW

    def _memoised(self, parser: Protego, path: str) -> bool:
        memo = self._memo
        allowed = memo.get(path)
        if allowed is None:
            allowed = parser.can_fetch(path, self.rules.user_agent)
            memo[path] = allowed
            if len(memo) > self._memo_size:
                memo.popitem(last=False)
        else:
            self._hits += 1
            memo.move_to_end(path)
        return allowed

    def statistics(self) -> RobotsStatistics:
        return RobotsStatistics(self._checks, self._hits, self._disallowed)
