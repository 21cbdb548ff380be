"""robots.txt by RFC 9309 (``_crawl/robots.py``): outcomes, reuse, retries, delays."""

from __future__ import annotations

import orjson
import pytest

from conveyor._crawl.robots import (
    MAX_BYTES,
    RobotsEntry,
    RobotsPolicy,
    RobotsRules,
    Verdict,
    robots_entry,
    robots_key,
    robots_url,
)
from conveyor._errors import UsageError
from conveyor.testing import FakeClock

RULES = b"""User-agent: *
Disallow: /private/
Allow: /private/open
Crawl-delay: 2
Sitemap: http://127.0.0.3/sitemap.xml

User-agent: otherbot
Disallow: /
"""


def policy(entry: RobotsEntry, **rules: object) -> RobotsPolicy:
    return RobotsPolicy(entry, rules=RobotsRules(**rules))  # type: ignore[arg-type]


def test_2xx_is_parsed_and_longest_match_wins() -> None:
    entry = robots_entry(now=0.0, status=200, body=RULES)
    assert entry.state == "parsed"
    rules = policy(entry)
    assert rules.check("/public") is Verdict.ALLOW
    assert rules.check("/private/x") is Verdict.DISALLOW
    assert rules.check("/private/open/y") is Verdict.ALLOW
    assert rules.check("/robots.txt") is Verdict.ALLOW
    assert rules.delay == 2.0
    assert rules.sitemaps == ("http://127.0.0.3/sitemap.xml",)
    assert policy(entry, user_agent="otherbot").check("/public") is Verdict.DISALLOW


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_4xx_allows_everything(status: int) -> None:
    entry = robots_entry(now=0.0, status=status, body=b"<html>Not found</html>")
    assert entry.state == "allow-all"
    assert policy(entry).check("/anything") is Verdict.ALLOW


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, None), (500, None), (503, None), (None, "dns"), (None, "connect"), (None, "timeout")],
)
def test_errors_pause_the_host_then_defer_never_allow(status: int | None, error: str) -> None:
    clock = FakeClock(1000.0)
    entry = robots_entry(now=clock(), status=status, error=error)
    assert entry.state == "unreachable"
    assert policy(entry).check("/page") is Verdict.WAIT
    waits = []
    for _ in range(3):  # retried after 5, 10, 20 minutes
        assert entry.retry_at is not None
        assert entry.usable(clock())
        waits.append(entry.retry_at - clock())
        clock.now = entry.retry_at
        assert not entry.usable(clock())
        entry = robots_entry(now=clock(), status=status, error=error, previous=entry)
        assert policy(entry).check("/page") is not Verdict.ALLOW
    assert waits == [300.0, 600.0, 1200.0]
    rules = policy(entry)
    assert rules.check("/page") is Verdict.DEFER
    assert rules.check("/robots.txt") is Verdict.ALLOW
    assert rules.defer_reason is not None
    assert "unreachable" in rules.defer_reason
    assert entry.usable(clock() + 10**6)  # given up: not asked again this run


def test_503_then_200_lifts_the_pause() -> None:
    entry = robots_entry(now=0.0, status=503)
    entry = robots_entry(now=300.0, status=200, body=RULES, previous=entry)
    assert entry.state == "parsed"
    assert entry.failures == 0
    assert policy(entry).check("/public") is Verdict.ALLOW


def test_too_many_redirects_is_unavailable() -> None:
    entry = robots_entry(now=0.0, error="too-many-redirects")
    assert entry.state == "allow-all"
    assert robots_entry(now=0.0, status=302).state == "allow-all"
    assert robots_entry(now=0.0, status=200, body=RULES, redirects=6).state == "allow-all"
    assert robots_entry(now=0.0, status=200, body=RULES, redirects=5).state == "parsed"


def test_one_robots_txt_per_scheme_host_and_port() -> None:
    assert robots_url("HTTP://Example.COM/a/b?c") == "http://example.com:80/robots.txt"
    assert robots_key("https://example.com/") == "https://example.com:443"
    assert robots_key("http://example.com:443/") != robots_key("https://example.com/")


def test_a_good_copy_stays_in_force_while_unreachable() -> None:
    good = robots_entry(now=0.0, status=200, body=RULES)
    day = 24 * 3600.0
    assert good.usable(day - 1)
    assert not good.usable(day)
    stale = robots_entry(now=day, status=503, previous=good)
    assert stale.state == "parsed"
    assert stale.stale
    assert stale.retry_at == day + 300.0
    assert policy(stale).check("/private/x") is Verdict.DISALLOW
    assert policy(stale).check("/public") is Verdict.ALLOW
    # After 30 days without a good answer, the old copy no longer counts.
    gone = robots_entry(now=31 * day, status=503, previous=stale)
    assert gone.state == "unreachable"


