"""Durable byte files: append, fsync, cut back to an offset; OS errors become one-liners."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .._errors import SinkError

# Bytes gathered before they go to the OS. Bigger batches are written straight through.
_BUFFER = 1 << 20


def describe_oserror(exc: OSError) -> str:
    """``No space left on device (ENOSPC)``: the reason, without Python's decoration."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = errno.errorcode.get(exc.errno or 0)
    return f"{reason} ({name})" if name else reason


def sink_error(action: str, path: str | os.PathLike[str], exc: OSError) -> SinkError:
    """One line for the user: what failed, where, why, and that flushed data is kept."""
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        hint = "; free some space (or lift the file size limit) and run again to resume"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; check the permissions or choose another output path"
    error = SinkError(f"cannot {action} {os.fspath(path)}: {describe_oserror(exc)}{hint}")
    error.errno = exc.errno
    return error


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Make a closed file's contents durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a file's creation, rename or removal in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AppendFile:
    """A file written at its end, with the offset of what is durably on disk.

    Writes go through a bounded buffer straight to the file descriptor (no Python buffered
    writer), so a failed write leaves nothing queued that a later ``close()`` would retry,
    and the offset we report is exactly what the OS accepted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._buffer = bytearray()
        self._size = 0  # bytes handed to the OS
        self.broken = False  # a write failed: the tail of the file is unknown

    @property
    def size(self) -> int:
        """Bytes written so far, including the buffer."""
        return self._size + len(self._buffer)

    def open(self, offset: int | None) -> None:
        """Open at ``offset`` (cutting off anything after it), or empty when None."""
        try:
            if offset is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
                self._fd = fd
                fsync_dir(self.path.parent)
                self._size = 0
                return
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                if offset:
                    raise SinkError(
                        f"{self.path} is missing but the journal says {offset:,} bytes of it "
                        "were written: pass restart=True (--restart) to begin again"
                    ) from None
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._fd = fd
            length = os.fstat(fd).st_size
            if length < offset:
                raise SinkError(
                    f"{self.path} holds {length:,} bytes but the journal says {offset:,} were "
                    "written: it was changed outside this job; pass restart=True (--restart) "
                    "to begin again"
                )
            if length > offset:
                os.ftruncate(fd, offset)
                os.fsync(fd)
            os.lseek(fd, offset, os.SEEK_SET)
            self._size = offset
        except SinkError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise sink_error("open", self.path, exc) from exc

    def append(self, data: bytes | bytearray) -> None:
        self._buffer += data
        if len(self._buffer) >= _BUFFER:
            self._drain()

    def _drain(self) -> None:
        if self.broken:
            raise SinkError(f"{self.path}: an earlier write failed; nothing more is written")
        assert self._fd is not None, "open() the sink first"
        view = memoryview(self._buffer)
        written = 0
        try:
            # A write may be short (a file size limit, a full disk): loop until it raises.
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            self.broken = True
            raise sink_error("write", self.path, exc) from exc
        finally:
            view.release()
            self._size += written
            del self._buffer[:written]

    def flush(self) -> int:
        """Write the buffer, fsync, and return the durable size in bytes."""
        self._drain()
        assert self._fd is not None
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.broken = True
            raise sink_error("write", self.path, exc) from exc
        return self._size

    def close(self) -> None:
        """Write what is buffered (unless a write failed) and close; never fsyncs."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._buffer and not self.broken:
                self._fd = fd
                self._drain()
        finally:
            self._fd = None
            self._buffer.clear()
            os.close(fd)
