"""Test-site routes about redirects, sizes, charsets and cookies."""

from __future__ import annotations

from aiohttp import web

from .routes import RUSSIAN, _int, routes


@routes.route("*", "/redirect")
async def redirect(request: web.Request) -> web.Response:
    """Redirect to ``?to=`` (any URL, ``file:///etc/passwd`` included) with ``?status=``."""
    return web.Response(
        status=_int(request, "status", 302), headers={"Location": request.query["to"]}
    )


@routes.get("/loop/{n}")
async def loop(request: web.Request) -> web.Response:
    """A redirect loop: /loop/0 -> /loop/1 -> /loop/0 -> ..."""
    n = 1 - int(request.match_info["n"]) % 2
    return web.Response(status=302, headers={"Location": f"/loop/{n}"})


@routes.get("/chain/{n}")
async def chain(request: web.Request) -> web.Response:
    """``n`` redirects, then a page."""
    n = int(request.match_info["n"])
    if n <= 0:
        return web.Response(text="end of chain")
    return web.Response(status=301, headers={"Location": f"/chain/{n - 1}"})


@routes.get("/bytes/{n}")
async def size(request: web.Request) -> web.StreamResponse:
    """``n`` bytes; ``?announce=0`` leaves Content-Length out (chunked)."""
    body = b"z" * int(request.match_info["n"])
    if request.query.get("announce") == "0":
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response
    return web.Response(body=body)


@routes.get("/cp1251")
async def cp1251(request: web.Request) -> web.Response:
    """Russian text in windows-1251, labelled ``?label=`` (default a wrong ``utf-8``) in
    the header, with ``?meta=`` as a ``<meta charset>`` when given."""
    meta = request.query.get("meta")
    head = f'<meta charset="{meta}">' if meta else ""
    html = f"<html><head>{head}<title>Привет</title></head><body>{RUSSIAN}</body></html>"
    label = request.query.get("label", "utf-8")
    content_type = f"text/html; charset={label}" if label else "text/html"
    return web.Response(body=html.encode("cp1251"), headers={"Content-Type": content_type})


@routes.get("/bytes")
async def raw_bytes(request: web.Request) -> web.Response:
    """The body ``?hex=`` (bytes as hex) with ``?type=`` as its Content-Type, word for word:
    a page in any charset, labelled right, wrong or nonsensically."""
    body = bytes.fromhex(request.query.get("hex", ""))
    content_type = request.query.get("type", "text/html")
    return web.Response(body=body, headers={"Content-Type": content_type})


@routes.get("/cookies/set")
async def set_cookie(request: web.Request) -> web.Response:
    response = web.Response(text="set")
    response.set_cookie("session", "s3cret")
    return response


@routes.get("/cookies/get")
async def get_cookie(request: web.Request) -> web.Response:
    return web.json_response(dict(request.cookies))
