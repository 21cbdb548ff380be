"""Pages read as a browser reads them: WHATWG labels, no Python-only codecs."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote

import pytest
import webencodings

from conveyor._http import charset
from conveyor._http.charset import declared_encoding, decode
from conveyor.http import HttpClient
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]
CAFE = "Café ".encode("cp1252") + b"\x81"  # 0x81: undefined in Python's cp1252
PYTHON_ONLY = [
    "rot13",
    "rot-13",
    "zlib",
    "base64",
    "hex",
    "uu",
    "bz2",
    "quopri",
    "unicode_escape",
    "raw_unicode_escape",
    "idna",
    "punycode",
    "utf-7",
    "utf_8",
    "mbcs",
    "undefined",
]


@pytest.mark.parametrize("label", PYTHON_ONLY)
def test_a_label_that_is_no_web_encoding_is_ignored(label: str) -> None:
    body = "Grüße".encode()
    assert declared_encoding(body, f"text/html; charset={label}") is None
    assert decode(body, f"text/html; charset={label}") == ("Grüße", "utf-8")
    page = f'<meta charset="{label}">'.encode() + body
    assert declared_encoding(page, "text/html") is None
    assert decode(page, "text/html")[0].endswith("Grüße")


@pytest.mark.parametrize("label", PYTHON_ONLY)
def test_python_only_codecs_are_never_used(label: str) -> None:
    # Bytes such a codec would "decode": rot13 letters, base64, hex, escapes, zlib data.
    web = {webencodings.lookup(name).codec_info.name for name in webencodings.LABELS}
    for body in (b"Uryyb", b"SGVsbG8=", b"48656c6c6f", b"\\u0041", codecs.encode(b"x", "zlib")):
        for page in (body, f"<meta charset={label}>".encode() + body):
            assert decode(page, f"text/html; charset={label}")[1] in web


@pytest.mark.parametrize("label", ["latin1", "latin-1", "iso-8859-1", "ISO_8859-1", "ascii"])
def test_latin1_is_windows_1252_with_its_c1_bytes(label: str) -> None:
    content_type = f"text/html; charset={label}"
    assert declared_encoding(CAFE, content_type) == "cp1252"
    assert decode(CAFE, content_type) == ("Café \x81", "cp1252")
    page = f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'.encode()
    assert decode(page + CAFE, None) == (page.decode() + "Café \x81", "cp1252")


def test_every_byte_decodes_in_windows_1252_as_whatwg_says() -> None:
    text, _ = decode(bytes(range(256)), "text/html; charset=windows-1252")
    assert len(text) == 256
    assert [text[b] for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)] == [
        "\x81",
        "\x8d",
        "\x8f",
        "\x90",
        "\x9d",
    ]
    assert text[0x80] == "€"
    assert text[0xE9] == "é"


def test_a_declared_single_byte_encoding_is_not_second_guessed() -> None:
    greek = "Καλημέρα".encode("cp1253") + b"\xaa"  # 0xAA: a hole in windows-1253
    assert decode(greek, "text/html; charset=windows-1253") == ("Καλημέρα\ufffd", "cp1253")


def test_whatwg_label_rules() -> None:
    assert declared_encoding(b"", "text/html; charset=UTF8") == "utf-8"
    assert declared_encoding(b"", 'text/html; charset="utf-8"') == "utf-8"
    assert declared_encoding(b"", "text/html; charset=shift_jis") == "cp932"
    assert declared_encoding(b"", "text/html; charset=utf-16") == "utf-16-le"
    assert declared_encoding(b'<meta charset="utf-16">', "text/html") == "utf-8"
    assert declared_encoding(b"", "text/html; charset=x-user-defined") == "cp1252"
    assert declared_encoding(b"", "text/html; charset=iso-2022-kr") is None  # replacement
    assert declared_encoding(b"", "text/html") is None
    assert declared_encoding(b"", None) is None


def test_declaration_order_bom_header_meta() -> None:
    meta = b'<meta charset="koi8-r">'
    assert declared_encoding(codecs.BOM_UTF8 + meta, "text/html; charset=cp1251") == "utf-8-sig"
    assert declared_encoding(meta, "text/html; charset=cp1251") == "cp1251"
    assert declared_encoding(meta, "text/html; charset=rot13") == "koi8-r"
    two = b'<meta charset="zlib"><meta charset="koi8-r">'
    assert declared_encoding(two, None) == "koi8-r"  # the first valid one
    late = b" " * 4096 + meta
    assert declared_encoding(late, None) is None


def test_a_wrong_multibyte_label_still_falls_through() -> None:
    text = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 10
    assert decode(text.encode("cp1251"), "text/html; charset=utf-8") == (text, "cp1251")


def test_detection_never_picks_utf16_without_a_bom() -> None:
    text, codec = decode("Café".encode("cp1252"), None)
    assert not codec.startswith("utf-16")
    assert text.startswith("Caf")


def test_the_common_case_is_a_cache_hit() -> None:
    # No timing assertion (the house rule): the header's reading is cached, so a page with
    # a seen Content-Type costs a BOM check and one dict lookup (~1 µs measured).
    body = b"<html>" + b"x" * 10_000
    content_type = "text/html; charset=utf-8"
    assert declared_encoding(body, content_type) == "utf-8"
    hits = charset._from_content_type.cache_info().hits
    assert declared_encoding(body, content_type) == "utf-8"
    assert charset._from_content_type.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    ("content_type", "body", "text", "codec"),
    [
        ("text/html; charset=latin-1", CAFE, "Café \x81", "cp1252"),
        ("text/html; charset=iso-8859-1", CAFE, "Café \x81", "cp1252"),
        ("text/html; charset=rot13", "Grüße".encode(), "Grüße", "utf-8"),
        ("text/html", b'<meta charset="zlib">' + "Grüße".encode(), None, "utf-8"),
        ("text/html", b'<meta charset="unicode_escape">\\u0041', None, "utf-8"),
    ],
)
async def test_pages_through_the_test_site(
    site: RunningSite,
    client: Client,
    content_type: str,
    body: bytes,
    text: str | None,
    codec: str,
) -> None:
    url = site.url(f"/bytes?hex={body.hex()}&type={quote(content_type)}")
    async with client() as c:
        response = await c.fetch(url)
    assert response.status == 200
    assert response.text == (text if text is not None else body.decode())
    assert response.encoding == codec
