"""``JsonLines``: one JSON object a line (orjson); the position is a byte offset."""

from __future__ import annotations

from typing import Any, ClassVar

from .._files import AppendFile
from ..records import dumps_lines
from ._base import FileSink, position_field


class JsonLines(FileSink):
    """Write each result as one JSON object a line.

    Records come from ``conveyor``'s record protocol (``__conveyor_record__``, dataclasses,
    mappings, else ``{"value": ...}``). Values JSON cannot hold are written as text.

    Args:
        path: the output file. Without a journal (or with ``restart``) it is overwritten.
        failures: ``"inline"`` (default): failure records (``key``, ``stage``,
            ``error_kind``, ``error``, ``error_type``, ``attempts``) go to the same file;
            a path: they go to that JSON-lines file instead; None: not written.
    """

    kind: ClassVar[str] = "jsonl"

    _file: AppendFile

    def _open(self, position: Any) -> None:
        offset = None if position is None else position_field(position, "bytes", self.kind)
        self._file = AppendFile(self.path)
        self._file.open(offset)

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        self._file.append(dumps_lines(records))

    def _flush_output(self) -> dict[str, int]:
        return {"bytes": self._file.flush()}

    def _close_output(self) -> None:
        self._file.close()
