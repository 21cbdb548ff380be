"""The routes of the test site, each misbehaving in one documented way.

Routes that change behaviour over time (fail twice, then succeed) keep their state per
``{key}`` in the path, so concurrent tests never share a counter.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
import zlib

import orjson
from aiohttp import web

from .stats import STATS

routes = web.RouteTableDef()

RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20
MiB = 1024 * 1024


def _int(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


def _float(request: web.Request, name: str, default: float) -> float:
    return float(request.query.get(name, default))


def _bump(request: web.Request, key: str) -> int:
    """Count a hit on ``key`` and return the count so far (1 for the first)."""
    state = request.app[STATS].state
    state[key] = state.get(key, 0) + 1
    return int(state[key])


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return web.Response(
        text="<html><head><title>conveyor test site</title></head></html>", content_type="text/html"
    )


@routes.get("/page/{n}")
async def page(request: web.Request) -> web.Response:
    """A small HTML page with a title; ``?delay=`` seconds before answering."""
    if delay := _float(request, "delay", 0):
        await asyncio.sleep(delay)
    n = request.match_info["n"]
    body = f"<html><head><title>Page {n}</title></head><body>{'x' * 512}</body></html>"
    return web.Response(text=body, content_type="text/html")


@routes.route("*", "/echo")
async def echo(request: web.Request) -> web.Response:
    """What arrived: method, headers, query, body -- to check what the client sent."""
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "headers": dict(request.headers),
            "query": dict(request.query),
            "body": body.decode("utf-8", "replace"),
        }
    )


@routes.get("/status/{code}")
async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status")


@routes.route("*", "/flaky/{key}")
async def flaky(request: web.Request) -> web.StreamResponse:
    """Fail ``?fail=N`` times (``?status=503`` or ``?mode=reset``), then answer 200.

    ``?retry_after=`` sends that ``Retry-After`` (any text, ``²`` included) with a failure."""
    hits = _bump(request, "flaky/" + request.match_info["key"])
    if hits <= _int(request, "fail", 2):
        if request.query.get("mode") == "reset":
            return await _reset(request)
        after = request.query.get("retry_after")
        headers = {"Retry-After": after} if after is not None else None
        return web.Response(status=_int(request, "status", 503), text="not yet", headers=headers)
    return web.Response(text=f"ok after {hits} tries")


@routes.get("/retry-after/{key}")
async def retry_after(request: web.Request) -> web.Response:
    """429 with ``Retry-After`` (``?form=seconds|date``) ``?fail=N`` times, then 200.

    A request arriving before the time the last 429 asked for counts in
    ``state["retry-after/{key}/early"]``."""
    key = "retry-after/" + request.match_info["key"]
    state = request.app[STATS].state
    hits = _bump(request, key)
    if time.time() < state.get(key + "/until", 0):
        state[key + "/early"] = state.get(key + "/early", 0) + 1  # came back too soon
    if hits > _int(request, "fail", 1):
        return web.Response(text="welcome back")
    seconds = _int(request, "after", 1)
    if request.query.get("form") == "date":
        value = email.utils.formatdate(time.time() + seconds, usegmt=True)
        until = email.utils.parsedate_to_datetime(value).timestamp()
    else:
        value = str(seconds)
        until = time.time() + seconds
    state[key + "/until"] = until
    return web.Response(status=429, headers={"Retry-After": value}, text="slow down")


@routes.get("/throttled/{n}")
async def throttled(request: web.Request) -> web.Response:
    """The first request gets 429 Retry-After ``?after=1``; later ones arriving before the
    pause is over are counted in ``state["throttled-early"]`` (the client broke the rule)."""
    state = request.app[STATS].state
    now = time.monotonic()
    if "throttled-until" not in state:
        state["throttled-until"] = now + _int(request, "after", 1)
        return web.Response(status=429, headers={"Retry-After": request.query.get("after", "1")})
    if now < state["throttled-until"]:
        state["throttled-early"] = state.get("throttled-early", 0) + 1
    return web.Response(text="ok")


async def _reset(request: web.Request) -> web.StreamResponse:
    """Promise 100 KB, send 1 KB, then drop the connection."""
    response = web.StreamResponse(headers={"Content-Length": str(100_000)})
    await response.prepare(request)
    await response.write(b"x" * 1000)
    assert request.transport is not None
    request.transport.close()
    return response


@routes.get("/reset")
async def reset(request: web.Request) -> web.StreamResponse:
    return await _reset(request)


@routes.get("/trickle")
async def trickle(request: web.Request) -> web.StreamResponse:
    """``?chunks=N`` bytes, one every ``?every=`` seconds (slower than a read timeout)."""
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(_int(request, "chunks", 10)):
        await asyncio.sleep(_float(request, "every", 0.5))
        await response.write(b"x")
    return response


@routes.get("/endless")
async def endless(request: web.Request) -> web.StreamResponse:
    """A body that never ends (until the client goes away)."""
    response = web.StreamResponse()
    await response.prepare(request)
    chunk = b"y" * 65536
    while True:
        await response.write(chunk)


@functools.cache
def _gzip_zeros(mib: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join([*(compressor.compress(zeros) for _ in range(mib)), compressor.flush()])


@functools.cache
def _brotli_zeros(mib: int) -> bytes:
    import brotli

    return bytes(brotli.compress(bytes(mib * MiB), quality=5))


@routes.get("/bomb/{encoding}")
async def bomb(request: web.Request) -> web.Response:
    """``?mib=`` MiB of zeros (default 200) as one gzip or brotli stream of a few hundred KB."""
    mib = _int(request, "mib", 200)
    make = _gzip_zeros if request.match_info["encoding"] == "gzip" else _brotli_zeros
    body = await asyncio.to_thread(make, mib)
    encoding = "gzip" if make is _gzip_zeros else "br"
    return web.Response(
        body=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/octet-stream"},
    )


@routes.get("/compressed/{encoding}")
async def compressed(request: web.Request) -> web.Response:
    """A normal JSON body, compressed as asked: gzip, deflate or br."""
    body = orjson.dumps({"hello": "world", "items": list(range(1000))})
    encoding = request.match_info["encoding"]
    if encoding == "br":
        import brotli

        data = bytes(brotli.compress(body))
    else:
        data = zlib.compress(body) if encoding == "deflate" else _gzip(body)
    return web.Response(
        body=data, headers={"Content-Encoding": encoding, "Content-Type": "application/json"}
    )


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()
