"""Sources: lazy, streaming readers of input files, one item at a time.

Each source is an *iterable*, not an iterator: every ``iter()`` opens the file afresh, so
the CLI can peek at it and the run can still read it from the start. ``count()`` gives a
cheap total for progress (or None when only reading it all would tell), and ``describe()``
a stable description for the journal's fingerprint.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from .._errors import UsageError
from ._arrow import pyarrow_dataset

_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
# Lines that read_lines skips: blank, or a comment (the newline is part of the match).
_SKIPPED_LINE = re.compile(rb"^[ \t\r\f\v]*(?:#[^\n]*)?\n", re.MULTILINE)
_BLANK_LINE = re.compile(rb"^[ \t\r\f\v]*\n", re.MULTILINE)
# A CSV with quotes may hold newlines inside a field; count such a file row by row only
# when it is this small.
_CSV_PARSE_LIMIT = 32 << 20


def _is_gzip(path: str) -> bool:
    return path.lower().endswith(".gz")


def _unreadable(path: str, exc: Exception) -> UsageError:
    if isinstance(exc, UnicodeDecodeError):
        return UsageError(f"{path} is not UTF-8 text ({exc.reason}); convert it to UTF-8")
    if isinstance(exc, OSError) and exc.strerror:
        return UsageError(f"cannot read {path}: {exc.strerror}")
    return UsageError(f"cannot read {path}: {exc}")


class _FileSource:
    """What the file sources share: the path, validation, describe(), text opening."""

    kind = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise UsageError(f"{type(self).__name__}({path!r}): give a file path, or '-' for stdin")
        self.path = os.fspath(path)
        if self.path != "-":
            target = Path(self.path)
            if not target.exists():
                raise UsageError(f"input {self.path} does not exist")
            if target.is_dir() and not self._folders_allowed():
                raise UsageError(f"input {self.path} is a folder; give a file")

    def _folders_allowed(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        """Which file (and how it looked), for a journal's fingerprint."""
        if self.path == "-":
            return {"source": self.kind, "path": "-", **self._options()}
        stat = os.stat(self.path)
        return {
            "source": self.kind,
            "path": os.path.abspath(self.path),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            **self._options(),
        }

    def _options(self) -> dict[str, Any]:
        return {}

    def _countable(self) -> bool:
        return self.path != "-" and not _is_gzip(self.path)

    @contextlib.contextmanager
    def _text(self) -> Iterator[IO[str]]:
        """The input as text: UTF-8 (a BOM is dropped), split on ``\\n`` only."""
        if self.path == "-":
            stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="\n")
            try:
                yield stdin
            finally:
                stdin.detach()  # stdin stays open for whoever reads it next
            return
        try:
            if _is_gzip(self.path):
                file: IO[str] = gzip.open(self.path, "rt", encoding="utf-8-sig", newline="\n")
            else:
                file = open(self.path, encoding="utf-8-sig", newline="\n")
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc
        with file:
            yield file

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


def _count_lines(path: str, skipped: re.Pattern[bytes], comments: bool) -> int:
    """Lines that are not matched by ``skipped``, counted in binary chunks (C speed)."""
    total, tail, first = 0, b"", True
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            if first:
                chunk, first = chunk.removeprefix(_BOM), False
            chunk = tail + chunk
            cut = chunk.rfind(b"\n") + 1
            body, tail = chunk[:cut], chunk[cut:]
            total += body.count(b"\n") - len(skipped.findall(body))
    last = tail.strip()
    if last and not (comments and last.startswith(b"#")):
        total += 1
    return total


class LineSource(_FileSource):
    """Items from a text file, one a line: see :func:`read_lines`."""

    kind = "lines"

    def __iter__(self) -> Iterator[str]:
        with self._text() as text:
            try:
                for line in text:
                    item = line.strip()
                    if item and not item.startswith("#"):
                        yield item
            except (OSError, UnicodeDecodeError, EOFError) as exc:
                raise _unreadable(self.path, exc) from exc

    def count(self) -> int | None:
        """The number of items, from a fast binary scan; None for stdin and ``.gz``."""
        if not self._countable():
            return None
        return _count_lines(self.path, _SKIPPED_LINE, comments=True)


def read_lines(path: str | os.PathLike[str]) -> LineSource:
    """Read items from a text file, one a line (UTF-8).

    Blank lines and lines starting with ``#`` are skipped, and each line is stripped of
    surrounding whitespace. A ``.gz`` file is decompressed as it is read; ``"-"`` reads
    standard input.
    """
    return LineSource(path)


