"""Pure pieces: configuration, Retry-After, backoff, pacing, decoders, charsets."""

from __future__ import annotations

import email.utils
import gzip
import pickle
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from conveyor._errors import UsageError
from conveyor._http.body import decoder_for
from conveyor._http.charset import decode
from conveyor._http.limits import HostPacer
from conveyor._http.retry import DATE_MARGIN, backoff_delay, parse_retry_after, retry_delay
from conveyor.http import FetchConfig, Request, Response
from conveyor.testing import FakeClock


def test_config_defaults_and_rate_forms() -> None:
    config = FetchConfig(rate="600/min", host_rate=2)
    assert config.rate == 10.0
    assert config.host_rate == 2.0
    assert config.max_bytes == 50 * 1024 * 1024
    assert config.verify_tls
    assert not config.cookies
    assert not config.block_private
    assert config.agent.startswith("conveyor/")
    assert 429 in config.retry_statuses


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"per_host": "8"}, "per_host"),
        ({"rate": "fast"}, "rate"),
        ({"host_rate": -1}, "host_rate"),
        ({"retries": -1}, "retries"),
        ({"timeout": 0}, "timeout"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"jitter": 2}, "jitter"),
        ({"retry_kinds": ["bad-url"]}, "retry_kinds"),
        ({"allow_networks": ["not a net"]}, "allow_networks"),
        ({"block_private": True, "trust_env": True, "cookies": True}, "block_private"),
        ({"block_private": True, "proxy": "http://p:3128", "cookies": True}, "block_private"),
        ({"headers": {"X": 1}}, "headers"),
        ({"headers": {"X": "a\r\nY: b"}}, "headers"),
        ({"headers": {"Bad Name": "v"}}, "headers"),
        ({"headers": {"Content-Length": "0"}}, "headers"),
        ({"headers": {"transfer-encoding": "chunked"}}, "headers"),
        ({"headers": {"Connection": "close"}}, "headers"),
        ({"user_agent": "x\r\nX-Injected: 1"}, "user_agent"),
        ({"user_agent": "a\x00b"}, "user_agent"),
        ({"proxy": "socks5://127.0.0.1:1080"}, "proxy"),
        ({"proxy": ["http://127.0.0.1:3128", "http://:3128"]}, "proxy"),
        ({"proxy": "http://127.0.0.1:3128/path"}, "proxy"),
    ],
)
def test_config_names_the_bad_parameter(options: dict[str, object], named: str) -> None:
    with pytest.raises(UsageError, match=named):
        FetchConfig(**options)  # type: ignore[arg-type]


def test_unknown_option_suggests_the_right_one() -> None:
    with pytest.raises(UsageError, match="per_host"):
        FetchConfig.coerce(None, {"perhost": 4})


def test_request_checks() -> None:
    assert Request("http://e.org/", method="post").method == "POST"
    with pytest.raises(UsageError, match="json"):
        Request("http://e.org/", json={"a": 1}, data=b"x")
    with pytest.raises(UsageError, match="method"):
        Request("http://e.org/", method="FETCH")


def test_retry_after_both_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now=now) == 7.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0 + DATE_MARGIN  # just after the date
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_retry_after_is_capped_and_never_cut_short_by_backoff() -> None:
    config = FetchConfig(max_retry_after=5, backoff=1, jitter=0)
    assert retry_delay(config, 1, 3600.0) == 5
    assert retry_delay(config, 1, 2.0) == 2.0
    assert retry_delay(config, 3, None) == 4.0
    assert retry_delay(config, 3, 2.0) == 4.0  # the longer of the two


@given(st.integers(1, 30), st.floats(0, 1))
def test_backoff_grows_and_stays_within_jitter(attempt: int, rand: float) -> None:
    config = FetchConfig(backoff=0.5, max_backoff=30, jitter=0.5)
    base = min(30.0, 0.5 * 2 ** (attempt - 1))
    assert 0.5 * base <= backoff_delay(config, attempt, rand=lambda: rand) <= 1.5 * base


def test_pacer_spaces_a_host_by_its_rate() -> None:
    clock = FakeClock()
    pacer = HostPacer(host_rate=4, clock=clock)
    waits = [pacer.reserve("a:80") for _ in range(4)]
    assert waits == [0.0, 0.25, 0.5, 0.75]
    assert pacer.reserve("b:80") == 0.0  # hosts are independent


def test_pacer_429_pauses_and_slows_the_host_for_everyone() -> None:
    clock = FakeClock()
    pacer = HostPacer(clock=clock)
    assert pacer.reserve("a:80") == 0.0  # unlimited: no wait, no state
    assert len(pacer) == 0
    pacer.on_throttled("a:80", 2.0)
    assert pacer.pause_remaining("a:80") == 2.0
    assert pacer.reserve("a:80") == 2.0  # the next request waits out the pause
    second = pacer.reserve("a:80")
    assert second > 2.0  # and after it the host stays slowed down
    assert pacer.reserve("b:80") == 0.0
    clock.now += 100
    for _ in range(50):
        pacer.on_success("a:80")
    pacer.forget_idle()
    assert pacer.slowed_hosts() == {}
    assert len(pacer) == 0


