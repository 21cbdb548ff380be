"""A crawl shard's side of the links between shards (``_shards/inbox.py`` has the files).

``Outbox`` sits in the frontier's hook, on the writer's thread:

- ``keep_own(links)``: the links to units this shard owns go on to its frontier; the
  others wait, per owner, for the commit;
- ``flush()`` (in the commit, before the transaction commits): each owner's links as one
  segment in its inbox;
- ``read_in(db, frontier)`` (at the start, and when the frontier runs dry): every segment
  of this shard's inbox not read yet is offered to the frontier and recorded as read, in
  the one open transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..._crawl.scope import Scope
from ..._engine.routing import route_index
from ..._io.journal.frontier import Frontier, Link
from ..._shards.inbox import (
    IMPORTED,
    encode_link,
    inbox_dir,
    read_segment,
    segments,
    write_segment,
)
from .plan import Owner

# A dry frontier looks into the inbox at most this often (a folder listing each time).
LOOK_EVERY = 0.5


class Outbox:
    """Links between shards, for one shard (see the module)."""

    def __init__(self, owner: Owner, scope: Scope) -> None:
        self.owner = owner
        self.scope = scope
        self._waiting: dict[int, list[bytes]] = {}
        self._inbox = inbox_dir(owner.outbox, owner.index)
        self._looked = 0.0

    def keep_own(self, links: list[Link]) -> list[Link]:
        owner = self.owner
        own = []
        for link in links:
            shard = route_index(self.scope.unit(link.url), owner.shards)
            if shard == owner.index:
                own.append(link)
            else:
                line = encode_link(link.key, link.url, link.depth, link.host)
                self._waiting.setdefault(shard, []).append(line)
        return own

    def flush(self) -> int:
        """Write the waiting links to their owners' inboxes; how many."""
        sent = 0
        for shard, lines in self._waiting.items():
            write_segment(inbox_dir(self.owner.outbox, shard), self.owner.index, lines)
            sent += len(lines)
        self._waiting = {}
        return sent

    def read_in(
        self, db: sqlite3.Connection, frontier: Frontier, *, now: float | None = None
    ) -> int:
        """Import the segments not read yet; how many links they held. ``now``: at most
        once every ``LOOK_EVERY`` seconds (a dry frontier asks often)."""
        if now is not None:
            if now - self._looked < LOOK_EVERY:
                return 0
            self._looked = now
        db.execute(IMPORTED)
        names = segments(self._inbox)
        if not names:
            return 0
        read = {name for (name,) in db.execute("SELECT name FROM crawl_imported")}
        count = 0
        for name in names:
            if name in read:
                continue
            links = [
                Link(bytes.fromhex(str(key)), str(url), int(depth), str(host))  # type: ignore[call-overload]
                for key, url, depth, host in read_segment(Path(self._inbox, name))
            ]
            frontier.offer(links)
            db.execute("INSERT INTO crawl_imported (name) VALUES (?)", (name,))
            count += len(links)
        return count
