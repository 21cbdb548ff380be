"""Crawl mode's pure core (``docs/crawl.md``): no I/O, no event loop, each part tested
alone.

- ``urls``: the URL to fetch, the canonical form and the frontier key;
- ``page``: the one page scan (the ``fetch`` record's facts and the links to follow);
- ``links``: a page's links resolved, keyed and de-duplicated;
- ``scope``: scope, ``--allow``/``--deny``, depth and traps;
- ``robots``: robots.txt by RFC 9309 around protego;
- ``sitemaps``: sitemaps read as they stream in.

The frontier is storage and lives in ``_io/journal/frontier.py``; the WARC sink in
``_io/sinks/warc.py``.
"""
