"""What a client does beside its requests: a check once a second, and its peers' notices.

Once a second, while the client is open (``Watch.check``):

- the controller forgets idle hosts, their final reports kept for the report;
- ``tail.tail_deferrals`` over the hosts with work (requests waiting here, requests out,
  the oldest one's age, the rate the host allows, what holds it back, its p95): whatever
  the flags, the hosts the run would wait on alone (every host with work held back by its
  site longer than ``patience`` and than the run so far) are given up for this run; once
  the run said ``WindDown("tail")``, so are the hosts whose forecast would more than
  double the run's time. A host given up has its waiting requests and its later ones
  raise ``Deferred`` (``Limits.defer``); for the tail, its stragglers (out longer than
  ``straggle`` times its p95, and ``min_straggle`` s) are cancelled and raise it too.

Notices (``ports.Peered``, with loop processes): every pause a site asks for (a
``Retry-After``, a refusal's backoff, a park beyond the cap, a breaker opening) is told to
the other loops as ``("pause", host, until as a Unix time, reason)``; a loop that hears
one holds the host as well (``HostController.restore_pause``: no refusal counted, nothing
told again; a breaker's a random lag later, so the loop that opened it probes first).
A breaker's probe going out and a probe's answer closing it are told as
``BreakerNotice(event, host)``: a loop that hears of the probe waits for its verdict
instead of probing too, and one that hears it closed closes and lets the host's waiting
requests go at once (``HostController.peer_breaker``), so that a host spread over the
loops gets one probe per break, not one a loop. ``WindDown("deadline")`` defers every
request waiting in this client and every later one at once (requests out go on);
``WindDown("tail")`` starts the tail rule. ``HostsLearnt`` (``loops="auto"``'s move: what
the client on the run's loop learnt of its hosts' concurrency and refused rates) starts
each host here from its part of that (``HostController.take_learnt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .._engine.ports import LoopBound, Peers, WindDown
from .._errors import Deferred
from .breaker import Event
from .host_state import HostLearnt, Ticket
from .tail import HostTail, TailSettings, tail_deferrals
from .verdicts import Reason

if TYPE_CHECKING:
    from .client import HttpClient

EVERY = 1.0  # seconds between two checks
_TOLD = frozenset({Reason.PAUSED, Reason.PARKED, Reason.BREAKER})


class BreakerNotice(NamedTuple):
    """What a host's breaker in one loop tells the others (a breaker's opening goes as a
    pause): its probe went out, or the probe's answer closed it."""

    event: Event
    host: str


class HostsLearnt(NamedTuple):
    """What a client learnt of its hosts' concurrency (``HttpClient.learnt``), heard by
    the clients that take its hosts over (``ports.Learns``)."""

    hosts: dict[str, HostLearnt]


