"""``conveyor fetch --proxy`` / ``--trust-env``, and what the command says of header values
and proxy URLs it cannot use: one line, the fix in it, no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from .test_proxy import raw_proxy, with_credentials

ROOT = Path(__file__).resolve().parents[2]


async def conveyor(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the command in a process of its own (the proxy serves on this loop meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", *args,
        cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_fetch_through_proxies_from_the_options_and_the_environment(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"http://host-{n}.test/page\n" for n in range(6)))
    async with raw_proxy(b"<title>via A</title>") as a, raw_proxy(b"<title>via B</title>") as b:
        code, out = await conveyor(
            "fetch", str(urls), "-o", "named.jsonl", "--no-journal", "-q", "--loops", "1",
            "--proxy", a.base, "--proxy", with_credentials(b.base, "u:p"), cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, out
        rows = [json.loads(line) for line in (tmp_path / "named.jsonl").read_text().splitlines()]
        assert {row["status"] for row in rows} == {200}
        assert {row["title"] for row in rows} == {"via A", "via B"}
        assert len(a.heads) + len(b.heads) == 6
        env = {"HTTP_PROXY": a.base, "NO_PROXY": ""}
        code, out = await conveyor(
            "fetch", str(urls), "-o", "env.jsonl", "--no-journal", "-q", "--loops", "1",
            "--trust-env", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert code == 0, out
        rows = [json.loads(line) for line in (tmp_path / "env.jsonl").read_text().splitlines()]
        assert {row["title"] for row in rows} == {"via A"}


async def test_what_cannot_be_sent_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/\n")
    for option, value, words in [
        ("--user-agent", "x\r\nX-Injected: 1", "line break"),
        ("--header", "X-Bad: a\x07b", "control character"),
        ("--header", "Content-Length: 0", "drop it"),
        ("--proxy", "socks5://127.0.0.1:1080", "write http://host:port"),
    ]:
        code, out = await conveyor(
            "fetch", str(urls), "-o", "out.jsonl", "--no-journal", "-q", option, value,
            cwd=tmp_path,
        )  # fmt: skip
        assert code == 2, out
        assert words in out
        assert "Traceback" not in out
        assert len(out.strip().splitlines()) == 1, out