class CsvSource(_FileSource):
    """Items from a CSV file: see :func:`read_csv`."""

    kind = "csv"

    def __init__(self, path: str | os.PathLike[str], *, column: str | None, delimiter: str) -> None:
        super().__init__(path)
        self.column = column
        self.delimiter = delimiter
        if column is not None and self.path != "-":
            self._column_index(self._header())

    def _options(self) -> dict[str, Any]:
        return {"column": self.column, "delimiter": self.delimiter}

    def _header(self) -> list[str]:
        with self._text() as text:
            try:
                header = next(csv.reader(text, delimiter=self.delimiter), None)
            except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
                raise _unreadable(self.path, exc) from exc
        if not header:
            raise UsageError(f"{self.path} is empty; a CSV input needs a header row")
        return header

    def _column_index(self, header: list[str]) -> int:
        try:
            return header.index(self.column or "")
        except ValueError:
            raise UsageError(
                f"{self.path} has no column {self.column!r}; its columns are {header}: "
                "pick one with column= (--column)"
            ) from None

    def __iter__(self) -> Iterator[Any]:
        with self._text() as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            try:
                header = next(reader, None)
                if not header:
                    return
                if self.column is None:
                    for row in reader:
                        if row:
                            yield dict(zip(header, row, strict=False))
                    return
                index = self._column_index(header)
                for row in reader:
                    if not row:
                        continue
                    if index >= len(row):
                        raise UsageError(
                            f"{self.path} line {reader.line_num} has {len(row)} fields and no "
                            f"{self.column!r}; fix that row"
                        )
                    yield row[index]
            except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
                raise _unreadable(self.path, exc) from exc

    def count(self) -> int | None:
        """Data rows (not the header); None for stdin, ``.gz`` and big quoted files."""
        if not self._countable():
            return None
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as file:
            quoted = any(b'"' in chunk for chunk in iter(lambda: file.read(_CHUNK), b""))
        if not quoted:
            rows = _count_lines(self.path, _BLANK_LINE, comments=False)
        elif size <= _CSV_PARSE_LIMIT:
            with self._text() as text:
                rows = sum(1 for row in csv.reader(text, delimiter=self.delimiter) if row)
        else:
            return None
        return max(rows - 1, 0)


def read_csv(
    path: str | os.PathLike[str], *, column: str | None = "url", delimiter: str = ","
) -> CsvSource:
    """Read items from a CSV file with a header row (UTF-8; ``.gz`` and ``"-"`` work too).

    Args:
        column: the column whose values are the items; None gives each row as a dict.
        delimiter: the field separator.
    """
    return CsvSource(path, column=column, delimiter=delimiter)


class JsonLinesSource(_FileSource):
    """Items from a JSON-lines file: see :func:`read_jsonl`."""

    kind = "jsonl"

    def __init__(self, path: str | os.PathLike[str], *, field: str | None) -> None:
        super().__init__(path)
        self.field = field

    def _options(self) -> dict[str, Any]:
        return {"field": self.field}

    def __iter__(self) -> Iterator[Any]:
        field = self.field
        with self._text() as text:
            try:
                for number, line in enumerate(text, 1):
                    if not line.strip():
                        continue
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise UsageError(
                            f"{self.path} line {number} is not JSON ({exc}); fix that line"
                        ) from None
                    if field is None:
                        yield record
                    elif isinstance(record, dict) and field in record:
                        yield record[field]
                    else:
                        raise UsageError(
                            f"{self.path} line {number} has no field {field!r}; pick the "
                            "field with field= (--column), or field=None for whole records"
                        )
            except (OSError, UnicodeDecodeError, EOFError) as exc:
                raise _unreadable(self.path, exc) from exc

    def count(self) -> int | None:
        """Non-blank lines; None for stdin and ``.gz``."""
        if not self._countable():
            return None
        return _count_lines(self.path, _BLANK_LINE, comments=False)


def read_jsonl(path: str | os.PathLike[str], *, field: str | None = "url") -> JsonLinesSource:
    """Read items from a JSON-lines file: one JSON value a line, blank lines skipped.

    Args:
        field: the field of each object that is the item; None gives the whole record.
    """
    return JsonLinesSource(path, field=field)


class ParquetSource(_FileSource):
    """Items from a Parquet file or folder: see :func:`read_parquet`."""

    kind = "parquet"

    def __init__(
        self, path: str | os.PathLike[str], *, column: str | None, batch_size: int
    ) -> None:
        super().__init__(path)
        if self.path == "-":
            raise UsageError("read_parquet('-'): Parquet cannot be read from stdin; give a path")
        self.column = column
        self.batch_size = batch_size
        names = self._dataset().schema.names
        if column is not None and column not in names:
            raise UsageError(
                f"{self.path} has no column {column!r}; its columns are {names}: pick one "
                "with column= (--column)"
            )

    def _folders_allowed(self) -> bool:
        return True

    def _options(self) -> dict[str, Any]:
        return {"column": self.column}

    def _dataset(self) -> Any:
        ds = pyarrow_dataset()
        try:
            return ds.dataset(self.path, format="parquet")
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {self.path} as Parquet: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        if Path(self.path).is_file():
            return super().describe()
        files = sorted(self._dataset().files)
        stats = [os.stat(name) for name in files]
        return {
            "source": self.kind,
            "path": os.path.abspath(self.path),
            "files": len(files),
            "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
            **self._options(),
        }

    def __iter__(self) -> Iterator[Any]:
        columns = None if self.column is None else [self.column]
        batches = self._dataset().to_batches(columns=columns, batch_size=self.batch_size)
        for batch in batches:
            if self.column is None:
                yield from batch.to_pylist()
            else:
                yield from batch.column(0).to_pylist()

    def count(self) -> int:
        """Rows, from the Parquet metadata (no data is read)."""
        rows: int = self._dataset().count_rows()
        return rows


def read_parquet(
    path: str | os.PathLike[str], *, column: str | None = "url", batch_size: int = 10_000
) -> ParquetSource:
    """Read items from a Parquet file, or a folder of them (needs ``conveyor[parquet]``).

    Args:
        column: the column whose values are the items; None gives each row as a dict.
        batch_size: rows read at a time (memory stays at about one batch).
    """
    return ParquetSource(path, column=column, batch_size=batch_size)
