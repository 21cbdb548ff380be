"""A crawl's frontier in SQLite: every discovered URL once, on disk, taken in windows.

Tables (created on first use, beside the journal's own)::

    frontier(key, url, depth, referrer, host, slot, state, lastmod, kind, note)
                                                                       WITHOUT ROWID
        key       16-byte blake2b of the canonical URL (``_crawl.urls.url_key``)
        url       the URL to fetch, as found (resolved, encoded)
        depth     links followed from a seed (seeds are 0); a sitemap's nesting level
        referrer  the key of the page it was found on (NULL for seeds and sitemaps)
        host      frontier_hosts.id of its host (``host_key``)
        slot      its host's virtual slot
        state     PENDING, LEASED, DONE, FAILED, DEFERRED, CAPPED, DISALLOWED, HELD
        lastmod   the sitemap's <lastmod> when a sitemap listed it ('' when it gave none)
        kind      PAGE, or SITEMAP (a sitemap to read), ROBOTS_SITEMAP (named by robots.txt)
        note      why a row is DEFERRED
    frontier_pending                   index (depth, key) of the PENDING rows only
    frontier_held                      index (host) of the HELD rows only
    frontier_hosts(id, host, slot, admitted, paused_until)
    frontier_meta(name, value)         slots (fixed when the frontier is made)

``Frontier`` holds a connection it is given and never begins or commits a transaction:
its writes join the caller's, so the crawl can mark a page done, record its output
position and insert the page's new links in **one** transaction (the journal's commit),
and a kill at any moment leaves either all of it or none.

- ``offer`` inserts links with ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a URL
  seen before (by key) is ignored, and the new rows come back to be routed to the loop
  owning their host. With ``max_per_host``, a host's rows beyond the cap are kept as
  CAPPED (so they are not offered again, and are counted).
- ``take`` leases a window of PENDING rows, shallowest first (breadth-first), optionally
  only of some slots; a lease is not a promise: ``reset_leases`` (run at open) puts the
  rows a killed run had leased back to PENDING.
- ``finish`` sets the final state of taken rows; ``defer`` with a reason; ``hold`` puts a
  host's rows aside until its pause ends (robots.txt unreachable, asked again later), and
  ``release`` takes them up again once it has; ``seen`` records URLs fetched on the way
  (a redirect's target) as done, so no later link fetches them again.

Hosts hash (crc32, as loop routing does) into a fixed number of virtual slots, 4,096 by
default, stored in ``frontier_meta`` when the frontier is made; slots map to loops or
shards (``slot % n``), so a crawl begun with one loop resumes with two without rehashing
a row.

Measured here (``benchmarks/crawl_core.py``; 2 shared cores, rough): 50,000-84,000 link
offers a second, half of them duplicates, in batches of 1,000 in WAL mode with
``synchronous=NORMAL``, hashing included; ~113 bytes on disk per unique URL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from ..._engine.routing import route_index
from ..._errors import UsageError

#: Virtual slots hosts hash into (fixed per frontier).
SLOTS = 4096

# Rows an INSERT takes at most (8 values each, far below SQLite's 32,766 variables). The
# statement's text, and so the program the connection compiles and caches for it (~1 KiB a
# row), depends on its number of rows: with one statement for each batch size, the cache
# of 128 statements grew to ~30 MiB over a crawl of 100,000 pages (its peak RSS +15%). So a
# batch goes in as whole chunks, then the rest in powers of two: 9 statements in all.
_CHUNK = 256


def _pieces(count: int) -> list[int]:
    """Sizes adding up to ``count``: whole chunks, then the rest in powers of two, largest
    first (each size is one statement, compiled once for the run)."""
    sizes = [_CHUNK] * (count // _CHUNK)
    rest = count % _CHUNK
    size = _CHUNK
    while rest:
        size >>= 1
        if rest & size:
            sizes.append(size)
            rest -= size
    return sizes


class State(IntEnum):
    PENDING = 0
    LEASED = 1
    DONE = 2
    FAILED = 3
    DEFERRED = 4
    CAPPED = 5
    DISALLOWED = 6
    HELD = 7


class Kind(IntEnum):
    PAGE = 0
    SITEMAP = 1  # a sitemap to read (given by the user, or listed in a sitemap index)
    ROBOTS_SITEMAP = 2  # a sitemap robots.txt named: it may list other hosts' pages


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS frontier (
        key BLOB PRIMARY KEY, url TEXT NOT NULL, depth INTEGER NOT NULL, referrer BLOB,
        host INTEGER NOT NULL, slot INTEGER NOT NULL, state INTEGER NOT NULL, lastmod TEXT,
        kind INTEGER NOT NULL DEFAULT 0, note TEXT
    ) WITHOUT ROWID""",
    # Shallowest first, and within a depth by key: the keys are hashes, so a window
    # of rows mixes the hosts (by slot, it held one host's rows, and waited on its limit).
    """CREATE INDEX IF NOT EXISTS frontier_pending ON frontier (depth, key)
        WHERE state = 0""",
    "CREATE INDEX IF NOT EXISTS frontier_held ON frontier (host) WHERE state = 7",
    """CREATE TABLE IF NOT EXISTS frontier_hosts (
        id INTEGER PRIMARY KEY, host TEXT NOT NULL UNIQUE, slot INTEGER NOT NULL,
        admitted INTEGER NOT NULL DEFAULT 0, paused_until REAL
    )""",
    """CREATE INDEX IF NOT EXISTS frontier_paused ON frontier_hosts (paused_until)
        WHERE paused_until IS NOT NULL""",
    "CREATE TABLE IF NOT EXISTS frontier_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class Link(NamedTuple):
    """A URL offered to the frontier."""

    key: bytes
    url: str
    depth: int
    host: str
    referrer: bytes | None = None
    lastmod: str | None = None
    kind: int = Kind.PAGE


