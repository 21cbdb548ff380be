"""A hybrid pipeline: async I/O on the loop, hashing on threads, pure-Python scoring on processes.

Run it with ``make demo`` (or ``.venv/bin/python examples/hybrid.py``). It generates 20,000
synthetic "documents", pretends to fetch each one (an async wait), hashes it on a thread pool
(hashlib releases the GIL), scores it with pure-Python code on worker processes, and writes
the best ones to ``demo-output/hybrid.txt`` — printing the run's summary at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import conveyor as cv

N = 20_000


def documents(n: int) -> Iterator[dict[str, object]]:
    """A lazy source: nothing is built until the pipeline asks for it."""
    rng = random.Random(42)
    words = ["alpha", "beta", "gamma", "delta", "conveyor", "pipeline", "thread", "process"]
    for i in range(n):
        yield {"id": i, "text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))}


async def fetch(doc: dict[str, object]) -> dict[str, object]:
    """Stands in for a network call: waiting costs nothing on the event loop."""
    await asyncio.sleep(random.uniform(0.001, 0.02))
    return doc


def digest(doc: dict[str, object]) -> dict[str, object]:
    """Blocking C code that releases the GIL: threads overlap here."""
    data = str(doc["text"]).encode() * 50
    return {**doc, "sha256": hashlib.sha256(data).hexdigest()}


def score(doc: dict[str, object]) -> dict[str, object]:
    """Pure-Python CPU work: the GIL would serialise it on threads, so it runs on processes."""
    text = str(doc["text"])
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    total = 0
    for _ in range(30):
        total = sum(len(w) * c for w, c in counts.items()) + total % 7
    return {"id": doc["id"], "sha256": doc["sha256"], "score": total}


def main() -> None:
    out_dir = Path("demo-output")
    out_dir.mkdir(exist_ok=True)
    best: list[dict[str, object]] = []
    pipeline = (
        cv.Pipeline(documents(N), key=lambda doc: doc["id"])
        .map(fetch, concurrency=200)
        .map(digest, on="threads", workers=4)
        .map(score, on="processes", workers=2)
        .filter(lambda doc: int(str(doc["score"])) > 1000)
    )
    print(f"running {pipeline!r} over {N:,} documents…")
    result = pipeline.run(sink=best)
    (out_dir / "hybrid.txt").write_text(
        "".join(f"{d['id']}\t{d['score']}\t{d['sha256']}\n" for d in best)
    )
    print(result.summary())
    print(f"{len(best):,} documents scored above 1000 → {out_dir / 'hybrid.txt'}")


if __name__ == "__main__":
    main()
