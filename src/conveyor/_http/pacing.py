"""``HostPacer``: when may the next request to each host leave? Pure, clock injected.

It decides from the host's own rate (``host_rate``, GCRA: the theoretical arrival time of
the next request), a pause set by a ``Retry-After``, and the slow-down a 429 imposes on
that host for every request, not only the retried one. ``Limits`` (``limits.py``) only
waits on its verdicts. This is the fixed behaviour (``--no-adapt``); the per-host
controller (``controller.py``) replaces its 429 slow-down with one learned per host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# After a 429 a host gets at least this interval between requests, doubled by each further
# 429 up to the ceiling, and relaxed by a tenth after every success (AIMD, as TCP does).
SLOWDOWN_START = 0.1
SLOWDOWN_CEILING = 30.0
SLOWDOWN_RELAX = 0.9


@dataclass(slots=True)
class _Host:
    tat: float  # theoretical arrival time of the next request (GCRA)
    paused_until: float = 0.0
    slow_interval: float = 0.0  # extra spacing imposed by 429s; 0 when none
    floor: float = 0.0  # the spacing the site asks for (robots.txt Crawl-delay); 0: none


class HostPacer:
    """When may the next request to each host leave? Pure bookkeeping, no waiting."""

    def __init__(self, host_rate: float | None = None, *, clock: Clock = time.monotonic) -> None:
        self._base = 1.0 / host_rate if host_rate else 0.0
        self._clock = clock
        self._hosts: dict[str, _Host] = {}

    def _interval(self, state: _Host) -> float:
        return max(self._base, state.slow_interval, state.floor)

    def set_interval(self, host: str, seconds: float) -> None:
        """The least spacing between two requests to ``host`` that its site asks for (a
        crawl's robots.txt ``Crawl-delay``/``Request-rate``), kept while the run lasts;
        0 removes it. Never shortens the spacing the other rules give."""
        state = self._hosts.get(host)
        if state is None:
            if seconds <= 0:
                return
            state = self._hosts[host] = _Host(tat=self._clock())
        state.floor = max(0.0, seconds)

    def reserve(self, host: str) -> float:
        """Take the host's next send time and return the seconds to wait for it."""
        state = self._hosts.get(host)
        if state is None and not self._base:
            return 0.0  # unlimited and never throttled: keep no state at all
        now = self._clock()
        if state is None:
            state = self._hosts[host] = _Host(tat=now)
        due = max(now, state.tat, state.paused_until)
        state.tat = due + self._interval(state)
        return due - now

    def idle(self, host: str) -> bool:
        """True when a request to ``host`` may leave now without any bookkeeping."""
        return not self._base and host not in self._hosts

    def pause_remaining(self, host: str) -> float:
        """Seconds left of a pause set by ``on_throttled`` (checked just before sending)."""
        state = self._hosts.get(host)
        return max(0.0, state.paused_until - self._clock()) if state else 0.0

    def on_throttled(self, host: str, wait: float) -> None:
        """A 429 (or a 503 with Retry-After): pause the host and slow it down for everyone."""
        now = self._clock()
        state = self._hosts.setdefault(host, _Host(tat=now))
        state.paused_until = max(state.paused_until, now + wait)
        state.slow_interval = min(
            SLOWDOWN_CEILING, max(SLOWDOWN_START, 2.0 * self._interval(state))
        )
        state.tat = max(state.tat, state.paused_until)

    def on_success(self, host: str) -> None:
        """Relax a slow-down step by step; forget the host once it is back to normal."""
        state = self._hosts.get(host)
        if state is None or not state.slow_interval:
            return
        state.slow_interval *= SLOWDOWN_RELAX
        if state.slow_interval <= max(self._base, SLOWDOWN_START / 2):
            state.slow_interval = 0.0

    def forget_idle(self) -> None:
        """Drop hosts with nothing pending, so state stays as small as the busy hosts."""
        now = self._clock()
        idle = [
            host
            for host, s in self._hosts.items()
            if s.tat <= now and s.paused_until <= now and not s.slow_interval and not s.floor
        ]
        for host in idle:
            del self._hosts[host]

    def paused(self, limit: int = 5) -> dict[str, float]:
        """Up to ``limit`` hosts paused now by a 429 or Retry-After: seconds left, longest
        first."""
        now = self._clock()
        left = {h: s.paused_until - now for h, s in self._hosts.items() if s.paused_until > now}
        return dict(sorted(left.items(), key=lambda item: -item[1])[:limit])

    def slowed_hosts(self) -> dict[str, float]:
        """Hosts slowed by a 429 and their current interval in seconds."""
        return {h: s.slow_interval for h, s in self._hosts.items() if s.slow_interval}

    def __len__(self) -> int:
        return len(self._hosts)
