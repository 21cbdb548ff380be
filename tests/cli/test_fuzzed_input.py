"""A URL list of 100,000 fuzzed lines: every distinct line ends as exactly one record,
whatever characters it holds, with no traceback, and a second run adds nothing."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from .conftest import Site, run_cli


def fuzzed_lines(site: Site, n: int, seed: int = 5) -> list[str]:
    """Half of ``n`` distinct lines, repeated to ``n``. None needs a DNS lookup: a host
    name either is malformed (refused before any network) or is 127.0.0.1."""
    rng = random.Random(seed)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    templates = [
        "http://exa\x00mple.com/{i}",  # NUL inside
        "http://host\x01\x02/{i}",  # other control characters
        "ftp://files.example/{i}",  # a scheme we do not fetch
        "http://example.com:99999/{i}",  # a port out of range
        "http://example.com:-1/{i}",
        "http://[::1/{i}",  # a broken IPv6 literal
        "javascript:alert({i})",
        "http:///no-host/{i}",
        "not a url at all {i}",
        "x" * 4000 + "{i}",  # a huge line
        closed + "/ünïcödé/\u2028{i}",  # a line separator that is no newline
        closed + "/page?q={i}",  # a connect error
        "\x7f\x1b[31m{i}",  # DEL and an escape sequence
    ]
    distinct = [rng.choice(templates).format(i=i) for i in range(n // 2)]
    distinct += [site.url(f"/page/{i}") for i in range(40)]  # some that work
    lines = distinct + [rng.choice(distinct) for _ in range(n - len(distinct))]  # repeats
    rng.shuffle(lines)
    return lines


def test_every_distinct_fuzzed_line_ends_once_and_a_rerun_adds_nothing(
    site: Site, tmp_path: Path
) -> None:
    lines = fuzzed_lines(site, 100_000)
    (tmp_path / "urls.txt").write_text("".join(line + "\n" for line in lines), "utf-8")
    expected = {line.strip() for line in lines}
    # --no-adapt: the lines' thousands of URLs to a closed port would open its breaker
    # and be deferred (tests/polite covers that); here the input's handling is tested.
    for attempt in (1, 2):
        result = run_cli(
            "fetch", "urls.txt", "-o", "out.jsonl", "-q", "--retries", "0", "--no-adapt",
            cwd=tmp_path,
            timeout=240,
        )  # fmt: skip
        assert result.code == 0, result.err[-2000:]
        assert "Traceback" not in result.err
        records = [
            orjson.loads(line)
            for line in (tmp_path / "out.jsonl").read_bytes().split(b"\n")
            if line
        ]
        urls = [r["url"] for r in records]
        assert len(urls) == len(set(urls)), f"run {attempt}: a line ended twice"
        assert set(urls) == expected, f"run {attempt}"
    ok = [r for r in records if r["status"] == 200]
    assert len(ok) == 40
    assert all(r["error_kind"] for r in records if r["status"] is None)
