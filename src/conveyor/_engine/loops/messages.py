"""What the parent and a loop process say to each other over their socket pair.

Every message is one pickled object behind a 4-byte length. In order:

    parent -> loop   Init(head, workers, capacity, seats) first, once
    loop -> parent   ("ready", None) | ("init-error", text)
    parent -> loop   [(id, value), ...]                  a batch: one turn of the parent
    loop -> parent   [(id, OK, result, retries)           a batch: one turn of the loop
                      | (id, FAILED, RemoteFailure, 0), ...]
    loop -> parent   ("report", StageReport)             a few times a second, and last
    loop -> parent   ("notice", notice)                  what its service tells its peers
    loop -> parent   ("parked", n)                       items waiting on their hosts there
    parent -> loop   ("notice", notice)                  ... relayed to every other loop
    parent -> loop   None                                no more: finish and exit

``retries`` are the first stage's service's own (``Service.attempts`` - 1); a failure is
described in the loop process (``outcomes.RemoteFailure``), its traceback included.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any, NamedTuple

OK, FAILED = 0, 1
HEADER = struct.Struct("!I")


class Init(NamedTuple):
    """A loop process's first message: its head, its worker tasks, its queue's room, its
    waiting room's seats."""

    head: bytes  # the pickled stage specs
    workers: int
    capacity: int  # items the parent may have out at once, in all loops: the queue's bound
    seats: int  # the waiting room's seats before any item parks (``fold.loop_seats``)


async def read_message(reader: asyncio.StreamReader) -> Any:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return pickle.loads(await reader.readexactly(size))


def frame(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload
