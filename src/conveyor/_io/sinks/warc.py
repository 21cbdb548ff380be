"""``Warc``: WARC/1.1 request and response records (warcio), the web archives' format.

Heritrix, wget and the replay tools (pywb, the Wayback Machine) read and write WARC; the
records are made by ``warcio``, the reference library, rather than by hand: its digests
(``WARC-Block-Digest``, ``WARC-Payload-Digest``) and header rules are what those tools
check.

A result goes in through a small protocol, so that ``_io`` needs nothing of ``_http``:
``type(result).__conveyor_warc__(result)`` returns a dict (``conveyor.http.Response``
has the method)::

    target        str            the URL the response came from (WARC-Target-URI)
    request_line  str            "GET /path?q HTTP/1.1"
    request_headers  [(name, value), ...]
    request_body  bytes          (may be empty)
    status_line   str            "200 OK"
    protocol      str            "HTTP/1.1"
    headers       [(name, value), ...]   the response's headers
    body          bytes          the payload
    date          str | None     when it was fetched, ISO 8601 UTC (WARC-Date); else now

Each result becomes a ``request`` and a ``response`` record (``WARC-Concurrent-To`` links
them); a new file starts with a ``warcinfo`` record. Inline failures become ``metadata``
records of ``application/json`` (the failure record), with the failure's key as
``WARC-Target-URI`` when it is a URL. A result without the protocol is an error that says
what to write instead.

Resuming: with ``.warc.gz`` every record is its own gzip member (as the WARC spec
recommends), so the position ``flush()`` returns (a byte offset) is always a member
boundary; on resume the file is cut back to it and a reader never meets half a record.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..._errors import UsageError
from ..._version import __version__
from .._files import AppendFile
from ..records import dumps
from ._base import Failures, FileSink, position_field


class Warc(FileSink):
    """Write fetch responses as WARC/1.1 request and response records.

    Args:
        path: ``*.warc.gz`` (each record gzipped on its own: the usual form) or ``*.warc``.
            Without a journal (or with ``restart``) it is overwritten.
        failures: ``"inline"`` (``metadata`` records), a path for a JSON-lines file, or
            None.
        gzip: compress the records; by default when the name ends in ``.gz``.
    """

    kind: ClassVar[str] = "warc"

    _file: AppendFile

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        failures: Failures = "inline",
        gzip: bool | None = None,
    ) -> None:
        super().__init__(path, failures=failures)
        self.gzip = self.path.name.endswith(".gz") if gzip is None else bool(gzip)
        self._buffer = io.BytesIO()
        from warcio.warcwriter import WARCWriter  # loaded with the first WARC sink only

        self._writer = WARCWriter(self._buffer, gzip=self.gzip, warc_version="1.1")

    def _options(self) -> dict[str, Any]:
        return {"gzip": self.gzip}

    def _open(self, position: Any) -> None:
        offset = None if position is None else position_field(position, "bytes", self.kind)
        self._file = AppendFile(self.path)
        self._file.open(offset)
        if not offset:
            info = self._writer.create_warcinfo_record(
                self.path.name, {"software": f"conveyor/{__version__}", "format": "WARC/1.1"}
            )
            self._writer.write_record(info)
            self._drain()

    def write(self, results: Sequence[Any]) -> None:
        self._check_open()
        for result in results:
            own = getattr(type(result), "__conveyor_warc__", None)
            if own is None:
                raise UsageError(
                    f"the WARC sink {self.path} writes fetch responses (conveyor.http."
                    f"Response), got a {type(result).__name__}; end the pipeline with the "
                    "fetch, or write .jsonl"
                )
            self._exchange(own(result))
        self._drain()

    def _exchange(self, exchange: dict[str, Any]) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        target = exchange["target"]
        date = exchange.get("date") or _now()
        sent = StatusAndHeaders(
            exchange["request_line"],
            list(exchange.get("request_headers") or ()),
            is_http_request=True,
        )
        answer = StatusAndHeaders(
            exchange["status_line"],
            list(exchange.get("headers") or ()),
            protocol=exchange.get("protocol", "HTTP/1.1"),
        )
        self._writer.write_request_response_pair(
            self._record("request", target, exchange.get("request_body") or b"", sent, date),
            self._record("response", target, exchange["body"], answer, date),
        )

    def _record(self, kind: str, target: str, payload: bytes, http: Any, date: str) -> Any:
        # The length given, warcio digests the bytes in place instead of spooling a copy
        # into a temporary file per record (which it would leave to the collector).
        return self._writer.create_warc_record(
            target,
            kind,
            payload=io.BytesIO(payload),
            length=len(payload),
            http_headers=http,
            warc_headers_dict={"WARC-Date": date},
        )

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        # Failures written inline (``write_failures``), as metadata records.
        for record in records:
            key = record.get("key")
            target = key if isinstance(key, str) and "://" in key else None
            content = dumps(record)
            metadata = self._writer.create_warc_record(
                target or "",
                "metadata",
                payload=io.BytesIO(content),
                length=len(content),
                warc_content_type="application/json",
                warc_headers_dict={"WARC-Date": _now()},
            )
            if target is None:
                metadata.rec_headers.remove_header("WARC-Target-URI")
            self._writer.write_record(metadata)
        self._drain()

    def _drain(self) -> None:
        data = self._buffer.getvalue()
        if data:
            self._file.append(data)
        self._buffer.seek(0)
        self._buffer.truncate()

    def _flush_output(self) -> dict[str, int]:
        return {"bytes": self._file.flush()}

    def _close_output(self) -> None:
        self._file.close()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
