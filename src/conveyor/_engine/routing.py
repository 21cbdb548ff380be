"""The one routing rule: which of ``n`` owners owns a route key (a host:port).

Loop processes (``loops/``), Ray's shards (``_shards``) and the crawl frontier's slots
(``_io/journal/frontier.py``) all route by it, so one host has one owner in each. Pure,
and stable across runs and processes (not ``hash()``, which is salted per process).
"""

from __future__ import annotations

import zlib


def route_index(key: str, owners: int) -> int:
    """The owner of ``key`` among ``owners``."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % owners
