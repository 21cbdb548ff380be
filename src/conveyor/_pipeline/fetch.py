"""``Pipeline.fetch``: the HTTP client as a stage's service, on the event loop.

The client applies its own limits and retries (per host: its controller, pauses,
breaker), so the engine stage runs with retries off. Its workers are the client's
``concurrency`` (its request slots: ``StageSpec.slots``, the stage's budget) and a waiting
room beside them (``stage_workers``): an item waiting on a host held back (paused by its
site, its breaker open, at its rate or its limit) waits inside the client with no request
slot and no worker the other hosts need. The engine sizes every budget from the slots,
never the room (the loop processes' shared slots, the items sent ahead to them), and a
stop leaves the waiting items for the next run at once (``ports.WindDown``).
One client (one connection pool) is opened per run and closed when the run ends, in each
loop process when the run has several: there, each item goes to the loop that owns its
host (``_http/hosts.host_key``), the global rate is divided (``ClientFactory.share``)
and the concurrency is one budget the loops share (``ClientFactory.bind``).

``ClientFactory`` and ``FetchService`` implement the engine's ports for a stage's
service (``_engine/ports.py``); the client's report is a ``FetchReport``. The factory is
``Holding`` (an earlier run's site pauses are restored when the client opens) and the
service is ``Peered``: a pause a site asks of a host in one loop is told to the others,
and the run's ``WindDown`` (the deadline, the tail) is heard there too. It ``Learns``:
at ``loops="auto"``'s move, each host's concurrency limit learnt on the run's loop
starts the loop processes' clients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._engine.ports import Budget, CallTimes, Holds, Peers, WaitingRoom, part
from .._engine.spec import StageSpec, make_stage
from .._http.hosts import host_key

if TYPE_CHECKING:
    from .._http.client import HttpClient
    from .._http.config import FetchConfig
    from .._http.response import Response
    from .._http.stats import FetchReport


class FetchService:
    """The open client as the stage sees it: what to call, what it reports, how many
    tries a response took."""

    __slots__ = ("client", "per_host")

    def __init__(self, client: HttpClient, per_host: int | None = None) -> None:
        self.client = client
        # The whole per-host limit, for a loop that holds a part of it (``share``): the
        # report names what the user set (the hint tells which flag to raise).
        self.per_host = per_host

    @property
    def call(self) -> Callable[[Any], Awaitable[Response]]:
        return self.client.fetch

    def report(self) -> FetchReport:
        report = self.client.details()
        if self.per_host is None:
            return report
        return dataclasses.replace(report, per_host=self.per_host)

    def attempts(self, result: Response) -> int:
        return result.attempts

    def join(self, peers: Peers) -> None:
        """``ports.Peered``: tell ``peers`` of every pause a site asks for."""
        self.client.join(peers)

    def park_in(self, room: WaitingRoom) -> None:
        """``ports.Parks``: tell the stage's waiting room of each request that waits on
        its host, so that its workers beyond the slots come in only then."""
        self.client.park_in(room)

    def hear(self, notice: Any) -> None:
        """``ports.Peered``: a pause another loop was told of (kept, not told again, no
        refusal counted), the run's ``WindDown``, or what the client on the run's loop
        learnt of its hosts (``ports.Learns``)."""
        self.client.hear(notice)

    def call_times(self) -> CallTimes | None:
        """``ports.Timed``: the ok answers' latency since the last ask (from a request's
        send to its head: no wait for a slot or a host); None without any (or with
        ``adapt=False``, whose controller does not time them)."""
        calls, mean, fastest = self.client.controller.answer_times()
        return CallTimes(calls, mean, fastest) if calls else None

    def learnt(self) -> Any:
        """``ports.Learns``: each host's concurrency limit so far (``HostsLearnt``), for
        the loop processes' clients at ``loops="auto"``'s move."""
        return self.client.learnt()


class ClientFactory:
    """Opens the run's ``HttpClient``; picklable, so a loop process can open its own."""

    def __init__(
        self,
        config: FetchConfig,
        budget: Budget | None = None,
        per_host: int | None = None,
        *,
        holds: Holds | None = None,
        parts: int = 1,
        control: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.budget = budget
        self.per_host = per_host  # the whole limit, when ``config`` holds a part of it
        self.holds = dict(holds) if holds else {}
        self.parts = parts  # the loops each host is spread over (``share``)
        # ``ControlSettings`` fields to set beyond the config's (a breaker's timings): the
        # same in every loop process, as the factory travels there.
        self.control = dict(control) if control else {}

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FetchService]:
        from .._http.client import HttpClient

        async with HttpClient(
            self.config,
            budget=self.budget,
            holds=self.holds,
            parts=self.parts,
            control=self.control,
        ) as client:
            yield FetchService(client, self.per_host)

    def _with(self, **changes: Any) -> ClientFactory:
        fields = {
            "config": self.config,
            "budget": self.budget,
            "per_host": self.per_host,
            "holds": self.holds,
            "parts": self.parts,
            "control": self.control,
        }
        return ClientFactory(**{**fields, **changes})

    def bind(self, budget: Budget) -> ClientFactory:
        """The factory for a loop process whose global slots are shared with the other
        loops (``_engine/loops/slots.py``): ``concurrency`` holds across all of them."""
        return self._with(budget=budget)

    def holding(self, holds: Holds) -> ClientFactory:
        """``ports.Holding``: the factory whose clients hold these hosts back until their
        times (site pauses and open breakers an earlier run kept in its journal)."""
        return self._with(holds={**self.holds, **holds})

    def share(self, index: int, loops: int, *, spread: bool = False) -> ClientFactory:
        """The factory for loop ``index`` of ``loops``. The global rate is divided, so the
        parts add up to what the user set. Concurrency is one budget, the loops' shared
        slots (``bind``), so a loop with the busy hosts may use all of it. Per-host limits
        stay whole when each host has one loop; with ``spread`` (every host's URLs go to
        every loop) each loop holds its part of them: ``per_host`` in parts that add up to
        it, ``host_rate`` divided, and the controller's other per-host totals with them
        (``HttpClient.settings``: its starting limit is at most the part, its retry
        budget's floor and its share of a ``RateLimit`` quota are divided)."""
        config = self.config
        changes: dict[str, Any] = {}
        if config.rate_per_second is not None:
            changes["rate"] = config.rate_per_second / loops
        if spread:
            changes["per_host"] = part(config.per_host, index, loops)
            if config.host_rate_per_second is not None:
                changes["host_rate"] = config.host_rate_per_second / loops
        if not changes:
            return self
        whole = config.per_host if spread else self.per_host
        return self._with(
            config=dataclasses.replace(config, **changes),
            per_host=whole,
            parts=loops if spread else self.parts,
        )

    def spreads(self, loops: int) -> bool:
        """A host may be spread over ``loops`` loops when each can hold a part of its
        ``per_host`` (a host's pauses then go to every loop: ``FetchService``)."""
        return self.config.per_host >= loops


