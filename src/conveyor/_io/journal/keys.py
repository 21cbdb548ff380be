"""How a key is stored in the journal, and how it travels to SQLite and back.

A key is stored as itself when it is a str or an int that SQLite carries faithfully (the
common, fast case), and as canonical JSON in a blob otherwise. SQLite never finds text,
integer and blob values equal, so ``"1"``, ``1`` and ``(1,)`` stay three keys.

Keys travel to SQLite as one JSON array a batch (see ``schema``), which SQLite's JSON
functions unpack. Those do not carry every str: ``json_each`` ends a string at a
``\\u0000`` (SQLite before 3.45 does, and Python ships such SQLites), so ``"a\\x00b"`` and
``"a\\x00c"`` would both be stored as ``"a"``, and then never found again; and a str
holding a lone surrogate is not UTF-8 at all. Such a str is stored as its JSON text in a
blob, as other keys are: escaped, so plain ASCII or UTF-8 with no NUL, and unique to it.
A blob travels as ``{"b": its JSON text}``, cast back to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any, cast

import orjson

from ..._errors import UsageError

INT64 = range(-(2**63), 2**63)


def _bytes_key(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _plain_text(text: str) -> bool:
    """Whether SQLite's JSON functions carry the str unchanged: no NUL, and UTF-8."""
    if "\x00" in text:
        return False
    if text.isascii():  # a flag of the str object: no scan
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _as_json(key: Hashable) -> bytes:
    """Canonical JSON for the key. orjson's, when it can (all but keys holding a lone
    surrogate, or an int past 64 bits), else the standard library's, all ASCII: either is
    decoded back to the same value, so two different keys never share a text."""
    try:
        return orjson.dumps(key, default=_bytes_key)
    except TypeError:
        pass
    try:
        return json.dumps(
            key, ensure_ascii=True, separators=(",", ":"), default=_bytes_key
        ).encode()
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"key {key!r} ({type(key).__name__}) cannot be stored in the journal; make the "
            "key= function return a str, an int, or a tuple of them"
        ) from exc


def encode_key(key: Hashable) -> str | int | bytes:
    """The key as stored: a str or an int as itself, anything else as JSON in a blob."""
    kind = type(key)
    if kind is str and _plain_text(cast(str, key)):
        return cast(str, key)
    if kind is int and key in INT64:
        return cast(int, key)
    return _as_json(key)


def _fit_int64(keys: Sequence[int]) -> bool:
    return min(keys) in INT64 and max(keys) in INT64


def encode_keys(keys: Sequence[Hashable]) -> tuple[list[Any], list[Any]]:
    """The keys as stored, and as they travel in JSON to SQLite."""
    kinds = set(map(type, keys))
    if kinds == {str}:
        # One check for the whole batch, in C: a NUL or a lone surrogate in any key is one
        # in the keys joined.
        if _plain_text("".join(cast("Sequence[str]", keys))):
            codes = list(keys)  # the common case: as themselves, with no per-key work
            return codes, codes
    elif kinds == {int} and _fit_int64(cast("Sequence[int]", keys)):
        codes = list(keys)
        return codes, codes
    codes = [encode_key(key) for key in keys]
    return codes, [{"b": code.decode()} if type(code) is bytes else code for code in codes]


def travelled(stored: Any) -> str | int | bytes:
    """The stored key from its form in a JSON answer of SQLite (see ``schema.KEY_OUT``)."""
    if type(stored) is dict:
        return cast(str, stored["b"]).encode()
    return cast("str | int", stored)


def decode_key(stored: str | int | bytes) -> Any:
    """The key back from its stored form (tuples come back as lists, as JSON gives them)."""
    if not isinstance(stored, bytes):
        return stored
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError:  # a lone surrogate, escaped: orjson refuses it
        return json.loads(stored)
