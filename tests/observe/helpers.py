"""Shared helpers: small real pipelines that last long enough to produce ticks, an HTML checker."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import conveyor as cv

# Elements that have no end tag in HTML.
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr", "area", "base"}
# SVG shapes the report writes self-closed (<rect/>): handle_startendtag sees them.


async def nap(x: int) -> int:
    """An async stage slow enough that a run of a few dozen items spans several ticks."""
    await asyncio.sleep(0.02)
    return x


def square(x: int) -> int:
    return x * x


def fail_sevens(x: int) -> int:
    if x % 7 == 0:
        raise ValueError(f"no sevens: {x}")
    return x


def slow_pipeline(n: int = 60) -> cv.Pipeline:
    """~0.6 s: two stages (loop then threads) and a failing third, so ticks carry all three."""
    return (
        cv.Pipeline(range(n))
        .map(nap, concurrency=2)
        .map(square, on="threads", workers=2)
        .map(fail_sevens, name="checker")
    )


class StrictHTML(HTMLParser):
    """Collects problems html.parser would let pass: unbalanced or misnested tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def check(self, text: str) -> list[str]:
        self.feed(text)
        self.close()
        return self.problems + [f"<{t}> never closed" for t in self.stack]
