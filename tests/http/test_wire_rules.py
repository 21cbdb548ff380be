"""The wire's pure rules: what a request head may hold and how it is written, which proxy a
host goes through, NO_PROXY, credentials from URLs and .netrc."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from yarl import URL

from conveyor._errors import UsageError
from conveyor._http.auth import Netrc, userinfo
from conveyor._http.head import Heads, header_problem
from conveyor._http.proxy import ProxyRoutes, bypasses, parse_no_proxy, parse_proxy, routes_for


def test_header_rules() -> None:
    assert header_problem("X-Fine", "tab\tand obs-text \xe9 are fine") is None
    assert header_problem("Host", "example.test") is None
    for name, value, words in [
        ("X", "a\rb", "line break"),
        ("X", "a\x7f", "control"),
        ("X Y", "v", "not a token"),
        ("", "v", "not a token"),
        ("Content-Length", "5", "from the body"),
        ("TRANSFER-ENCODING", "chunked", "Content-Length"),
        ("connection", "close", "alive"),
    ]:
        problem = header_problem(name, value)
        assert problem is not None
        assert words in problem


def test_heads_are_written_once_per_header_set() -> None:
    heads = Heads([("User-Agent", "ua/1"), ("Accept-Encoding", "gzip")])
    payload = heads.payload("POST", "/p?q=1", "h.test:8080", (("X-A", "1"),), {"a": "1 2"})
    assert payload == (
        b"POST /p?q=1 HTTP/1.1\r\nHost: h.test:8080\r\nUser-Agent: ua/1\r\n"
        b"Accept-Encoding: gzip\r\nAccept: */*\r\nX-A: 1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\na=1+2"
    )
    absolute = heads.payload(
        "GET", "http://h.test/x", "h.test", (), None, b"Proxy-Authorization: Basic eA==\r\n"
    )
    assert absolute.startswith(b"GET http://h.test/x HTTP/1.1\r\nHost: h.test\r\n")
    assert absolute.endswith(b"Proxy-Authorization: Basic eA==\r\n\r\n")
    assert heads.authority("::1", 8080, False) == "[::1]:8080"
    with pytest.raises(UsageError, match="target"):
        heads.payload("GET", "/a b", "h", (), None)
    with pytest.raises(UsageError, match="target"):
        heads.payload("GET", "/a\r\nX: 1", "h", (), None)
    with pytest.raises(UsageError, match="method"):
        heads.payload("GET /x HTTP/1.1\r\n", "/", "h", (), None)


def test_proxy_urls() -> None:
    proxy = parse_proxy("http://us%40er:p%3Ass@Proxy.Example:3128/")
    assert (proxy.host, proxy.port, proxy.label) == (
        "proxy.example",
        3128,
        "http://proxy.example:3128",
    )
    assert proxy.authorization == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert parse_proxy("127.0.0.1:8080").label == "http://127.0.0.1:8080"
    assert parse_proxy("http://[::1]:3128").label == "http://[::1]:3128"
    assert parse_proxy("http://p.test").port == 80
    for bad, words in [
        ("socks5://p:1080", "only http://"),
        ("https://p:443", "only http://"),
        ("http://:3128", "host"),
        ("http://p:3128/path", "no path"),
        ("", "give a proxy URL"),
    ]:
        with pytest.raises(UsageError, match=words):
            parse_proxy(bad)


def test_a_host_has_one_proxy_whatever_its_spelling() -> None:
    routes = ProxyRoutes([parse_proxy(f"http://p{i}.test:3128") for i in range(3)])
    chosen = {routes.choose(URL(f"http://h{n}.test/x")) for n in range(60)}
    assert len(chosen) == 3  # all are used
    for host in ("h7.test", "h12.test"):
        spellings = [f"http://{host}/a", f"HTTP://{host.upper()}:80/b", f"http://{host}./c"]
        assert len({routes.choose(URL(url)) for url in spellings}) == 1
    assert routes.choose(URL("http://h7.test/")) is not None


def test_no_proxy() -> None:
    entries = parse_no_proxy(" .internal.test, localhost,10.0.0.0/8 , api.test:8443,[::1]")
    assert bypasses(entries, "internal.test", 80)
    assert bypasses(entries, "a.b.internal.test", 443)
    assert not bypasses(entries, "notinternal.test", 80)
    assert bypasses(entries, "LOCALHOST.", 80)
    assert bypasses(entries, "10.1.2.3", 80)
    assert not bypasses(entries, "11.1.2.3", 80)
    assert bypasses(entries, "api.test", 8443)
    assert not bypasses(entries, "api.test", 443)
    assert bypasses(entries, "::1", 80)
    assert bypasses(parse_no_proxy("*"), "anything.test", 80)
    routes = ProxyRoutes([parse_proxy("http://p.test:1")], no_proxy="skip.test")
    assert routes.choose(URL("http://skip.test/")) is None
    assert routes.choose(URL("http://go.test/")) is not None


def test_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert routes_for((), trust_env=True) is None
    monkeypatch.setenv("HTTPS_PROXY", "tunnels.test:3128")
    routes = routes_for((), trust_env=True)
    assert routes is not None
    assert routes.choose(URL("http://a.test/")) is None  # no HTTP_PROXY: direct
    chosen = routes.choose(URL("https://a.test/"))
    assert chosen is not None
    assert chosen.label == "http://tunnels.test:3128"
    # proxy= wins over the environment; NO_PROXY still applies to it.
    monkeypatch.setenv("NO_PROXY", "a.test")
    named = routes_for(("http://named.test:1",), trust_env=True)
    assert named is not None
    assert named.choose(URL("https://a.test/")) is None
    assert named.choose(URL("https://b.test/")) == parse_proxy("http://named.test:1")
    monkeypatch.setenv("HTTP_PROXY", "socks5://x:1")
    with pytest.raises(UsageError, match="http_proxy"):
        routes_for((), trust_env=True)


def test_netrc_logins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.test login me password pw\ndefault login anon password x\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    logins = Netrc.load()
    assert logins.authorization("API.test") == "Basic " + base64.b64encode(b"me:pw").decode()
    assert logins.authorization("other.test") == "Basic " + base64.b64encode(b"anon:x").decode()
    routes = ProxyRoutes([parse_proxy("http://api.test:3128")]).with_logins(logins)
    assert routes.proxies[0].authorization == logins.authorization("api.test")
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    assert Netrc.load().authorization("api.test") is None
    netrc.write_text("machine\n")
    monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(UsageError, match="trust_env"):
        Netrc.load()


def test_user_info() -> None:
    assert userinfo(URL("http://h.test/")) is None
    assert userinfo(URL("http://a%3Ab:@h.test/")) == (b"a:b", b"")
    assert userinfo(URL("http://u:p%C3%A9@h.test/")) == (b"u", "pé".encode())