class Watch:
    """One client's periodic check and its notices to and from the other loops."""

    def __init__(self, client: HttpClient, settings: TailSettings | None = None) -> None:
        self._client = client
        self.settings = settings or TailSettings()
        self._task: asyncio.Task[None] | None = None
        self._out: dict[asyncio.Task[Any], Ticket] = {}  # requests out, by their task
        self._cancelled: dict[asyncio.Task[Any], Deferred] = {}  # stragglers we cancelled
        self._given_up: dict[str, float | None] = {}  # host -> end of its hold (or the run)
        self._peers: Peers | None = None
        self._told: dict[str, float] = {}  # host -> the latest pause end told or heard
        self._tail = False
        self._origin = client.controller.to_wall(0.0)  # replaced when the client opens

    # -- the client's requests ----------------------------------------------------------

    def sent(self, ticket: Ticket) -> asyncio.Task[Any] | None:
        """A request left; returns its task, for ``ended``."""
        task = asyncio.current_task()
        if task is not None:
            self._out[task] = ticket
        return task

    def ended(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._out.pop(task, None)

    def given_up(self, ticket: Ticket) -> Deferred | None:
        """After a ``CancelledError``: the ``Deferred`` to raise instead when the tail
        cancelled this straggler (and only it: an outer cancellation still propagates)."""
        task = asyncio.current_task()
        error = self._cancelled.pop(task, None) if task is not None else None
        if error is None or task is None:
            return None
        task.uncancel()
        return error

    # -- the periodic check -------------------------------------------------------------

    def start(self) -> None:
        self._origin = self._client.controller.now()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            self.check()

    def check(self) -> None:
        client = self._client
        controller = client.controller
        limits = client._limits
        if limits is None:
            return
        client.forget_idle()
        now = controller.now()
        wall = time.time()
        self._told = {host: until for host, until in self._told.items() if until > wall}
        for host, until in list(self._given_up.items()):
            if until is not None and until <= now:
                del self._given_up[host]
                limits.undefer(host)
        hosts = self._work(now)
        if not hosts:
            return
        settings = self.settings
        if self._tail:
            settings = TailSettings(
                finish_at=1.0,
                patience=settings.patience,
                straggle=settings.straggle,
                min_straggle=settings.min_straggle,
            )
        chosen = tail_deferrals(hosts, settings, elapsed=now - self._origin, ended=1, total=1)
        for host, reason in chosen.items():
            if host not in self._given_up:
                self._give_up(host, reason, hosts[host], now)

    def _work(self, now: float) -> dict[str, HostTail]:
        """Every host with requests waiting here or out, as the tail policy sees it."""
        client = self._client
        controller = client.controller
        assert client._limits is not None
        queued = client._limits.queued()
        out: dict[str, list[float]] = {}
        for ticket in self._out.values():
            out.setdefault(ticket.host, []).append(ticket.sent_at)
        hosts = {}
        for host in queued.keys() | out.keys():
            held = controller.held(host)
            sent = out.get(host, ())
            hosts[host] = HostTail(
                queued=queued.get(host, 0),
                in_flight=len(sent),
                oldest=now - min(sent) if sent else 0.0,
                rate=controller.drain_rate(host),
                held=held[0] if held is not None else None,
                held_for=max(0.0, held[1] - now) if held is not None else 0.0,
                p95=controller.report(host).latency_p95 if sent else None,
            )
        return hosts

    def _give_up(self, host: str, reason: Reason, tail: HostTail, now: float) -> None:
        """Defer the host's waiting and later items for this run (for a hold of its site:
        until the hold ends), and, for the tail, cancel its stragglers."""
        client = self._client
        controller = client.controller
        assert client._limits is not None
        held = controller.held(host)
        until = held[1] if held is not None and reason != Reason.TAIL else None
        wall = controller.to_wall(until) if until is not None else None
        self._given_up[host] = until

        def error(key: str) -> Deferred:
            if reason == Reason.TAIL:
                text = f"{key}'s items would hold the run's end: left for the next run"
            else:
                text = f"{key} is held back by its site ({reason}) longer than the run waits"
            return Deferred(text, reason=str(reason), until=wall)

        client._limits.defer([host], error)
        if reason != Reason.TAIL:
            return
        settings = self.settings
        limit = settings.min_straggle
        if tail.p95 is not None:
            limit = max(limit, settings.straggle * tail.p95)
        for task, ticket in list(self._out.items()):
            if ticket.host == host and now - ticket.sent_at > limit and not task.done():
                self._cancelled[task] = error(host)
                task.cancel()

    # -- notices ------------------------------------------------------------------------

    def join(self, peers: Peers) -> None:
        self._peers = peers
        self._client.controller.on_breaker = self._breaker

    def _breaker(self, event: Event, host: str) -> None:
        if self._peers is None:
            return
        if event == Event.PROBING:
            # Whatever opening follows this probe is news to the others, who wait for
            # its verdict, even if it ends within 0.5 s of the one told before it.
            self._told.pop(host, None)
        self._peers.tell(BreakerNotice(event, host))

    def answered(self, host: str) -> None:
        """A request to ``host`` ended badly: if its site asked for a pause that the other
        loops do not know of yet, tell them."""
        peers = self._peers
        if peers is None:
            return
        controller = self._client.controller
        held = controller.held(host)
        if held is None or held[0] not in _TOLD:
            return
        until = controller.to_wall(held[1])
        if until > self._told.get(host, 0.0) + 0.5:
            self._told[host] = until
            peers.tell(("pause", host, until, str(held[0])))

    def hear(self, notice: Any) -> None:
        """What the run or another loop said (``ports.Peered.hear``)."""
        if isinstance(notice, WindDown):
            self.wind_down(notice)
            return
        controller = self._client.controller
        if isinstance(notice, LoopBound):
            controller.loop_bound = notice.bound
            return
        if isinstance(notice, HostsLearnt):
            controller.take_learnt(notice.hosts)
            return
        if isinstance(notice, BreakerNotice):
            if controller.peer_breaker(notice.host, notice.event):
                self._wake(notice.host)
            return
        if isinstance(notice, tuple) and len(notice) == 4 and notice[0] == "pause":
            _, host, until, reason = notice
            self._told[host] = max(self._told.get(host, 0.0), until)
            held = as_reason(reason)
            controller.restore_pause(host, held, until)
            if held == Reason.BREAKER:
                # Requests here may sleep on a probe's verdict they waited for: this is it
                # (the probe failed), so they ask again, for the new break's end.
                self._wake(host)

    def _wake(self, host: str) -> None:
        """The host's requests sleeping here on its verdict ask again now."""
        limits = self._client._limits
        if limits is not None:  # None until the client opens
            limits.answered(host)

    def wind_down(self, notice: WindDown) -> None:
        client = self._client
        if notice.reason == "deadline":
            if client._limits is not None:
                client._limits.stop(_deadline)
        elif notice.reason == "tail":
            self._tail = True
            self._origin = client.controller.now() - notice.elapsed
            self.check()


def as_reason(text: str) -> Reason:
    """A hold's reason as kept in a journal or told by a peer; one this version does not
    know holds the host as a pause (the time is what matters)."""
    try:
        return Reason(text)
    except ValueError:
        return Reason.PAUSED


def _deadline(host: str) -> Deferred:
    return Deferred(
        f"the run's deadline came before {host} was fetched: left for the next run",
        reason=str(Reason.DEADLINE),
    )
