"""``HttpClient``: one connection pool per run, every limit, retry and safety rule applied.

The exchanges go through ``pool.Pool`` (HTTP/1.1 on asyncio protocols, parsed by llhttp;
proxies too); with ``cookies`` they go through an aiohttp session instead, which keeps a
cookie jar. Both answer with the same few response members, so everything below reads
them alike.

Per item the data flow is: ``fetch`` checks the URL (no network for a bad one) -> one
*attempt* follows redirects itself (``allow_redirects=False``) so every hop is checked by
``safety`` and passes the ``Limits`` gate -> the final hop's body is read by ``body`` under
``max_bytes`` -> a retryable status or error sleeps (``retry``) and tries again, if the
host's retry budget allows.

Each request that leaves is a *ticket* of the per-host controller (``controller.py``):
``start`` right before it leaves, ``finish`` with its outcome (``outcomes.py``) when it
ends, so the host's limits follow its own answers. ``watch.py`` holds what the client does
once a second (the tail, held-back hosts) and what it tells the other loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Union

from yarl import URL

from .._engine.ports import STOPPED, Budget, Holds, Peers, WaitingRoom, WindDown
from .._errors import (
    Blocked,
    Deferred,
    FetchError,
    FetchTimeout,
    TooLarge,
    TooManyRedirects,
    TooSlow,
    UsageError,
)
from .auth import Netrc, basic, userinfo
from .body import MemorySink, decoder_for, read_body, save_body
from .breaker import BreakerSettings
from .budget import BudgetSettings
from .config import FetchConfig
from .controller import HostController
from .deadlines import Deadlines
from .errors import NETWORK_ERRORS, to_fetch_error
from .health import HostBook
from .host_state import ControlSettings
from .hosts import host_key
from .limits import Clock, Limits
from .outcomes import Outcome, classify_failure, classify_status, refusal_statuses
from .pauses import PauseSettings
from .pool import Pool, idle_cap
from .proxy import routes_for
from .request import Request
from .response import Response
from .retry import error_is_retryable, parse_retry_after, retry_delay, status_is_retryable
from .safety import (
    address_refusal,
    check_url,
    ip_literal,
    parse_networks,
    redirect_drops_body,
    should_strip_credentials,
    strip_credentials,
    target_path,
    without_body_headers,
)
from .stats import FetchReport, HttpStats
from .tail import RATE_WINDOW, TailSettings
from .watch import HostsLearnt, Watch, as_reason
from .wire import Response as WireResponse

if TYPE_CHECKING:
    import aiohttp

    from .session import SessionTransport

REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate, br"
SMALL_BODY = 64 * 1024
# How a response's body is read (``HttpClient._plan``); _RETRY: skipped, to retry.
_SKIP, _WHOLE, _DECODE, _SAVE, _RETRY = range(5)


# A response as the transport hands it over: the wire's, or aiohttp's (cookies).
Answer = Union[WireResponse, "aiohttp.ClientResponse"]


@dataclass(slots=True)
class _Hop:
    """One exchange's outcome: a redirect to follow, or the final response."""

    response: Answer
    body: bytes = b""
    path: Path | None = None
    raw: int = 0
    retry: bool = False  # a retryable status the host's retry budget allows retrying


