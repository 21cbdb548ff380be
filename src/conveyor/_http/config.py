"""``FetchConfig``: every option of the fetch stage, checked once when it is built.

The config is a frozen dataclass so that a pipeline can be built, compared and pickled
before anything runs; ``__post_init__`` normalises the friendly forms (``rate="20/s"``,
``headers={...}``, ``save_to="dir"``) into one canonical form, so the client never has to
guess, and a wrong value fails at build time with a message naming the parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._engine.limits import parse_rate
from .._errors import UsageError
from .._version import __version__
from .head import header_problem
from .proxy import parse_proxy
from .safety import parse_networks

DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRY_KINDS = frozenset({"connect", "reset", "timeout", "too-slow"})
RETRYABLE_KINDS = frozenset(
    {"connect", "reset", "timeout", "too-slow", "dns", "tls", "decode", "proxy"}
)
MiB = 1024 * 1024

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


@functools.cache
def default_user_agent() -> str:
    """``conveyor/<version>``, from ``_version`` (importlib.metadata is ~10 ms)."""
    return f"conveyor/{__version__}"


def normalise_headers(
    headers: HeadersLike | None, *, name: str = "headers"
) -> tuple[tuple[str, str], ...]:
    """Headers as a tuple of pairs: hashable, picklable and order-preserving."""
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise UsageError(f"{name}: give a dict of header names to values, got {item!r}")
        key, value = item
        # The wire checks again as it writes (head.py): this is the early, friendly error.
        problem = header_problem(key, value)
        if problem is not None:
            raise UsageError(f"{name}: {problem}")
        pairs.append((key, value))
    return tuple(pairs)


def _positive_int(name: str, value: Any, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name}={value!r} must be a whole number >= {minimum}")


def _seconds(name: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        hint = " or None for no limit" if optional else ""
        raise UsageError(f"{name}={value!r} must be a number of seconds > 0{hint}")


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """How a run fetches: limits, retries, timeouts and safety rules.

    Args:
        concurrency: requests in flight in all (default 100).
        per_host: requests in flight per host, ``host:port`` (default 8, Scrapy's default;
            raise it for a server you own).
        rate: requests per second in all, as a number or ``"20/s"``, ``"600/min"``.
        host_rate: requests per second per host, same forms. A 429 halves it for that host.
        retries: retries after the first attempt (default 3), with exponential backoff.
        backoff: the wait before the first retry in seconds, doubled after each try.
        max_backoff: the longest backoff wait.
        jitter: random share (0 to 1) added or removed from each wait.
        retry_statuses: statuses retried (default 429, 500, 502, 503, 504); after the last
            retry the response itself is returned.
        retry_kinds: failure kinds retried (default connect, reset, timeout, too-slow). Only
            ``connect`` is retried for non-idempotent methods (POST, PATCH): the others may
            have reached the server.
        max_retry_after: the longest ``Retry-After`` honoured, in seconds (longer is capped).
        timeout: deadline for one attempt, redirects and body included (seconds or None).
        connect_timeout: deadline to open a connection.
        read_timeout: the longest silence from the start of an exchange until its response
            begins, and between two reads of it (checked a few times per timeout).
        max_redirects: redirects followed before ``too-many-redirects``.
        max_bytes: the largest body, counted on the wire and again after decompression.
        headers: headers sent with every request (a request's own headers win).
        user_agent: the ``User-Agent``; default ``conveyor/<version>``.
        cookies: keep a cookie jar for the run (off by default: requests stay independent).
        verify_tls: check certificates (on by default).
        trust_env: take proxies (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``) and
            ``.netrc`` logins from the environment (off by default, as in aiohttp).
        proxy: a forward proxy, ``http://[user:password@]host:port``, or several: hosts are
            spread over them, each host staying on one.
        block_private: refuse loopback, private, link-local, metadata and other non-global
            addresses after DNS resolution, on every hop (SSRF guard). A proxy you name is
            exempt; the origins behind it are not.
        allow_networks: networks exempted from ``block_private`` (e.g. ``"10.1.0.0/16"``).
        save_to: a directory: bodies are streamed to files there instead of memory.
        adapt: learn each host's concurrency and rate from its own answers (on by
            default; ``per_host`` and ``host_rate`` are then ceilings). False: today's
            fixed limits, ``--no-adapt``.
        refuse_403: read a 403 as "too many requests" (some sites answer bots so).
        min_rate: the slowest a body may arrive, in bytes per second averaged over 30 s
            (default 1024); a slower one fails ``too-slow``. None: no minimum.
        max_pause: the longest ``Retry-After`` (seconds) waited for (default a day);
            beyond it the host's items are deferred to the next run instead.
    """

    concurrency: int = 100
    per_host: int = 8
    rate: float | str | None = None
    host_rate: float | str | None = None
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    retry_statuses: Iterable[int] = DEFAULT_RETRY_STATUSES
    retry_kinds: Iterable[str] = DEFAULT_RETRY_KINDS
    max_retry_after: float = 60.0
    timeout: float | None = 30.0
    connect_timeout: float | None = 10.0
    read_timeout: float | None = 20.0
    max_redirects: int = 10
    max_bytes: int = 50 * MiB
    headers: HeadersLike | None = field(default=())
    user_agent: str | None = None
    cookies: bool = False
    verify_tls: bool = True
    trust_env: bool = False
    proxy: str | Iterable[str] | None = None
    block_private: bool = False
    allow_networks: Iterable[str] = ()
    save_to: str | Path | None = None
    adapt: bool = True
    refuse_403: bool = False
    min_rate: float | None = 1024.0
    max_pause: float = 86_400.0

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        _positive_int("concurrency", self.concurrency)
        _positive_int("per_host", self.per_host)
        set_("rate", parse_rate(self.rate, name="rate"))
        set_("host_rate", parse_rate(self.host_rate, name="host_rate"))
        _positive_int("retries", self.retries, minimum=0)
        _positive_int("max_redirects", self.max_redirects, minimum=0)
        _positive_int("max_bytes", self.max_bytes)
        for name in ("backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageError(f"{name}={value!r} must be a number of seconds >= 0")
        if isinstance(self.jitter, bool) or not 0 <= self.jitter <= 1:
            raise UsageError(f"jitter={self.jitter!r} must be between 0 and 1")
        for name in ("timeout", "connect_timeout", "read_timeout"):
            _seconds(name, getattr(self, name))
        try:
            statuses = frozenset(int(s) for s in self.retry_statuses)
        except (TypeError, ValueError):
            raise UsageError(
                f"retry_statuses={self.retry_statuses!r}: give status codes, e.g. {{429, 503}}"
            ) from None
        set_("retry_statuses", statuses)
        kinds = frozenset(self.retry_kinds)
        unknown = kinds - RETRYABLE_KINDS
        if unknown:
            raise UsageError(
                f"retry_kinds holds {sorted(unknown)!r}: choose from "
                + ", ".join(sorted(RETRYABLE_KINDS))
            )
        set_("retry_kinds", kinds)
        set_("headers", normalise_headers(self.headers))
        if self.user_agent is not None:
            problem = header_problem("User-Agent", self.user_agent)
            if problem is not None:
                raise UsageError(f"user_agent={self.user_agent!r}: {problem}")
        proxies = () if self.proxy is None else self.proxy
        set_("proxy", (proxies,) if isinstance(proxies, str) else tuple(proxies))
        for text in self.proxies:
            parse_proxy(text)  # fails early on a proxy URL the wire cannot use
        for name in ("cookies", "verify_tls", "trust_env", "block_private", "adapt", "refuse_403"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.block_private and self.cookies and (self.trust_env or self.proxies):
            raise UsageError(
                "block_private=True cannot check where a proxy connects with cookies=True "
                "(aiohttp's session): drop cookies, or the proxy"
            )
        if self.min_rate is not None and (
            isinstance(self.min_rate, bool)
            or not isinstance(self.min_rate, int | float)
            or not 0 < self.min_rate < float("inf")
        ):
            raise UsageError(
                f"min_rate={self.min_rate!r} must be bytes per second above 0, "
                "or None for no minimum"
            )
        _seconds("max_pause", self.max_pause, optional=False)
        if self.min_rate is not None:
            set_("min_rate", float(self.min_rate))
        set_("max_pause", float(self.max_pause))
        if isinstance(self.allow_networks, str):
            set_("allow_networks", (self.allow_networks,))
        set_("allow_networks", tuple(str(n) for n in self.allow_networks))
        parse_networks(self.allow_networks)  # fails early on a malformed network
        if self.save_to is not None:
            if not isinstance(self.save_to, str | Path):
                raise UsageError(f"save_to={self.save_to!r} must be a directory path")
            set_("save_to", Path(self.save_to))

    @property
    def rate_per_second(self) -> float | None:
        """``rate`` as a number (it is normalised in ``__post_init__``)."""
        return self.rate if isinstance(self.rate, float) else None

    @property
    def host_rate_per_second(self) -> float | None:
        return self.host_rate if isinstance(self.host_rate, float) else None

    @property
    def proxies(self) -> tuple[str, ...]:
        """``proxy`` as a tuple of URLs (it is normalised in ``__post_init__``)."""
        return self.proxy if isinstance(self.proxy, tuple) else ()

    @property
    def header_pairs(self) -> tuple[tuple[str, str], ...]:
        return self.headers if isinstance(self.headers, tuple) else ()

    @property
    def agent(self) -> str:
        return self.user_agent if self.user_agent is not None else default_user_agent()

    @classmethod
    def coerce(cls, config: FetchConfig | None, options: Mapping[str, Any]) -> FetchConfig:
        """A config from ``config``, from keyword options, or from both (options win)."""
        import dataclasses
        import difflib

        names = [f.name for f in dataclasses.fields(cls)]
        for option in options:
            if option not in names:
                close = difflib.get_close_matches(option, names, n=1)
                hint = f"; did you mean {close[0]}=?" if close else ""
                raise UsageError(f"fetch got an unknown option {option}={options[option]!r}{hint}")
        if config is None:
            return cls(**options)
        if not isinstance(config, FetchConfig):
            raise UsageError(f"config={config!r} must be a conveyor.http.FetchConfig")
        if not options:
            return config
        return dataclasses.replace(config, **options)
