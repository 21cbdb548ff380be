"""``HttpStats``: what one client is doing, as a frozen snapshot (``statistics()``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HttpStats:
    """A snapshot of one client, for progress bars and reports."""

    in_flight: int
    waiting: int
    per_host: dict[str, int] = field(default_factory=dict)
    fetches: int = 0
    requests: int = 0
    retries: int = 0
    redirects: int = 0
    responses: int = 0
    failures: int = 0
    bytes_read: int = 0
    slowed_hosts: dict[str, float] = field(default_factory=dict)
