"""Bytes to text the way browsers would, and never an exception.

The order is the issue's: the charset the server declared, then a ``<meta charset>`` (or
``http-equiv``) in the first 2 KiB, then detection. A declared charset that does not
decode the bytes is a wrong label (common: ``utf-8`` on a windows-1251 page), so it is
skipped rather than trusted; only the last resort decodes with replacement characters.
"""

from __future__ import annotations

import codecs
import re

_META = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
SNIFF_BYTES = 2048


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def charset_from_meta(body: bytes) -> str | None:
    match = _META.search(body[:SNIFF_BYTES])
    return match.group(1).decode("ascii") if match else None


def _try(body: bytes, charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        return None
    if codec in ("ascii", "latin-1", "iso8859-1"):
        codec = "cp1252"  # the WHATWG rule: these labels mean windows-1252 on the web
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        return None


def detect(body: bytes) -> str | None:
    """A charset guessed from the bytes, when charset-normalizer is installed."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - the fallback below still never raises
        return None
    best = from_bytes(body[:65536]).best()
    return best.encoding if best is not None else None


def decode(body: bytes, content_type: str | None) -> tuple[str, str]:
    """The text and the charset that produced it."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace"), codec
    for charset in (charset_from_content_type(content_type), charset_from_meta(body)):
        text = _try(body, charset)
        if text is not None:
            return text, codecs.lookup(charset or "").name
    text = _try(body, "utf-8")  # valid UTF-8 is almost never an accident
    if text is not None:
        return text, "utf-8"
    guessed = detect(body)
    text = _try(body, guessed)
    if text is not None and guessed:
        return text, guessed
    return body.decode("utf-8", errors="replace"), "utf-8"
