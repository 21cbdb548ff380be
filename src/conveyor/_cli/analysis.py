"""The demo's CPU-heavy analysis step: pure-Python text statistics, run on processes.

It stands for the kind of work a user plugs in with ``--process``: it takes the record
(with the page body) and returns a dict of new fields.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from typing import Any

_WORD = re.compile(r"[a-z]{3,}")
_TAG = re.compile(r"<[^>]+>")
_SHINGLE_SEEDS = tuple(range(1, 17))


def analyze_text(record: dict[str, Any]) -> dict[str, Any]:
    """Word statistics and a MinHash signature of the page's visible text."""
    body = record.get("body") or b""
    text = _TAG.sub(" ", body[:200_000].decode("utf-8", "replace")).lower()
    words = _WORD.findall(text)
    if not words:
        return {"words": 0, "top_word": None, "diversity": None, "minhash": None}
    counts = Counter(words)
    shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
    # MinHash over word 3-grams: near-duplicate pages get near-equal signatures.
    signature = [
        min(zlib.crc32(shingle.encode(), seed) for shingle in shingles) for seed in _SHINGLE_SEEDS
    ]
    return {
        "words": len(words),
        "top_word": counts.most_common(1)[0][0],
        "diversity": round(len(counts) / len(words), 4),
        "minhash": "".join(f"{h:08x}" for h in signature[:4]),
    }
