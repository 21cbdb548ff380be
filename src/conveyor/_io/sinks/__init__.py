"""File sinks, and ``sink_for`` to pick one from a path's extension."""

from __future__ import annotations

import os
from typing import Any

from ..._errors import UsageError
from ._base import FileSink
from .csv import Csv
from .jsonl import JsonLines
from .parquet import Parquet
from .sqlite import Sqlite
from .warc import Warc

_BY_EXTENSION: dict[str, type[FileSink]] = {
    ".jsonl": JsonLines,
    ".ndjson": JsonLines,
    ".json": JsonLines,
    ".csv": Csv,
    ".parquet": Parquet,
    ".pq": Parquet,
    ".db": Sqlite,
    ".sqlite": Sqlite,
    ".sqlite3": Sqlite,
    ".warc": Warc,
    ".warc.gz": Warc,
}


def sink_for(path: str | os.PathLike[str], **options: Any) -> FileSink:
    """The sink for ``path``, chosen by its extension; ``options`` go to the sink.

    ``.jsonl``/``.ndjson``/``.json`` → :class:`JsonLines`, ``.csv`` → :class:`Csv`,
    ``.parquet``/``.pq`` → :class:`Parquet`, ``.db``/``.sqlite``/``.sqlite3`` →
    :class:`Sqlite` (table ``results``), ``.warc``/``.warc.gz`` → :class:`Warc`.
    """
    if not isinstance(path, str | os.PathLike):
        raise UsageError(f"sink_for({path!r}): give an output path such as 'out.jsonl'")
    name = os.path.basename(os.fspath(path)).lower()
    extension = ".warc.gz" if name.endswith(".warc.gz") else os.path.splitext(name)[1]
    sink = _BY_EXTENSION.get(extension)
    if sink is None:
        known = ", ".join(sorted(_BY_EXTENSION))
        raise UsageError(
            f"cannot tell the output format of {os.fspath(path)!r} from its extension; use "
            f"one of {known}, or pass a sink such as conveyor.JsonLines(path)"
        )
    try:
        return sink(path, **options)
    except TypeError as exc:
        raise UsageError(f"sink_for({os.fspath(path)!r}, ...): {exc}") from None


__all__ = ["Csv", "FileSink", "JsonLines", "Parquet", "Sqlite", "Warc", "sink_for"]
