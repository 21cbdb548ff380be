"""The script `conveyor fetch` replaces: aiohttp + gather + a semaphore on uvloop.

    python benchmarks/gather_script.py URLS.txt OUT.jsonl [CONCURRENCY]

What a user writes by hand for the main job: fetch every URL, take the <title> with a regex,
count the links, write one JSON line per URL. The benchmark's peer (``pages.py``).
"""

import asyncio
import re
import sys

import aiohttp
import orjson
import uvloop

TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S | re.I)
LINK = re.compile(rb"<a\s[^>]*href", re.I)


def summary(url: str, status: int, body: bytes) -> dict[str, object]:
    match = TITLE.search(body)
    title = match.group(1).decode("utf-8", "replace").strip() if match else None
    return {"url": url, "status": status, "title": title, "links": len(LINK.findall(body))}


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
                        record = summary(url, response.status, body)
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        record = {"url": url, "error": str(exc)}
                    out.write(orjson.dumps(record) + b"\n")

            await asyncio.gather(*(one(url) for url in urls))


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100))
