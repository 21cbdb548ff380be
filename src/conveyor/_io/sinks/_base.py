"""What every file sink shares: the failures option, positions, open/flush/close order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..._engine.outcomes import Failure
from ..._errors import JournalError, UsageError
from .._files import AppendFile
from ..records import dumps_lines, to_record

#: ``failures=`` values: "inline" (same output, with error fields), a path for a separate
#: JSON-lines file, or None to drop them (they are still counted and journaled).
Failures = str | os.PathLike[str] | None

_FAILURES_KEY = "failures_bytes"


def _resolve_failures(failures: Failures, path: Path, owner: str) -> Path | str | None:
    if failures is None or failures == "inline":
        return failures
    if not isinstance(failures, str | os.PathLike):
        raise UsageError(
            f"{owner}(failures={failures!r}): give 'inline', a path such as "
            "'failures.jsonl', or None"
        )
    separate = Path(failures)
    if separate.resolve() == path.resolve():
        raise UsageError(
            f"{owner}(failures={os.fspath(failures)!r}): the failures file cannot be the "
            "output itself; use failures='inline' to write them there"
        )
    return separate


def position_field(position: Any, name: str, sink: str) -> int:
    """Read one non-negative integer out of a position this sink's ``flush()`` returned."""
    value = position.get(name) if isinstance(position, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise JournalError(
            f"the journal's sink position {position!r} does not fit a {sink} sink; "
            "pass restart=True (--restart) to begin again"
        )
    return value


class FileSink:
    """Base of the file sinks. Subclasses fill in ``_open``, ``_write_records``,
    ``_flush_output`` and ``_close_output``; positions are dicts of integers."""

    kind: ClassVar[str] = "file"

    def __init__(self, path: str | os.PathLike[str], *, failures: Failures = "inline") -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise UsageError(f"{type(self).__name__}({path!r}): give an output path")
        self.path = Path(path)
        self._failures = _resolve_failures(failures, self.path, type(self).__name__)
        self._failure_file: AppendFile | None = None
        self._opened = False

    # -- the Sink protocol --------------------------------------------------------------

    def open(self, position: Any = None) -> None:
        """Open for writing. With a ``position`` from ``flush()``, first cut the output (and
        a separate failures file) back to it; without one, start an empty output."""
        if self._opened:
            raise UsageError(f"{self!r} is already open; close() it first")
        failures_at: int | None = None
        if position is not None and isinstance(self._failures, Path):
            failures_at = position_field(position, _FAILURES_KEY, self.kind)
        self._open(position)
        try:
            if isinstance(self._failures, Path):
                self._failure_file = AppendFile(self._failures)
                self._failure_file.open(failures_at)
        except BaseException:
            self._close_output()
            raise
        self._opened = True

    def truncate_to(self, position: Any) -> None:
        """Cut the output back to ``position`` (from ``flush()``) and go on writing there."""
        if position is None:
            raise UsageError("truncate_to(None): give a position that flush() returned")
        if self._opened:
            self.close()
        self.open(position)

    def write(self, results: Sequence[Any]) -> None:
        self._check_open()
        self._write_records([to_record(result) for result in results])

    def write_failures(self, failures: Sequence[Failure]) -> None:
        self._check_open()
        if self._failures == "inline":
            self._write_records([failure.__conveyor_record__() for failure in failures])
        elif self._failure_file is not None:
            self._failure_file.append(dumps_lines(f.__conveyor_record__() for f in failures))

    def flush(self) -> dict[str, int]:
        """Make everything written durable (fsync) and return the position reached."""
        self._check_open()
        position = self._flush_output()
        if self._failure_file is not None:
            position[_FAILURES_KEY] = self._failure_file.flush()
        return position

    def close(self) -> None:
        """Close the output; what was not flushed may or may not be on disk."""
        if not self._opened:
            return
        self._opened = False
        try:
            self._close_output()
        finally:
            if self._failure_file is not None:
                failure_file, self._failure_file = self._failure_file, None
                failure_file.close()

    # -- conveniences --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What this sink writes, for a journal's fingerprint."""
        failures = self._failures
        return {
            "sink": self.kind,
            "path": os.path.abspath(self.path),
            "failures": os.path.abspath(failures) if isinstance(failures, Path) else failures,
            **self._options(),
        }

    def __enter__(self) -> FileSink:
        if not self._opened:
            self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self.path)!r})"

    # -- for subclasses ------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._opened:
            raise UsageError(f"{self!r} is not open; call open() first (a run does this)")

    def _options(self) -> dict[str, Any]:
        return {}

    def _open(self, position: Any) -> None:
        raise NotImplementedError

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _flush_output(self) -> dict[str, int]:
        raise NotImplementedError

    def _close_output(self) -> None:
        raise NotImplementedError
