"""The envelope an item travels in between stages, and the end-of-stream marker."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final


class Envelope:
    """One item in flight.

    ``root`` is the input position of the item it came from (its sequence number in this
    run), ``pos`` orders the children of a ``flat_map`` within their root, and ``members``
    lists every root a ``batch`` envelope carries (``None`` means just ``root``).
    ``extra`` is what a service's ``Carry`` brought for the ledger, if anything.
    """

    __slots__ = ("extra", "key", "members", "pos", "root", "value")

    def __init__(
        self,
        root: int,
        key: Hashable,
        value: Any,
        pos: tuple[int, ...] = (),
        members: tuple[int, ...] | None = None,
    ) -> None:
        self.root = root
        self.key = key
        self.value = value
        self.pos = pos
        self.members = members
        self.extra: Any = None

    def roots(self) -> tuple[int, ...]:
        return self.members if self.members is not None else (self.root,)


class _End:
    def __repr__(self) -> str:
        return "END"


END: Final = _End()
