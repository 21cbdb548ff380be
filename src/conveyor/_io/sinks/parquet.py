"""``Parquet``: a folder of part files, one per flush; the position is the number of parts.

A Parquet file can be read only once its footer is written, so a single growing file has
no durable prefix to cut back to. Instead each ``flush()`` closes the part being written:
it is written as a hidden ``.part-NNNNN.parquet.inprogress`` file, fsynced, then renamed to
``part-NNNNN.parquet`` and the folder fsynced. The folder therefore only ever shows
complete parts, ``pyarrow.dataset.dataset(path)`` reads it (hidden files are skipped), and
resuming deletes the parts at or past the journal's count.

Records may gain fields or fill a column that was all-null so far. The part files must
then share one schema (``pyarrow.dataset`` takes its schema from one file), so the earlier
parts are rewritten to the wider schema, one row group at a time, each by an atomic
rename: slow only when the schema grows, which happens a bounded number of times.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from ..._errors import SinkError, UsageError
from .._arrow import pyarrow_modules
from .._files import fsync_dir, fsync_file, sink_error
from ._base import Failures, FileSink, position_field

_PART = re.compile(r"part-(\d{5,})\.parquet")
_TEMP_PREFIX = ".part-"


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class Parquet(FileSink):
    """Write results as Parquet: a folder ``path`` of ``part-NNNNN.parquet`` files.

    Read it back with ``pyarrow.dataset.dataset(path)`` (or ``pandas.read_parquet(path)``,
    ``duckdb``, ``polars.scan_parquet(f"{path}/*.parquet")``). Each flush (each journal
    commit) closes one part; rows are buffered at most ``row_group_size`` at a time.

    Args:
        path: the output folder. Without a journal (or with ``restart``) the parts in it
            are deleted first; a folder holding other files is refused.
        failures: ``"inline"``, a path for a separate JSON-lines file, or None.
        schema: a ``pyarrow.Schema`` to write; by default it is inferred from the records
            and widened as new fields appear (earlier parts are rewritten to match).
        row_group_size: the most rows buffered before they are written as a row group.
        compression: the Parquet codec (``"snappy"``, ``"zstd"``, ``"none"`` ...).
    """

    kind: ClassVar[str] = "parquet"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        failures: Failures = "inline",
        schema: Any = None,
        row_group_size: int = 10_000,
        compression: str = "snappy",
    ) -> None:
        super().__init__(path, failures=failures)
        if not isinstance(row_group_size, int) or row_group_size < 1:
            raise UsageError(f"Parquet(row_group_size={row_group_size!r}): give a positive int")
        self.row_group_size = row_group_size
        self.compression = compression
        self.schema = schema
        self._fixed = schema is not None
        self._parts = 0
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None
        self._broken = False

    def _options(self) -> dict[str, Any]:
        schema = None if self.schema is None else str(self.schema)
        return {"schema": schema, "compression": self.compression}

    # -- opening ---------------------------------------------------------------------------

    def _open(self, position: Any) -> None:
        parts = None if position is None else position_field(position, "parts", self.kind)
        pa, _ = pyarrow_modules()
        if self._fixed and not isinstance(self.schema, pa.Schema):
            raise UsageError(f"Parquet(schema={self.schema!r}): give a pyarrow.Schema")
        self._rows, self._writer, self._broken = [], None, False
        try:
            self._prepare_folder(parts)
        except OSError as exc:
            if isinstance(exc, SinkError):
                raise
            raise sink_error("open", self.path, exc) from exc

    def _prepare_folder(self, parts: int | None) -> None:
        folder = self.path
        if folder.is_file() or folder.is_symlink():
            if parts:
                raise SinkError(
                    f"{folder} is a file, but the journal says part files were written in a "
                    "folder there: pass restart=True (--restart) to begin again"
                )
            folder.unlink()  # a fresh output replaces a file, as the other sinks do
        folder.mkdir(exist_ok=True)
        found: dict[int, Path] = {}
        for entry in folder.iterdir():
            match = _PART.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = entry
            elif entry.name.startswith(_TEMP_PREFIX):
                entry.unlink()  # a part cut short by a crash, or an unfinished rewrite
            elif not entry.name.startswith((".", "_")):
                raise UsageError(
                    f"{folder} holds {entry.name}, which conveyor did not write; write the "
                    "Parquet output to a new or empty folder"
                )
        keep = parts or 0
        missing = [i for i in range(keep) if i not in found]
        if missing:
            raise SinkError(
                f"{folder} lacks {_part_name(missing[0])}, which the journal says was "
                "written: pass restart=True (--restart) to begin again"
            )
        for index, entry in found.items():
            if index >= keep:
                entry.unlink()
        fsync_dir(folder)
        self._parts = keep
        if not self._fixed:
            self.schema = None
            if keep:
                self._adopt_schema_of_parts()

    def _adopt_schema_of_parts(self) -> None:
        pa, pq = pyarrow_modules()
        schemas = [pq.read_schema(self._final(i)) for i in range(self._parts)]
        widest = pa.unify_schemas(schemas, promote_options="permissive")
        self.schema = widest
        for i, schema in enumerate(schemas):
            if not schema.equals(widest):  # a crash cut a rewrite short: finish it
                self._rewrite(i, widest)

    # -- writing ---------------------------------------------------------------------------

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        if self._broken:
            raise SinkError(f"{self.path}: an earlier write failed; nothing more is written")
        self._rows.extend(records)
        if len(self._rows) >= self.row_group_size:
            self._write_group()

    def _write_group(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        table = self._to_table(rows)
        try:
            if self._writer is None:
                _, pq = pyarrow_modules()
                self._writer = pq.ParquetWriter(
                    self._temp(self._parts), table.schema, compression=self.compression
                )
            self._writer.write_table(table)
        except OSError as exc:
            self._broken = True
            raise sink_error("write", self.path, exc) from exc

    def _to_table(self, rows: list[dict[str, Any]]) -> Any:
        pa, _ = pyarrow_modules()
        if self._fixed:
            extra = {name for row in rows for name in row} - set(self.schema.names)
            if extra:
                raise UsageError(
                    f"records have field(s) {sorted(extra)} that Parquet(schema=...) lacks; "
                    "add them to the schema"
                )
            try:
                return pa.Table.from_pylist(rows, schema=self.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(f"records do not fit Parquet(schema=...): {exc}") from exc
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        arrays = []
        for name in names:
            try:
                arrays.append(pa.array([row.get(name) for row in rows]))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(
                    f"field {name!r} holds values of mixed types ({exc}); make them one "
                    "type, or give Parquet(path, schema=pyarrow.schema([...]))"
                ) from exc
        table = pa.Table.from_arrays(arrays, names=[str(name) for name in names])
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema):
            try:
                wider = pa.unify_schemas([self.schema, table.schema], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(
                    f"records changed type between batches ({exc}); make each field one "
                    "type, or give Parquet(path, schema=pyarrow.schema([...]))"
                ) from exc
            if not wider.equals(self.schema):
                self._widen(wider)
        return _conform(pa, table, self.schema)

    def _widen(self, wider: Any) -> None:
        """Close the part being written and rewrite every part to the ``wider`` schema."""
        if self._writer is not None:
            self._close_part()
        self.schema = wider
        try:
            for index in range(self._parts):
                self._rewrite(index, wider)
        except OSError as exc:
            self._broken = True
            raise sink_error("write", self.path, exc) from exc

    def _rewrite(self, index: int, schema: Any) -> None:
        pa, pq = pyarrow_modules()
        final, temp = self._final(index), self.path / f"{_TEMP_PREFIX}{index:05d}.rewrite"
        source = pq.ParquetFile(final)
        try:
            with pq.ParquetWriter(temp, schema, compression=self.compression) as writer:
                for group in range(source.num_row_groups):
                    table = source.read_row_group(group)
                    writer.write_table(_conform(pa, table, schema))
        finally:
            source.close()
        fsync_file(temp)
        os.replace(temp, final)
        fsync_dir(self.path)

    # -- flushing and closing --------------------------------------------------------------

    def _close_part(self) -> None:
        writer, self._writer = self._writer, None
        temp = self._temp(self._parts)
        try:
            writer.close()
            fsync_file(temp)
            os.replace(temp, self._final(self._parts))
            fsync_dir(self.path)
        except OSError as exc:
            self._broken = True
            raise sink_error("write", self.path, exc) from exc
        self._parts += 1

    def _flush_output(self) -> dict[str, int]:
        if self._broken:
            raise SinkError(f"{self.path}: an earlier write failed; nothing more is written")
        self._write_group()
        if self._writer is not None:
            self._close_part()
        return {"parts": self._parts}

    def _close_output(self) -> None:
        if not self._broken:
            self._flush_output()
            return
        writer, self._writer = self._writer, None
        self._rows = []
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass  # the write that broke it was reported; this part is dropped anyway
            self._temp(self._parts).unlink(missing_ok=True)

    def _final(self, index: int) -> Path:
        return self.path / _part_name(index)

    def _temp(self, index: int) -> Path:
        return self.path / f"{_TEMP_PREFIX}{index:05d}.parquet.inprogress"


def _conform(pa: Any, table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s columns, in its order and types (missing ones all null)."""
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