def test_only_500_kib_are_read_cut_at_a_line_end() -> None:
    filler = b"# " + b"x" * 97 + b"\n"
    body = b"User-agent: *\n" + filler * (MAX_BYTES // len(filler)) + b"Disallow: /late\n"
    entry = robots_entry(now=0.0, status=200, body=body)
    assert len(entry.text) <= MAX_BYTES
    assert entry.text.endswith("\n")
    assert policy(entry).check("/late") is Verdict.ALLOW  # past 500 KiB: not read
    half = b"User-agent: *\n" + b"#" * (MAX_BYTES - 30) + b"\nDisallow: /privateXYZ\n"
    cut = robots_entry(now=0.0, status=200, body=half)
    assert "Disallow: /priv" not in cut.text  # not half a rule (which would block /priv...)


def test_crawl_delay_and_request_rate_and_the_cap() -> None:
    rate = robots_entry(now=0.0, status=200, body=b"User-agent: *\nRequest-rate: 1/5\n")
    assert policy(rate).delay == 5.0
    both = b"User-agent: *\nCrawl-delay: 3\nRequest-rate: 2/1\n"
    assert policy(robots_entry(now=0.0, status=200, body=both)).delay == 3.0
    slow = robots_entry(now=0.0, status=200, body=b"User-agent: *\nCrawl-delay: 120\n")
    rules = policy(slow)
    assert rules.check("/a") is Verdict.DEFER
    assert rules.defer_reason == "robots.txt asks for 120 s between requests, over the 30 s cap"
    assert policy(slow, max_delay=300.0).check("/a") is Verdict.ALLOW
    # The most specific group wins, and * then does not apply: no delay for conveyor.
    own = b"User-agent: *\nCrawl-delay: 9\n\nUser-agent: conveyor\nDisallow: /x\n"
    assert policy(robots_entry(now=0.0, status=200, body=own)).delay is None


def test_entries_survive_the_journal_as_json() -> None:
    for entry in [
        robots_entry(now=5.0, status=200, body=RULES),
        robots_entry(now=5.0, status=404),
        robots_entry(now=5.0, error="dns"),
    ]:
        data = orjson.loads(orjson.dumps(entry.to_json()))
        assert RobotsEntry.from_json(data) == entry


def test_decisions_are_memoised_by_path_for_a_heavy_file_only() -> None:
    # A small file's check costs less than the memo, and a crawl keeps a policy for each
    # of thousands of hosts: no memo there. A heavy file (milliseconds a check) has one.
    small = policy(robots_entry(now=0.0, status=200, body=RULES))
    wildcards = b"".join(b"Disallow: /*.x%d$\n" % n for n in range(6000))  # ~110 KiB
    heavy_body = RULES.replace(b"Crawl-delay: 2\n", b"Crawl-delay: 2\n" + wildcards)
    heavy = policy(robots_entry(now=0.0, status=200, body=heavy_body))
    assert (small.heavy, heavy.heavy) == (False, True)
    for rules in (small, heavy):
        for _ in range(3):
            assert rules.check("/private/x") is Verdict.DISALLOW
    assert small.check("/public/a.x7") is Verdict.ALLOW
    assert heavy.check("/public/a.x7") is Verdict.DISALLOW
    stats = small.statistics()
    assert (stats.checks, stats.memo_hits, stats.disallowed) == (4, 0, 3)
    stats = heavy.statistics()
    assert (stats.checks, stats.memo_hits, stats.disallowed) == (4, 2, 4)
    memoised = RobotsPolicy(robots_entry(now=0.0, status=200, body=RULES), memo=16)
    for _ in range(3):
        memoised.check("/private/x")
    assert memoised.statistics().memo_hits == 2


def test_empty_and_html_bodies_allow_everything() -> None:
    for body in [b"", b"<html><body>Welcome</body></html>"]:
        assert policy(robots_entry(now=0.0, status=200, body=body)).check("/x") is Verdict.ALLOW


def test_bad_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="max_delay"):
        RobotsRules(max_delay=0)
    with pytest.raises(UsageError, match="retries"):
        RobotsRules(retries=-1)
