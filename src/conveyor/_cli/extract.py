"""The page record's title, description and link count: one scan shared with the crawl
(``conveyor._crawl.page``), which finds the links to follow in the same pass."""

from __future__ import annotations

from .._crawl.page import summarize_html

__all__ = ["summarize_html"]