class Row(NamedTuple):
    """A frontier row: what the crawl fetches next."""

    key: bytes
    url: str
    depth: int
    host: str
    slot: int
    referrer: bytes | None
    lastmod: str | None
    kind: int = Kind.PAGE
    referrer_url: str | None = None  # the URL of ``referrer`` (``take`` looks it up)


class Offered(NamedTuple):
    """What one ``offer`` did: the new PENDING rows, and how many were not new."""

    new: list[Row]
    duplicates: int
    capped: int


@dataclass(frozen=True, slots=True)
class FrontierStatistics:
    """Rows by state, and hosts seen."""

    states: dict[str, int]
    hosts: int


class Frontier:
    """The frontier tables on a connection the caller owns (and commits).

    Args:
        db: an open connection (``isolation_level=None``: the caller begins and commits).
        slots: virtual slots for a new frontier; an existing one keeps its own.
        max_per_host: pages admitted per host at most; None for no cap.
    """

    def __init__(
        self, db: sqlite3.Connection, *, slots: int = SLOTS, max_per_host: int | None = None
    ) -> None:
        if not isinstance(slots, int) or slots < 1:
            raise UsageError(f"Frontier(slots={slots!r}): give a whole number >= 1")
        if max_per_host is not None and (not isinstance(max_per_host, int) or max_per_host < 1):
            raise UsageError(
                f"--max-pages-per-host {max_per_host!r}: give a whole number >= 1, or leave it out"
            )
        self.db = db
        self.max_per_host = max_per_host
        for statement in SCHEMA:
            db.execute(statement)
        stored = db.execute("SELECT value FROM frontier_meta WHERE name = 'slots'").fetchone()
        if stored is None:
            db.execute("INSERT INTO frontier_meta VALUES ('slots', ?)", (str(slots),))
            self.slots = slots
        else:
            self.slots = int(stored[0])
        # host -> [id, admitted]; read lazily, kept in step with what this object writes.
        self._hosts: dict[str, list[int]] = {}
        self._names: dict[int, str] = {}

    # -- writing -----------------------------------------------------------------------

    def offer(self, links: Sequence[Link], state: State = State.PENDING) -> Offered:
        """Insert the links not seen before; the new rows, in offer order. ``state``:
        PENDING (to fetch), or DONE for URLs fetched already (``seen``)."""
        new: list[Row] = []
        start = 0
        for size in _pieces(len(links)):
            new += self._insert(links[start : start + size], state)
            start += size
        duplicates = len(links) - len(new)
        capped = 0
        if self.max_per_host is not None and state == State.PENDING:
            new, capped = self._cap(new)
        return Offered(new, duplicates, capped)

    def seen(self, links: Sequence[Link]) -> int:
        """URLs fetched on the way to a page (where its redirects went): DONE, new or
        still PENDING, so no later link fetches them again. How many were new."""
        offered = self.offer(links, State.DONE)
        fresh = {row.key for row in offered.new}
        waiting = [link.key for link in links if link.key not in fresh]
        if waiting:
            self.db.executemany(
                "UPDATE frontier SET state = 2 WHERE key = ? AND state = 0",
                [(key,) for key in waiting],
            )
        return len(fresh)

    def _insert(self, links: Sequence[Link], state: State) -> list[Row]:
        values: list[object] = []
        info: dict[bytes, tuple[str, int, int]] = {}
        for order, link in enumerate(links):
            host_id, slot = self._host(link.host)
            values += (
                link.key, link.url, link.depth, link.referrer, host_id, slot, link.lastmod,
                link.kind,
            )  # fmt: skip
            info.setdefault(link.key, (link.host, slot, order))
        marks = ",".join([f"(?,?,?,?,?,?,{int(state)},?,?)"] * len(links))
        inserted = self.db.execute(
            f"INSERT INTO frontier (key, url, depth, referrer, host, slot, state, lastmod, kind)"
            f" VALUES {marks} ON CONFLICT DO NOTHING"
            " RETURNING key, url, depth, referrer, lastmod, kind",
            values,
        ).fetchall()
        rows = []
        for key, url, depth, referrer, lastmod, kind in inserted:
            host, slot, order = info[key]
            rows.append((order, Row(key, url, depth, host, slot, referrer, lastmod, kind)))
        rows.sort(key=lambda pair: pair[0])  # RETURNING's order is SQLite's, not ours
        return [row for _, row in rows]

    def _cap(self, rows: list[Row]) -> tuple[list[Row], int]:
        cap = self.max_per_host
        assert cap is not None
        kept: list[Row] = []
        over: list[bytes] = []
        changed: set[str] = set()
        for row in rows:
            entry = self._hosts[row.host]
            if entry[1] >= cap:
                over.append(row.key)
            else:
                entry[1] += 1
                kept.append(row)
                changed.add(row.host)
        for host in changed:
            host_id, admitted = self._hosts[host]
            self.db.execute(
                "UPDATE frontier_hosts SET admitted = ? WHERE id = ?", (admitted, host_id)
            )
        if over:
            self._set_state(over, State.CAPPED)
        return kept, len(over)

    def _host(self, host: str) -> tuple[int, int]:
        entry = self._hosts.get(host)
        if entry is None:
            found = self.db.execute(
                "SELECT id, admitted FROM frontier_hosts WHERE host = ?", (host,)
            ).fetchone()
            if found is None:
                found = self.db.execute(
                    "INSERT INTO frontier_hosts (host, slot) VALUES (?, ?) RETURNING id, admitted",
                    (host, route_index(host, self.slots)),
                ).fetchone()
            entry = self._hosts[host] = [found[0], found[1]]
            self._names[found[0]] = host
        return entry[0], route_index(host, self.slots)

    def take(
        self, limit: int, slots: Collection[int] | None = None, *, pages: int | None = None
    ) -> list[Row]:
        """Lease up to ``limit`` PENDING rows, shallowest first; only of ``slots`` if given;
        at most ``pages`` of them pages (sitemaps are not counted)."""
        query = (
            "SELECT f.key, f.url, f.depth, f.host, f.slot, f.referrer, f.lastmod, f.kind,"
            " r.url FROM frontier f LEFT JOIN frontier r ON r.key = f.referrer"
            " WHERE f.state = 0"
        )
        parameters: list[object] = []
        if slots is not None:
            if not slots:
                return []
            query += f" AND f.slot IN ({','.join('?' * len(slots))})"
            parameters += sorted(slots)
        if pages is not None and pages <= 0:
            query += " AND f.kind != 0"
        query += " ORDER BY f.depth LIMIT ?"
        found = self.db.execute(query, [*parameters, limit]).fetchall()
        rows = [
            Row(key, url, depth, self._host_name(host), slot, referrer, lastmod, kind, via)
            for key, url, depth, host, slot, referrer, lastmod, kind, via in found
        ]
        if pages is not None:
            kept = []
            for row in rows:
                if row.kind == Kind.PAGE:
                    if pages <= 0:
                        continue
                    pages -= 1
                kept.append(row)
            rows = kept
        if rows:
            self._set_state([row.key for row in rows], State.LEASED)
        return rows

    def finish(self, keys: Iterable[bytes], state: State = State.DONE) -> None:
        """Set the state of taken rows: DONE, FAILED, DEFERRED, DISALLOWED (or PENDING to
        give them back)."""
        self._set_state(list(keys), state)

    def defer(self, keys: Iterable[bytes], reason: str) -> None:
        """Leave taken rows for a later run, saying why (``note``)."""
        self.db.executemany(
            f"UPDATE frontier SET state = {int(State.DEFERRED)}, note = ? WHERE key = ?",
            [(reason, key) for key in keys],
        )

    def hold(self, keys: Iterable[bytes], host: str, until: float) -> None:
        """Put taken rows aside while their host is paused (until ``until``, epoch
        seconds); rows of the host offered meanwhile are put aside when taken."""
        host_id, _ = self._host(host)
        self.db.execute(
            "UPDATE frontier_hosts SET paused_until = max(coalesce(paused_until, 0), ?)"
            " WHERE id = ?",
            (until, host_id),
        )
        self._set_state(list(keys), State.HELD)

    def release(self, now: float) -> float | None:
        """Take up again the rows of hosts whose pause has ended; the seconds until the
        next pause ends, or None when no row is held."""
        ended = self.db.execute(
            "SELECT id FROM frontier_hosts WHERE paused_until IS NOT NULL AND paused_until <= ?",
            (now,),
        ).fetchall()
        for (host_id,) in ended:
            self.db.execute(
                f"UPDATE frontier SET state = 0 WHERE host = ? AND state = {int(State.HELD)}",
                (host_id,),
            )
            self.db.execute(
                "UPDATE frontier_hosts SET paused_until = NULL WHERE id = ?", (host_id,)
            )
        (until,) = self.db.execute(
            "SELECT min(h.paused_until) FROM frontier_hosts h WHERE h.paused_until IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM frontier f WHERE f.host = h.id AND f.state = 7)"  # HELD
        ).fetchone()
        return None if until is None else max(0.0, float(until) - now)

    def paused_until(self, host: str) -> float | None:
        """When the host's pause ends (epoch seconds), or None when it is not paused."""
        found = self.db.execute(
            "SELECT paused_until FROM frontier_hosts WHERE host = ?", (host,)
        ).fetchone()
        return None if found is None or found[0] is None else float(found[0])

    def reset_leases(self) -> int:
        """Give back the rows a previous run leased and did not finish; how many."""
        return self.db.execute("UPDATE frontier SET state = 0 WHERE state = 1").rowcount

    def reopen(self, *, retry_failed: bool = False) -> dict[str, int]:
        """At the start of a run: leased, held and deferred rows back to PENDING (and, with
        ``retry_failed``, the failed ones); how many of each."""
        counts = {"leased": self.reset_leases()}
        reopened = [State.HELD, State.DEFERRED] + ([State.FAILED] if retry_failed else [])
        for state in reopened:
            counts[state.name.lower()] = self.db.execute(
                f"UPDATE frontier SET state = 0, note = NULL WHERE state = {int(state)}"
            ).rowcount
        self.db.execute("UPDATE frontier_hosts SET paused_until = NULL")
        return counts

    def fetched(self) -> int:
        """Pages fetched (done or failed), for ``--max-pages``."""
        (count,) = self.db.execute(
            "SELECT count(*) FROM frontier WHERE state IN (2, 3) AND kind = 0"
        ).fetchone()
        return int(count)

    def listed(self, links: Sequence[Link]) -> None:
        """Mark pages a sitemap listed that were known already (``lastmod`` not NULL: ''
        when the sitemap gave none), so the sitemap's reach is counted."""
        self.db.executemany(
            "UPDATE frontier SET lastmod = ? WHERE key = ? AND lastmod IS NULL",
            [(link.lastmod or "", link.key) for link in links],
        )

    def sitemap_reach(self) -> tuple[int, int]:
        """``(listed, fetched)``: pages sitemaps listed, and how many of them are done."""
        listed, done = self.db.execute(
            "SELECT count(*), coalesce(sum(state = 2), 0) FROM frontier"
            " WHERE lastmod IS NOT NULL AND kind = 0"
        ).fetchone()
        return int(listed), int(done)

    def _set_state(self, keys: list[bytes], state: State) -> None:
        self.db.executemany(
            "UPDATE frontier SET state = ? WHERE key = ?", [(int(state), key) for key in keys]
        )

    # -- reading -----------------------------------------------------------------------

    def _host_name(self, host_id: int) -> str:
        name = self._names.get(host_id)
        if name is None:
            found = self.db.execute(
                "SELECT host, admitted FROM frontier_hosts WHERE id = ?", (host_id,)
            ).fetchone()
            name = self._names[host_id] = found[0]
            self._hosts.setdefault(name, [host_id, found[1]])
        return name

    def url_of(self, key: bytes) -> str | None:
        """The URL of a key (a referrer's), or None when unknown."""
        found = self.db.execute("SELECT url FROM frontier WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def slot_of(self, host: str) -> int:
        """The virtual slot of a host (``host_key``); ``slot % loops`` is its loop."""
        return route_index(host, self.slots)

    def pending(self) -> int:
        """PENDING and LEASED rows: the crawl is over when this is 0."""
        found = self.db.execute("SELECT count(*) FROM frontier WHERE state <= 1").fetchone()
        return int(found[0])

    def statistics(self) -> FrontierStatistics:
        states = {state.name.lower(): 0 for state in State}
        for state, count in self.db.execute("SELECT state, count(*) FROM frontier GROUP BY state"):
            states[State(state).name.lower()] = count
        (hosts,) = self.db.execute("SELECT count(*) FROM frontier_hosts").fetchone()
        return FrontierStatistics(states, hosts)
