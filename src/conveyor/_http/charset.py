"""Bytes to text the way browsers would, and never an exception.

The order is the HTML standard's: a byte order mark, then the charset the server declared
in ``Content-Type``, then a ``<meta charset>`` (or ``http-equiv``) in the first 2 KiB, then
detection. Every label goes through the WHATWG Encoding Standard's table (the
``webencodings`` package holds it), so:

- a label that is not a WHATWG text encoding (``rot13``, ``zlib``, ``unicode_escape``,
  ``idna``, ``base64``, ...) is ignored, as a browser ignores it: Python-only codecs are
  never used on a page, neither from a label nor from detection;
- a valid label means what it means on the web: ``latin1``, ``iso-8859-1`` and ``ascii``
  are windows-1252 (so is ``latin-1``, the one spelling taken beyond the table), whose
  bytes 0x81, 0x8D, 0x8F, 0x90 and 0x9D are the C1 controls U+0081... (Python's cp1252
  calls them errors); a ``<meta>`` saying utf-16 means utf-8;
  ``x-user-defined`` is read as windows-1252; the ``replacement`` labels (iso-2022-kr,
  hz-gb-2312, ...) are ignored rather than read as one U+FFFD.

A declared single-byte encoding is used as declared: every byte means something in it (an
undefined one becomes U+FFFD, as in a browser), so detection never second-guesses it. A
declared multi-byte encoding (utf-8, shift_jis, gb18030, ...) the bytes are not valid in
is a wrong label (common: ``utf-8`` on a windows-1251 page), so it is skipped rather than
trusted; only the last resort decodes with replacement characters.

:func:`declared_encoding` is the first half alone (what the page declares), cheap enough
for a fast path: a ``charset=utf-8`` header costs one cache hit.
"""

from __future__ import annotations

import codecs
import functools
import re

import webencodings

__all__ = ["decode", "declared_encoding", "detect", "SNIFF_BYTES"]

SNIFF_BYTES = 2048
_META = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),  # "utf-16" reads the BOM and drops it
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_BOM_STARTS = tuple(bom for bom, _ in _BOMS)