# Items that may wait inside the client beyond its ``concurrency`` (for a host held back):
# enough that a held host's items, interleaved with healthy hosts', do not take every
# worker; bounded, so a run never admits more than this many items ahead of its slots.
# The workers beyond the slots take items only while others wait on their hosts
# (``FetchService.park_in``, ``_engine/room.py``).
WAITING_ROOM = 1024


def stage_workers(concurrency: int) -> int:
    """The fetch stage's workers: the client's ``concurrency`` and the waiting room."""
    return concurrency + WAITING_ROOM


def with_waiting_room(stage: StageSpec, concurrency: int, route: Callable[[Any], str]) -> StageSpec:
    """A client's stage (a fetch's, a crawl's): routed by host, ``concurrency`` request
    slots, and the waiting room's workers beside them."""
    return dataclasses.replace(
        stage, route=route, concurrency=stage_workers(concurrency), slots=concurrency
    )


async def _fetch(value: Any) -> Any:  # pragma: no cover - replaced per run by the client
    raise RuntimeError("the fetch stage runs only inside a run")


def fetch_stage(options: Mapping[str, Any], *, name: str = "fetch") -> StageSpec:
    """The fetch stage, its client built from ``FetchConfig`` options (a dict of them)."""
    from .._http.config import FetchConfig

    config = FetchConfig.coerce(None, options)  # a misspelt option gets a 'did you mean'
    stage = make_stage(
        "map",
        _fetch,
        on="loop",
        concurrency=config.concurrency,
        name=name or "fetch",
        factory=ClientFactory(config),
    )
    return with_waiting_room(stage, config.concurrency, host_key)
