"""Reading a body under ``max_bytes``, counted on the wire and after decompression.

aiohttp can decompress as it reads, but how much one network chunk may expand to has
changed between aiohttp versions (3.13 added a cap), and its counts are of decoded bytes
only. So the client reads the raw stream (``auto_decompress=False``) and decodes here with
``zlib``/``brotli`` asking for at most a bounded amount of output per call
(``max_length`` / ``output_buffer_limit``): a 10 MB gzip bomb that would expand to 10 GB
stops as ``too-large`` after ``max_bytes`` + one step of output, whatever the ratio.

A body that is not what its ``Content-Encoding`` says (corrupt gzip, deflate or br) fails
as ``DecodeError`` (kind ``decode``), a ``FetchError`` like every other failure of a fetch,
so the retry rules by kind apply to it.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterable
from pathlib import Path
from typing import IO, Protocol

from .._errors import DecodeError, TooLarge

STEP = 256 * 1024  # the most output one decompression call may produce
WRITE_BATCH = 1024 * 1024  # bytes gathered before one write to a file (on a thread)


class Decoder(Protocol):
    """Raises ``DecodeError`` on input that is not what it should be."""

    def feed(self, data: bytes, limit: int) -> list[bytes]: ...

    def finish(self, limit: int) -> list[bytes]: ...


class ZlibDecoder:
    """gzip or zlib-wrapped deflate (detected), raw deflate as a fallback; multi-member."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._wbits = 47  # gzip or zlib header, detected
        self._obj = zlib.decompressobj(self._wbits)
        self._head: bytes | None = b""  # input kept until the header is known to be good

    def feed(self, data: bytes, limit: int) -> list[bytes]:
        out: list[bytes] = []
        produced = 0
        if self._head is not None:
            self._head += data
        while data:
            try:
                chunk = self._obj.decompress(data, min(STEP, limit - produced + 1))
            except zlib.error as exc:
                if self._head is None or self._wbits == -15:
                    raise DecodeError(f"not valid {self.encoding}: {exc}") from None
                # Some servers send "deflate" without the zlib header (RFC 1951 raw):
                # start again from the first byte as raw deflate.
                self._obj, self._wbits = zlib.decompressobj(-15), -15
                data, self._head = self._head, None
                continue
            if self._head is not None and (chunk or len(self._head) > 16):
                self._head = None  # the header was accepted; no going back now
            out.append(chunk)
            produced += len(chunk)
            if produced > limit:
                return out  # the caller raises too-large; stop expanding now
            data = self._obj.unconsumed_tail
            if self._obj.eof and self._obj.unused_data:
                data = self._obj.unused_data  # the next gzip member
                self._obj = zlib.decompressobj(self._wbits)
        return out

    def finish(self, limit: int) -> list[bytes]:
        try:
            return [self._obj.flush(min(STEP, limit + 1))] if not self._obj.eof else []
        except zlib.error as exc:  # pragma: no cover - flush raises only on a broken state
            raise DecodeError(f"not valid {self.encoding}: {exc}") from None


class BrotliDecoder:
    def __init__(self) -> None:
        import brotli

        self._obj = brotli.Decompressor()
        self._error: type[Exception] = brotli.error

    def feed(self, data: bytes, limit: int) -> list[bytes]:
        out: list[bytes] = []
        produced = 0
        while True:
            try:
                chunk = bytes(self._obj.process(data, output_buffer_limit=STEP))
            except self._error as exc:
                raise DecodeError(f"not valid br: {exc}") from None
            data = b""
            out.append(chunk)
            produced += len(chunk)
            if produced > limit or self._obj.can_accept_more_data():
                return out

    def finish(self, limit: int) -> list[bytes]:
        return []


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """The decoder for a ``Content-Encoding``; None for identity or one we do not know."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return ZlibDecoder(encoding)
    if encoding == "br":
        return BrotliDecoder()
    return None  # identity, or unknown: hand the bytes over as they came (as requests does)


class BodySink(Protocol):
    async def write(self, data: bytes) -> None: ...


class MemorySink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)

    def value(self) -> bytes:
        return b"".join(self.parts)


class BodyFile:
    """Writes to a temporary name beside the target, renamed into place when complete.

    File calls run on a thread (never block the loop) and in batches of ``WRITE_BATCH``
    so that a large body costs a few thread hops, not one per network chunk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        self._file: IO[bytes] | None = None
        self._pending: list[bytes] = []
        self._size = 0

    async def open(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._file = await asyncio.to_thread(open, self._tmp, "wb")

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= WRITE_BATCH:
            await self._drain()

    async def _drain(self) -> None:
        batch, self._pending, self._size = b"".join(self._pending), [], 0
        if self._file is not None and batch:
            await asyncio.to_thread(self._file.write, batch)

    async def commit(self) -> None:
        await self._drain()
        await asyncio.to_thread(self._close_and_rename)

    def _close_and_rename(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        os.replace(self._tmp, self.path)

    async def discard(self) -> None:
        """Remove the partial file (after a failure or a cancellation)."""
        await asyncio.to_thread(self._discard_sync)

    def _discard_sync(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)


async def read_body(
    chunks: AsyncIterable[bytes],
    decoder: Decoder | None,
    sink: BodySink,
    *,
    max_bytes: int,
    url: str,
) -> int:
    """Copy a raw body into ``sink``, decoded; returns the raw byte count.

    Raises:
        TooLarge: over ``max_bytes`` on the wire or after decoding.
        DecodeError: the body is not what its ``Content-Encoding`` says.
    """
    raw = decoded = 0
    try:
        async for chunk in chunks:
            raw += len(chunk)
            if raw > max_bytes:
                raise TooLarge(f"body of {url} exceeds max_bytes={max_bytes} on the wire", url=url)
            parts = decoder.feed(chunk, max_bytes - decoded) if decoder else [chunk]
            for part in parts:
                decoded += len(part)
                if decoded > max_bytes:
                    raise TooLarge(
                        f"body of {url} exceeds max_bytes={max_bytes} once decompressed", url=url
                    )
                if part:
                    await sink.write(part)
        for part in decoder.finish(max_bytes - decoded) if decoder else ():
            decoded += len(part)
            if decoded > max_bytes:
                raise TooLarge(
                    f"body of {url} exceeds max_bytes={max_bytes} once decompressed", url=url
                )
            await sink.write(part)
    except DecodeError as exc:  # the decoders' own, which do not know the URL
        raise DecodeError(f"body of {url} is {exc}", url=url) from None
    return raw


async def save_body(
    chunks: AsyncIterable[bytes], decoder: Decoder | None, path: Path, *, max_bytes: int, url: str
) -> int:
    """Stream a body into ``path`` (complete, or not there at all); returns the raw count."""
    sink = BodyFile(path)
    await sink.open()
    try:
        raw = await read_body(chunks, decoder, sink, max_bytes=max_bytes, url=url)
        await sink.commit()
    except BaseException:
        # Also on cancellation: the partial file must go, so shield the clean-up.
        await asyncio.shield(sink.discard())
        raise
    return raw