class HttpClient:
    """Fetches URLs with one connection pool; use ``async with HttpClient(...) as client``."""

    def __init__(
        self,
        config: FetchConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        budget: Budget | None = None,
        holds: Holds | None = None,
        parts: int = 1,
        rate_window: float = RATE_WINDOW,
        control: Mapping[str, Any] | None = None,
        tail: TailSettings | None = None,
        **options: Any,
    ) -> None:
        self.config = FetchConfig.coerce(config, options)
        self._clock = clock
        # Holds an earlier run kept (``ClientFactory.holding``), restored on opening; and
        # how many loop processes each host is spread over (``ClientFactory.share``).
        self._holds = dict(holds) if holds else {}
        self._parts = parts
        # ``ControlSettings`` fields to replace (tests: short breaker and pause times).
        self._control = dict(control) if control else {}
        self._refusals = refusal_statuses(refuse_403=self.config.refuse_403)
        # Loop processes share the global slots (a ``Budget``); one client has its own.
        self._budget = budget
        self._transport: Pool | SessionTransport | None = None
        self._errors = NETWORK_ERRORS  # what an exchange may raise (more with aiohttp)
        self._limits: Limits | None = None
        self._allowed = parse_networks(self.config.allow_networks)
        self._save_dir: Path | None = None
        self._deadlines = Deadlines(
            self.config.timeout,
            read_timeout=self.config.read_timeout,
            min_rate=self.config.min_rate,
            rate_window=rate_window,
        )
        self.controller = HostController(self.settings(), clock=clock)
        self._book = HostBook()  # forgotten hosts' final reports (the report's ``hosts``)
        self._watch = Watch(self, tail)
        self._deferred: dict[str, int] = {}
        self._report: FetchReport | None = None  # the last report, while nothing changed
        self._answers = 0  # requests ended so far: a new one makes a new per-host report
        self._seen = -1  # ``_answers`` when the last per-host report was made
        # The run's own headers= (usually none: then there is nothing to merge).
        self._base_headers = tuple(self.config.header_pairs)
        self._netrc: Netrc | None = None  # logins from .netrc, with trust_env
        # Plain attributes, not a dict: they are bumped on every request.
        self._fetches = self._requests = self._retries = self._redirects = 0
        self._responses = self._failures = self._bytes = 0

    def settings(self) -> ControlSettings:
        """The controller's settings from the config (a host spread over ``parts`` loops
        holds a part of every per-host total: ``share`` divided the ceilings already)."""
        cfg = self.config
        parts = self._parts
        settings = ControlSettings(
            adapt=cfg.adapt,
            per_host=cfg.per_host,
            host_rate=cfg.host_rate_per_second,
            pauses=PauseSettings(cap=cfg.max_pause),
            breaker=BreakerSettings(),
            budget=BudgetSettings(floor=BudgetSettings().floor / parts),
            fixed_pause_cap=cfg.max_retry_after,
            fixed_backoff=cfg.backoff,
            parts=parts,
        )
        return dataclasses.replace(settings, **self._control) if self._control else settings

    async def __aenter__(self) -> HttpClient:
        cfg = self.config
        if cfg.save_to is not None:
            self._save_dir = await asyncio.to_thread(_prepare_dir, Path(cfg.save_to))
        for host, (reason, until) in self._holds.items():
            self.controller.restore_pause(host, as_reason(reason), until)
        self._limits = Limits(
            concurrency=cfg.concurrency,
            controller=self.controller,
            rate=cfg.rate_per_second,
            clock=self._clock,
            shared=self._budget,
        )
        self._watch.start()
        if cfg.trust_env:
            self._netrc = await asyncio.to_thread(Netrc.load)
        routes = routes_for(cfg.proxies, trust_env=cfg.trust_env)
        if routes is not None and self._netrc is not None:
            routes = routes.with_logins(self._netrc)
        if not cfg.cookies:
            self._transport = Pool(
                agent_headers=(("User-Agent", cfg.agent), ("Accept-Encoding", ACCEPT_ENCODING)),
                connect_timeout=cfg.connect_timeout,
                verify_tls=cfg.verify_tls,
                max_idle=idle_cap(cfg.concurrency),
                allowed=self._allowed if cfg.block_private else None,
                proxies=routes,
            )
            return self
        from .session import ERRORS, SessionTransport  # loads aiohttp: only for cookies

        self._errors = NETWORK_ERRORS + ERRORS
        self._transport = SessionTransport(
            cfg,
            self._allowed,
            {"User-Agent": cfg.agent, "Accept-Encoding": ACCEPT_ENCODING},
            routes,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._deadlines.close()
        await self._watch.close()
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def fetch(self, request: str | Request) -> Response:
        """Fetch one URL or ``Request``, with the run's limits, retries and safety rules.

        Returns:
            The ``Response``, also for 4xx and 5xx once the retries that apply are spent
            (or the host's retry budget is).

        Raises:
            FetchError: a subclass naming the kind; ``attempts`` says how many tries ran.
            Deferred: the item is left for the next run (its host parked beyond
                ``max_pause``, the run's deadline, the tail); ``reason`` says which.
        """
        if self._transport is None or self._limits is None:
            raise UsageError("use the client inside `async with HttpClient(...) as client:`")
        self._fetches += 1
        started = self._clock()
        attempt = 0
        try:
            req = request if isinstance(request, Request) else Request.coerce(request)
            url = check_url(req.url)
            if req.params:
                url = url.extend_query(req.params)
            while True:
                attempt += 1
                try:
                    hop, chain = await self._attempt(
                        req, url, final=attempt > self.config.retries, retry=attempt > 1
                    )
                except FetchError as exc:
                    if (
                        attempt > self.config.retries
                        or not error_is_retryable(self.config, req.method, exc)
                        or not self.controller.allow_retry(host_key(exc.url or req.url))
                    ):
                        raise
                    await self._sleep_before_retry(attempt, None)
                    continue
                resp = hop.response
                if hop.retry:
                    # With the controller the host's pause (its Retry-After) is kept at
                    # the gate, for every request, and a pause beyond max_pause defers the
                    # item there: the retry itself only backs off.
                    after = None if self.config.adapt else self._retry_after(resp)
                    await self._sleep_before_retry(attempt, after)
                    continue
                self._responses += 1
                plain = not chain and not req.params  # then final_url is the URL asked
                return Response.build(
                    url=req.url,
                    final_url=req.url if plain else str(resp.url),
                    status=resp.status,
                    reason=resp.reason or "",
                    headers=resp.headers,
                    body=hop.body,
                    elapsed=self._clock() - started,
                    attempts=attempt,
                    redirects=chain,
                    path=hop.path,
                    request=req,
                    raw_bytes=hop.raw,
                )
        except FetchError as exc:
            self._failures += 1
            exc.attempts = attempt
            raise
        except Deferred as exc:
            if exc.reason != STOPPED:  # given up at a stop: left for the next run, untold
                self._deferred[exc.reason] = self._deferred.get(exc.reason, 0) + 1
            raise

    def _retry_after(self, resp: Answer) -> float | None:
        return parse_retry_after(resp.headers.get("Retry-After"), now=time.time())

    async def _sleep_before_retry(self, attempt: int, retry_after: float | None) -> None:
        self._retries += 1
        delay = retry_delay(self.config, attempt, retry_after)
        if delay > 0:
            limits = self._limits
            # A retry's pause has nothing out: another item may come in meanwhile.
            with limits.parked() if limits is not None else contextlib.nullcontext():
                await asyncio.sleep(delay)

    async def _attempt(
        self, req: Request, url: URL, *, final: bool, retry: bool = False
    ) -> tuple[_Hop, tuple[str, ...]]:
        """One try: follow redirects hop by hop, each checked and gated, then read the body."""
        method = req.method
        payload, content_type = (
            (None, None) if req.json is None and req.data is None else req.body()
        )
        headers = self._headers(req, content_type)
        if self._netrc is not None or "@" in req.url:
            headers, url = self._credentials(headers, url)
        chain: list[str] = []
        current = url
        controller = self.controller
        while True:
            self._check_address(current)
            # The exchange is inline rather than a method: one coroutine frame less on
            # every resumption of every request.
            assert self._transport is not None
            limits = self._limits
            assert limits is not None
            host = host_key(current)
            if not limits.try_acquire_nowait(host):
                try:
                    await limits.acquire(host)
                except Deferred as exc:
                    if exc.reason != STOPPED:  # a stop's items are left, not deferred
                        controller.deferred(host)
                        self._answers += 1  # the host's report changed
                    raise
            # The deadlines cover the connection, the request and reading the body, not
            # our waits for slots (deadlines.py says why they are not aiohttp's).
            deadline = self._deadlines.enter()
            ticket = controller.start(host, retry=retry)
            task = self._watch.sent(ticket)
            retry = False  # the next hops are redirects of this try
            outcome: Outcome | None = None
            resp: Answer | None = None
            latency: float | None = None
            nbytes = 0
            try:
                self._requests += 1
                # Awaited rather than ``async with``: a body read to its end has given the
                # connection back already, and leaving the context would only mark the
                # response closed, through two more frames (~5% of the client's time).
                resp = await self._transport.request(method, current, headers=headers, data=payload)
                latency = self._clock() - ticket.sent_at
                outcome = classify_status(resp.status, self._refusals)
                try:
                    self._deadlines.watch(deadline, resp.content)
                    plan = self._plan(resp, req, method, host, final=final)
                    if plan == _WHOLE:
                        body = await resp.read()
                        nbytes = len(body)
                        self._bytes += nbytes
                        hop = _Hop(resp, body=body, raw=nbytes)
                    else:
                        hop = await self._read(resp, req, plan)
                        nbytes = hop.raw
                finally:
                    if resp.connection is not None:  # the body is unread: as `async with`
                        resp.release()
                        await resp.wait_for_close()
            except asyncio.CancelledError:
                outcome = None
                expiry = self._deadlines.timed_out(deadline)
                if expiry == "timeout":
                    outcome = Outcome.NET_FAIL
                    raise FetchTimeout(
                        f"timeout for {current}: over timeout={self.config.timeout} s",
                        url=str(current),
                    ) from None
                if expiry == "read_timeout":
                    outcome = Outcome.NET_FAIL
                    raise FetchTimeout(
                        f"read timeout for {current}: no bytes for "
                        f"read_timeout={self.config.read_timeout} s",
                        url=str(current),
                    ) from None
                if expiry == "too_slow":
                    raise TooSlow(
                        f"{current} sent its body slower than min_rate="
                        f"{self.config.min_rate:g} bytes/s",
                        url=str(current),
                    ) from None
                given_up = self._watch.given_up(ticket)
                if given_up is not None:
                    raise given_up from None
                raise
            except FetchError as exc:
                outcome = classify_failure(exc.kind)
                raise
            except self._errors as exc:
                error = to_fetch_error(exc, str(current))
                outcome = classify_failure(error.kind)
                raise error from exc
            finally:
                self._deadlines.exit(deadline)
                self._watch.ended(task)
                if resp is None:
                    controller.finish(ticket, outcome)
                else:
                    controller.finish(
                        ticket,
                        outcome,
                        status=resp.status,
                        headers=resp.headers,
                        latency=latency,
                        nbytes=nbytes,
                    )
                if outcome is not None and outcome is not Outcome.OK:
                    self._watch.answered(host)  # a pause or a breaker to tell the other loops
                self._answers += 1
                limits.release(host)
                limits.answered(host)  # after release: a grown limit admitted its waiters
            location = hop.response.headers.get("Location")
            if hop.response.status not in REDIRECTS or location is None:
                return hop, tuple(chain)
            chain.append(str(current))
            self._redirects += 1
            if len(chain) > self.config.max_redirects:
                raise TooManyRedirects(
                    f"{req.url} redirected more than max_redirects={self.config.max_redirects}"
                    " times",
                    url=req.url,
                )
            try:
                target = current.join(URL(location))
            except ValueError as exc:
                raise Blocked(
                    f"redirect from {current} to bad Location {location!r}: {exc}", url=req.url
                ) from None
            target = check_url(target, redirect_from=current)
            if target.raw_user is not None:
                target = target.with_user(None)  # credentials in a Location are not used
            if should_strip_credentials(current, target):
                headers = strip_credentials(headers)
            if redirect_drops_body(hop.response.status, method):
                method, payload = "GET", None
                headers = without_body_headers(headers)
            current = target

    def _retry_this(self, req: Request, host: str, status: int) -> bool:
        """Retry an answer with this status? Takes the retry from the host's budget."""
        return status_is_retryable(self.config, req.method, status) and self.controller.allow_retry(
            host
        )

    def _credentials(
        self, headers: tuple[tuple[str, str], ...], url: URL
    ) -> tuple[tuple[tuple[str, str], ...], URL]:
        """Basic credentials from the URL's user info (or, with trust_env, .netrc) as an
        ``Authorization`` header, unless the request has one; the URL without them."""
        has_own = any(name.lower() == "authorization" for name, _ in headers)
        credentials = userinfo(url)
        if credentials is not None:
            url = url.with_user(None)  # never in the request line, nor to aiohttp
            if not has_own:
                headers = (*headers, ("Authorization", basic(*credentials)))
        elif self._netrc is not None and not has_own:
            login = self._netrc.authorization(url.raw_host or "")
            if login is not None:
                headers = (*headers, ("Authorization", login))
        return headers, url

    def _check_address(self, url: URL) -> None:
        if not self.config.block_private:
            return
        ip = ip_literal(url.raw_host or "")
        reason = address_refusal(ip, self._allowed) if ip is not None else None
        if reason is not None:
            raise Blocked(f"block_private refused {url}: {ip} is {reason}", url=str(url))

    def _headers(self, req: Request, content_type: str | None) -> tuple[tuple[str, str], ...]:
        if not content_type and not req.header_pairs:
            return self._base_headers  # the common case, built once per client
        merged = {k.lower(): (k, v) for k, v in self._base_headers}
        if content_type:
            merged["content-type"] = ("Content-Type", content_type)
        for key, value in req.header_pairs:
            merged[key.lower()] = (key, value)  # the request's own headers win
        return tuple(merged.values())

    def _plan(self, resp: Answer, req: Request, method: str, host: str, *, final: bool) -> int:
        """How to read this response's body (``_SKIP``, ``_WHOLE``, ``_DECODE``, ``_SAVE``,
        or ``_RETRY``: skip it and retry, the host's retry budget allowing). Not a
        coroutine: the common answer, ``_WHOLE``, is read right in ``_attempt``, with no
        frame of its own."""
        cfg = self.config
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            # No body follows, whatever Content-Length says (it is the size of the body
            # a GET would have had): nothing to check against max_bytes, nothing to read.
            return _SKIP
        length = resp.content_length
        if resp.status in REDIRECTS and "Location" in resp.headers:
            return _SKIP  # not the body we want
        if (
            not final
            and resp.status in cfg.retry_statuses  # first: a cheap miss for most
            and self._retry_this(req, host, resp.status)
        ):
            return _RETRY  # not the body we want: the retry's is
        if length is not None and length > cfg.max_bytes:
            raise TooLarge(
                f"{req.url} announces {length} bytes, over max_bytes={cfg.max_bytes}", url=req.url
            )
        encoding = resp.headers.get("Content-Encoding")
        if self._save_dir is not None and resp.status < 400:
            return _SAVE
        if length is not None and (encoding is None or encoding == "identity"):
            # A plain body of announced length, already checked against max_bytes: the
            # transport reads exactly that many bytes.
            return _WHOLE
        return _DECODE

    async def _read(self, resp: Answer, req: Request, plan: int) -> _Hop:
        """Read a body that is not ``_WHOLE``: skipped, decoded, or saved to a file."""
        cfg = self.config
        length = resp.content_length
        if plan == _SKIP or plan == _RETRY:
            # Read a small body anyway so the connection can be reused (an unread body
            # closes it, on the wire as in aiohttp's session); leave a big one unread.
            if length is not None and length <= SMALL_BODY:
                await resp.read()
            return _Hop(resp, retry=plan == _RETRY)
        decoder = decoder_for(resp.headers.get("Content-Encoding"))
        chunks = resp.content.iter_any()
        if plan == _SAVE:
            assert self._save_dir is not None
            path = target_path(self._save_dir, URL(req.url))
            raw = await save_body(chunks, decoder, path, max_bytes=cfg.max_bytes, url=req.url)
            self._bytes += raw
            return _Hop(resp, path=path, raw=raw)
        memory = MemorySink()
        raw = await read_body(chunks, decoder, memory, max_bytes=cfg.max_bytes, url=req.url)
        self._bytes += raw
        return _Hop(resp, body=memory.value(), raw=raw)

    def set_host_interval(self, host: str, seconds: float) -> None:
        """Space requests to ``host`` (``host_key``: ``host:port``) at least ``seconds``
        apart from now on, while the client is open: what a site's robots.txt asks for
        (``Crawl-delay``, ``Request-rate``), which a crawl reads. Other pacing (a
        ``host_rate``, a 429's slow-down) still applies when it spaces them more; 0 lifts
        it. The one hook the crawl needs of the client's pacing."""
        if self._limits is None:
            raise UsageError("set_host_interval: the client is not open")
        self.controller.set_interval(host, seconds)

    def details(self) -> FetchReport:
        """What the fetch stage's statistics carry (``StageStatistics.details``), a few
        times a second: requests out against the limits, requests waiting for a busy host,
        hosts held back (why, seconds left), per-host health (bounded: ``health.py``),
        holds to keep across runs, items deferred. It pickles and merges: it crosses from
        loop processes too. While no request ended since the last one (and nothing was
        heard), the per-host part and the holds are the last one's (the costly parts:
        each is a pass over the hosts the controller remembers, which ``forget_idle``
        keeps to the hosts worked on in the last minute or holding something)."""
        limits = self._limits
        cfg = self.config
        if limits is None:
            return FetchReport(concurrency=cfg.concurrency, per_host=cfg.per_host)
        controller = self.controller
        last = self._report
        if last is not None and self._answers == self._seen:
            hosts, holds = last.hosts, last.holds
        else:
            hosts = self._book.select(controller.tallies())
            holds = dict(controller.pauses_to_keep())
            self._seen = self._answers
        held = controller.paused()
        report = FetchReport(
            requests=self._requests,
            retries=self._retries,
            in_flight=limits.in_flight(),
            concurrency=cfg.concurrency,
            per_host=cfg.per_host,
            waiting_for_host=limits.waiting(),
            hosts_at_limit=limits.hosts_at_limit(),
            paused={host: left for host, (_, left) in held.items()},
            hosts=hosts,
            held=held,
            holds=holds,
            deferred=dict(self._deferred),
        )
        self._report = report
        return report

    def join(self, peers: Peers) -> None:
        """Tell ``peers`` (the other loops' clients) of every pause a site asks for."""
        self._watch.join(peers)

    def learnt(self) -> HostsLearnt | None:
        """What this client learnt of its hosts' concurrency and refused rates, for the
        clients that take them over (``ports.Learns``: ``loops="auto"``'s move); None when
        nothing."""
        hosts = self.controller.learnt()
        return HostsLearnt(hosts) if hosts else None

    def park_in(self, room: WaitingRoom) -> None:
        """Tell ``room`` of each request that waits on its host (a host slot, a verdict,
        a retry's pause) with nothing out (``ports.Parks``). Call it once the client is
        open."""
        if self._limits is not None:
            self._limits.room = room

    def hear(self, notice: Any) -> None:
        """A pause another loop's client was told of, the run's ``WindDown``, or what the
        client on the run's loop learnt of its hosts (``HostsLearnt``)."""
        if isinstance(notice, WindDown) and notice.reason == "stop":
            # The run was stopped: what waits here (for a host held back, a slot) has sent
            # nothing and ends at once, left for the next run; requests out go on.
            if self._limits is not None:
                self._limits.stop(_stopped)
            return
        self._watch.hear(notice)
        self._answers += 1  # the holds may have changed

    def forget_idle(self) -> None:
        """Drop the controller's idle hosts, keeping their final reports (``watch.py``
        calls it once a second)."""
        gone = self.controller.forget_idle()
        if gone:
            self._book.forgotten(gone)

    def statistics(self) -> HttpStats:
        limits = self._limits
        return HttpStats(
            in_flight=limits.in_flight() if limits else 0,
            waiting=limits.waiting() if limits else 0,
            per_host=limits.per_host_in_flight() if limits else {},
            fetches=self._fetches,
            requests=self._requests,
            retries=self._retries,
            redirects=self._redirects,
            responses=self._responses,
            failures=self._failures,
            bytes_read=self._bytes,
            slowed_hosts=self.controller.slowed_hosts(),
        )


def _prepare_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


def _stopped(host: str) -> Deferred:
    return Deferred(
        f"the run was stopped before a request to {host} was sent: left for the next run",
        reason=STOPPED,
    )