# WHATWG single-byte encodings: any byte sequence decodes, with U+FFFD for a hole.
_SINGLE_BYTE = frozenset(
    {"ibm866", "koi8-r", "koi8-u", "macintosh", "windows-874", "x-mac-cyrillic"}
    | {f"iso-8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)}
    | {"iso-8859-8-i"}
    | {f"windows-{n}" for n in range(1250, 1259)}
)
# ... by the Python codec names they decode with (what the functions here return).
_SINGLE_BYTE_CODECS = frozenset(webencodings.lookup(name).codec_info.name for name in _SINGLE_BYTE)
_WHATWG_REPLACE = "conveyor-whatwg-replace"


def _whatwg_replace(error: UnicodeError) -> tuple[str, int]:
    """The WHATWG single-byte decoders' view of a byte Python's codec leaves undefined:
    0x80-0x9F are the C1 controls of the same number (windows-1252's 0x81 is U+0081),
    any other hole is U+FFFD."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    byte = error.object[error.start]
    return (chr(byte) if 0x80 <= byte <= 0x9F else "\ufffd"), error.start + 1


codecs.register_error(_WHATWG_REPLACE, _whatwg_replace)


# One spelling the WHATWG table lacks but servers send (it is Python's name for ISO-8859-1,
# so code writes it) and that cannot mean anything else; read as the table reads "latin1".
_EXTRA_LABELS = {"latin-1": "latin1"}


@functools.lru_cache(maxsize=512)
def _lookup(label: str, *, meta: bool = False) -> str | None:
    """The Python codec a WHATWG label means, or None for a label that is not one.

    ``meta``: the label came from the page itself, where utf-16 means utf-8 (HTML's
    "prescan" rule: a page that can be read as ASCII to find the label is not utf-16)."""
    encoding = webencodings.lookup(_EXTRA_LABELS.get(label.strip().lower(), label))
    if encoding is None or encoding.name == "replacement":
        return None
    if encoding.name == "x-user-defined":
        return "cp1252"
    if meta and encoding.name in ("utf-16le", "utf-16be"):
        return "utf-8"
    name: str = encoding.codec_info.name
    return name


@functools.lru_cache(maxsize=256)
def _from_content_type(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            label = value.strip().strip("\"'")
            return _lookup(label) if label else None
    return None


def charset_from_content_type(content_type: str | None) -> str | None:
    """The Python codec the ``Content-Type`` header's charset means (WHATWG), or None."""
    return _from_content_type(content_type) if content_type else None


def charset_from_meta(body: bytes) -> str | None:
    """The Python codec the first valid ``<meta>`` charset in the first bytes means, or None."""
    for match in _META.finditer(body, 0, SNIFF_BYTES):
        codec = _lookup(match.group(1).decode("ascii"), meta=True)
        if codec is not None:
            return codec
    return None


def _bom(body: bytes) -> str | None:
    if body.startswith(_BOM_STARTS):
        for bom, codec in _BOMS:
            if body.startswith(bom):
                return codec
    return None


def declared_encoding(body: bytes, content_type: str | None) -> str | None:
    """The Python codec to decode this page with, when the page declares one: a BOM, then
    the ``Content-Type`` charset, then a ``<meta charset>`` or ``http-equiv`` in the first
    2 KiB, each label mapped through the WHATWG table; None when nothing valid is declared.

    A label that is not a WHATWG encoding is as good as none. The answer is what the page
    says, not a check of the bytes: :func:`decode` may still skip a multi-byte label the
    bytes are not valid in."""
    if body.startswith(_BOM_STARTS):
        return _bom(body)
    if content_type:
        codec = _from_content_type(content_type)
        if codec is not None:
            return codec
    return charset_from_meta(body)


def _decode_as(body: bytes, codec: str) -> str | None:
    """``body`` in ``codec`` as a browser reads it, or None for bytes not valid in a
    multi-byte codec (a wrong label)."""
    if codec in _SINGLE_BYTE_CODECS:
        return body.decode(codec, _WHATWG_REPLACE)
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        return None


def detect(body: bytes) -> str | None:
    """A Python codec guessed from the bytes, when charset-normalizer is installed: the
    likeliest guess that is a WHATWG encoding other than UTF-16 (never a Python-only codec
    such as utf-7)."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - the fallback below still never raises
        return None
    for match in from_bytes(body[:65536]):
        codec = _detected(match.encoding)
        # HTML's sniffing never guesses UTF-16 from bytes without a BOM: on short text
        # the detector often does, and every even-length byte string "decodes" in it.
        if codec is not None and not codec.startswith("utf-16"):
            return codec
    return None


@functools.lru_cache(maxsize=128)
def _detected(guess: str) -> str | None:
    """A detector's Python codec name (``cp1251``, ``utf_8``, ``latin_1``) as a WHATWG one."""
    codec = _lookup(guess)
    if codec is not None:
        return codec
    try:
        name = codecs.lookup(guess).name  # "utf_8" -> "utf-8", "latin_1" -> "iso8859-1"
    except LookupError:
        return None
    return _lookup(name) or _python_to_whatwg().get(name)


@functools.cache
def _python_to_whatwg() -> dict[str, str]:
    """Python codec names that no WHATWG label spells but a WHATWG encoding decodes with
    (``cp932`` for shift_jis, ``cp949`` for euc-kr, ...)."""
    table: dict[str, str] = {}
    for label in webencodings.LABELS:
        codec = _lookup(label)
        if codec is not None:
            table.setdefault(codecs.lookup(codec).name, codec)
    return table


def decode(body: bytes, content_type: str | None) -> tuple[str, str]:
    """The text and the Python codec that produced it."""
    bom = _bom(body)
    if bom is not None:
        return body.decode(bom, errors="replace"), bom
    header = charset_from_content_type(content_type)
    if header is not None:
        text = _decode_as(body, header)
        if text is not None:
            return text, header
    meta = charset_from_meta(body)
    if meta is not None and meta != header:
        text = _decode_as(body, meta)
        if text is not None:
            return text, meta
    try:
        return body.decode("utf-8"), "utf-8"  # valid UTF-8 is almost never an accident
    except UnicodeDecodeError:
        pass
    guessed = detect(body)
    if guessed is not None:
        text = _decode_as(body, guessed)
        if text is not None:
            return text, guessed
    return body.decode("utf-8", errors="replace"), "utf-8"
