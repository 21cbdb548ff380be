"""Crawl mode at run time (``docs/crawl.md``): the crawl core (``_crawl``) joined to the
client, the journal and the engine.

- ``plan``: the crawl's settings and what travels between frontier and fetch;
- ``api``: ``crawl()``, the pipeline it makes, and what a run of it needs;
- ``service``: the fetch stage's service: robots.txt, the fetch, the page's links;
- ``robots``: robots.txt per host, fetched, kept in the journal, obeyed;
- ``hook``: the frontier's side of the journal's transactions;
- ``inbox``: links between Ray shards, exactly once;
- ``page``: ``Page``, what the pipeline gets for each page.
"""

from .api import crawl
from .page import Page

__all__ = ["Page", "crawl"]
