"""``Csv``: one row a record under a header written once; the position is a byte offset."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from ..._errors import SinkError, UsageError
from .._files import AppendFile, sink_error
from ..records import FAILURE_FIELDS, dumps
from ._base import Failures, FileSink, position_field


def _cell(value: Any) -> Any:
    # Nested values are written as JSON, so a CSV cell still holds all of them.
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return dumps(value).decode()


class Csv(FileSink):
    """Write each result as one CSV row (UTF-8, ``\\n`` line ends).

    The header is written once, at the top: ``fields`` when given, else the fields of the
    first batch of records in first-seen order (plus the failure fields when failures go
    inline, so a failure later on always has its columns). A record with a field the header
    lacks is an error that names it; missing fields are empty cells. Nested values (dicts,
    lists) are written as JSON.

    Args:
        path: the output file. Without a journal (or with ``restart``) it is overwritten.
        fields: the columns, in order.
        failures: ``"inline"``, a path for a separate JSON-lines file, or None.
        delimiter: the field separator.
    """

    kind: ClassVar[str] = "csv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fields: Sequence[str] | None = None,
        failures: Failures = "inline",
        delimiter: str = ",",
    ) -> None:
        super().__init__(path, failures=failures)
        if isinstance(fields, str):
            raise UsageError(
                f"Csv(fields={fields!r}): give a list of names, e.g. ['url', 'status']"
            )
        self.fields = list(fields) if fields is not None else None
        self.delimiter = delimiter
        self._header: list[str] | None = None
        self._index: dict[str, int] = {}
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, delimiter=delimiter, lineterminator="\n")
        self._file: AppendFile | None = None

    def _options(self) -> dict[str, Any]:
        return {"fields": self.fields, "delimiter": self.delimiter}

    def _open(self, position: Any) -> None:
        offset = None if position is None else position_field(position, "bytes", self.kind)
        self._header = None
        if offset:
            self._header = self._read_header()
            self._index = {name: i for i, name in enumerate(self._header)}
        self._file = AppendFile(self.path)
        self._file.open(offset)

    def _read_header(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8", newline="") as existing:
                header = next(csv.reader(existing, delimiter=self.delimiter), None)
        except FileNotFoundError:
            return []  # AppendFile.open says the file is missing, with the fix
        except OSError as exc:
            raise sink_error("read", self.path, exc) from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SinkError(f"cannot resume {self.path}: its header is unreadable ({exc})") from exc
        if not header:
            raise SinkError(
                f"cannot resume {self.path}: it has no header row; pass restart=True "
                "(--restart) to begin again"
            )
        return header

    def _start(self, records: list[dict[str, Any]]) -> None:
        if self.fields is not None:
            header = list(self.fields)
        else:
            seen: dict[str, None] = {}
            for record in records:
                seen.update(dict.fromkeys(record))
            if self._failures == "inline":
                seen.update(dict.fromkeys(FAILURE_FIELDS))
            header = [str(name) for name in seen]
        self._header = header
        self._index = {name: i for i, name in enumerate(header)}
        self._writer.writerow(header)

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if not self._header:
            self._start(records)
        index, width, row_of = self._index, len(self._index), []
        for record in records:
            row: list[Any] = [None] * width
            for name, value in record.items():
                at = index.get(name)
                if at is None:
                    raise self._unknown(record)
                row[at] = _cell(value)
            row_of.append(row)
        self._writer.writerows(row_of)
        assert self._file is not None
        self._file.append(self._text.getvalue().encode())
        self._text.seek(0)
        self._text.truncate()

    def _unknown(self, record: dict[str, Any]) -> UsageError:
        extra = [name for name in record if name not in self._index]
        return UsageError(
            f"a record has field(s) {extra} that the CSV header of {self.path} lacks "
            f"({self._header}); list every column with Csv(path, fields=[...]), or write "
            "JSON lines"
        )

    def _flush_output(self) -> dict[str, int]:
        assert self._file is not None
        return {"bytes": self._file.flush()}

    def _close_output(self) -> None:
        if self._file is not None:
            self._file.close()