def test_decoders_stop_a_bomb_after_one_step() -> None:
    bomb = gzip.compress(bytes(20 * 1024 * 1024), compresslevel=9)
    decoder = decoder_for("gzip")
    assert decoder is not None
    out = decoder.feed(bomb, 1000)
    assert 1000 < sum(map(len, out)) <= 512 * 1024
    bomb_br = brotli.compress(bytes(20 * 1024 * 1024))
    decoder = decoder_for("br")
    assert decoder is not None
    assert 1000 < sum(map(len, decoder.feed(bomb_br, 1000))) <= 512 * 1024


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        (
            "gzip",
            gzip.compress(b"hello ", mtime=0) + gzip.compress(b"world", mtime=0),
        ),  # two members
        ("deflate", zlib.compress(b"hello world")),
        ("deflate", zlib.compress(b"hello world")[2:-4]),  # raw deflate, no zlib header
        ("br", brotli.compress(b"hello world")),
    ],
)
def test_decoders_decode_in_small_pieces(encoding: str, data: bytes) -> None:
    decoder = decoder_for(encoding)
    assert decoder is not None
    out = [part for i in range(len(data)) for part in decoder.feed(data[i : i + 1], 1 << 20)]
    out += decoder.finish(1 << 20)
    assert b"".join(out) == b"hello world"


def test_charset_order_header_meta_detection() -> None:
    text = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 10
    body = text.encode("cp1251")
    assert decode(body, "text/html; charset=windows-1251")[0] == text
    assert decode(body, "text/html; charset=utf-8")[0] == text  # wrong label: detected
    meta = b'<meta charset="windows-1251">' + body
    assert decode(meta, "text/html; charset=utf-8")[0].endswith(text)
    assert decode("héllo".encode(), "text/plain")[0] == "héllo"


@given(
    st.binary(max_size=300), st.sampled_from([None, "text/html; charset=utf-8", "x; charset=nope"])
)
def test_text_never_raises(body: bytes, content_type: str | None) -> None:
    text, _ = decode(body, content_type)
    assert isinstance(text, str)


def test_response_pickles_and_records() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/html; charset=utf-8"}))
    response = Response("http://e.org/", "http://e.org/", 200, "OK", headers, b"<p>hi</p>", 0.5)
    assert response.text == "<p>hi</p>"
    copy = pickle.loads(pickle.dumps(response))
    assert copy.headers["content-type"] == "text/html; charset=utf-8"
    assert copy.text == "<p>hi</p>"
    assert response.__conveyor_record__() == {
        "url": "http://e.org/",
        "final_url": "http://e.org/",
        "status": 200,
        "content_type": "text/html",
        "bytes": 9,
        "elapsed_ms": 500.0,
        "attempts": 1,
    }


def test_response_build_sets_every_field() -> None:
    from dataclasses import fields

    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    values = {f.name: None for f in fields(Response)} | {"headers": headers, "body": b""}
    built = Response.build(**values)
    assert set(vars(built)) == {f.name for f in fields(Response)}


async def test_limits_hand_slots_over_and_survive_cancellation() -> None:
    import asyncio

    from conveyor._http.controller import ControlSettings, HostController
    from conveyor._http.limits import Limits

    controller = HostController(ControlSettings(per_host=5))
    limits = Limits(concurrency=1, controller=controller, rate=None)
    assert limits.try_acquire_nowait("a:80")
    assert not limits.try_acquire_nowait("b:80")  # the one global slot is taken
    waiting = asyncio.ensure_future(limits.acquire("b:80"))
    cancelled = asyncio.ensure_future(limits.acquire("c:80"))
    await asyncio.sleep(0)
    cancelled.cancel()
    limits.release("a:80")  # handed to the first waiter, not put back
    await waiting
    assert limits.per_host_in_flight() == {"b:80": 1}
    assert cancelled.cancelled()
    limits.release("b:80")
    assert limits.in_flight() == 0
    # the cancelled waiter did not keep a slot
    assert limits.try_acquire_nowait("c:80")


async def test_deadlines_time_out_only_what_is_theirs() -> None:
    import asyncio

    from conveyor._http.deadlines import Deadlines

    deadlines = Deadlines(0.05)

    async def exchange(seconds: float) -> str:
        token = deadlines.enter()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if deadlines.timed_out(token):
                return "timeout"
            raise
        finally:
            deadlines.exit(token)
        return "done"

    assert await exchange(0) == "done"
    assert await exchange(5) == "timeout"
    assert deadlines.timed_out(None) is None
    # An outer cancellation is not a timeout, even when the deadline is also past.
    outer = asyncio.ensure_future(exchange(5))
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    deadlines.close()


async def test_read_timeout_counts_silence_not_duration() -> None:
    import asyncio
    from types import SimpleNamespace

    from conveyor._http.deadlines import Deadlines

    deadlines = Deadlines(None, read_timeout=0.2)

    async def exchange(gaps: list[float]) -> str:
        """A response whose bytes arrive after each gap (a stream with a byte count)."""
        token = deadlines.enter()
        stream = SimpleNamespace(total_bytes=0)
        try:
            deadlines.watch(token, stream)
            for gap in gaps:
                await asyncio.sleep(gap)
                stream.total_bytes += 10
        except asyncio.CancelledError:
            expiry = deadlines.timed_out(token)
            if expiry:
                return expiry
            raise
        finally:
            deadlines.exit(token)
        return "done"

    # Twice the read timeout in all, but never silent for long: not a timeout.
    assert await exchange([0.05] * 8) == "done"
    assert await exchange([0.05, 0.05, 1.0]) == "read_timeout"
    deadlines.close()
