"""The leanest script `conveyor fetch` is measured against: aiohttp + gather on uvloop.

    python benchmarks/lean_script.py URLS.txt OUT.jsonl [CONCURRENCY]

What most users write for the main job, and no more: fetch every URL, take the
``<title>`` with a case-sensitive regex, count ``<a href`` with ``bytes.count``, write one
JSON line per URL (url, status, title, links: the fields of ``gather_script.py``). The
benchmark's peer (``pages.py``); ``gather_script.py`` does more than it needs (case-folding
patterns), which would flatter conveyor.
"""

import asyncio
import re
import sys

import aiohttp
import orjson
import uvloop

TITLE = re.compile(rb"<title>(.*?)</title>", re.S)


async def main(path: str, output: str, concurrency: int) -> None:
    # As users write it: plain open() in the coroutine (nothing else runs yet).
    urls = [line.strip() for line in open(path) if line.strip()]  # noqa: ASYNC230
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    with open(output, "wb") as out:  # noqa: ASYNC230
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str) -> None:
                async with semaphore:
                    try:
                        async with session.get(url) as response:
                            body = await response.read()
                        match = TITLE.search(body)
                        record = {
                            "url": url,
                            "status": response.status,
                            "title": match[1].decode() if match else None,
                            "links": body.count(b"<a href"),
                        }
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        record = {"url": url, "error": str(exc)}
                    out.write(orjson.dumps(record) + b"\n")

            await asyncio.gather(*(one(url) for url in urls))


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100))
