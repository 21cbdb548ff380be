"""The report's per-host part stays bounded, and adds up."""

from __future__ import annotations

from conveyor._http.health import OTHER_HOSTS, HostBook
from conveyor._http.host_report import HostReport, HostTally


def _tally(ok: int, refusals: int = 0) -> HostTally:
    tally = HostTally()
    for _ in range(ok):
        tally.answer(0, 200, 0.01, 10)
    for _ in range(refusals):
        tally.answer(1, 429, None, 0)
    return tally


def test_the_most_wasteful_hosts_are_named_and_the_rest_added_up() -> None:
    live = [(f"h{n}:80", _tally(ok=n + 1)) for n in range(40)]
    live.append(("bad:80", _tally(ok=1, refusals=5)))
    book = HostBook(limit=8)
    book.forgotten({"gone:80": HostReport("gone:80", requests=1000, ok=1000)})
    hosts = book.select(live)
    assert len(hosts) == 9  # 8 by name and the roll-up
    assert "bad:80" in hosts
    assert hosts["bad:80"].refusals == 5
    assert "gone:80" in hosts  # forgotten, kept under the same bound
    total = sum(n + 1 for n in range(40)) + 6 + 1000
    assert sum(report.requests for report in hosts.values()) == total
    assert hosts[OTHER_HOSTS].requests > 0
