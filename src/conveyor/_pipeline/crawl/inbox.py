"""Links between crawl shards on Ray (filled in with the Ray step)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..._crawl.scope import Scope
from ..._io.journal.frontier import Frontier, Link
from .plan import Owner


class Outbox:
    def __init__(self, owner: Owner, scope: Scope) -> None:
        self.owner = owner
        self.scope = scope

    def read_in(self, db: sqlite3.Connection, frontier: Frontier) -> int:
        return 0

    def keep_own(self, links: list[Link]) -> list[Link]:
        return links

    def flush(self) -> int:
        return 0

    def _unused(self) -> Any:
        return None
