"""The main job, timed as a user would time it: `conveyor fetch` against the script it replaces.

    .venv/bin/python benchmarks/pages.py                 # every case, 3 interleaved repeats
    .venv/bin/python benchmarks/pages.py --quick         # 20,000 URLs, 1 repeat
    .venv/bin/python benchmarks/pages.py --only cores --repeats 5

Every contender is a command started fresh (``time`` as a user would run it: interpreter
start-up, imports, reading the URL file and writing one JSON line per URL all included),
against nginx serving 100 HTML pages of 5-20 KB (``_servers.site_pages``) on 64 loopback
hosts (127.0.0.1-64, one port), or on one. The peer, "the script", is ``lean_script.py``:
aiohttp + ``gather`` + a semaphore on uvloop, a case-sensitive ``<title>`` regex and
``<a href`` counted, as most users write it (``gather_script.py``, case-folding regexes,
does more than it needs: ~15% slower, which would flatter conveyor). ``conveyor fetch``
runs with its default flags apart from ``--per-host`` (and ``-q``): ``--loops auto``, a
journal, the full record (title, description, links, sha256 ...). CPU is the user +
system time of the command and every process it started.

Cases:
1. one-loop: N URLs, concurrency 100: the script; ``gather_script.py``; the library
   pipeline with a plain function after ``fetch`` (``lib_job.py``, one loop);
   ``conveyor fetch --loops 1``.
2. cores: the same job, 64 hosts, with ``conveyor fetch`` (defaults) and ``--loops 2``,
   against one copy of the script and two copies each on half the URLs (the ceiling).
3. one-host: the same on one host (``--per-host 100``): a loop per core only if a host's
   URLs are spread over the loops.
4. latency: 50,000 URLs answered after 100 ms (``_servers.delay_server``, 64 hosts),
   concurrency 500 (``--concurrency 500 --per-host 500``, else defaults): wall time against
   the ideal N x 0.1 / 500.
5. start-up: ``conveyor --help``, ``conveyor fetch --help`` and a one-URL fetch.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PYTHON = sys.executable
CONVEYOR = [PYTHON, "-m", "conveyor"]
HOSTS = 64

Command = Callable[[Path, Path], list[list[str]]]  # (urls, out) -> commands run together


PEER = "lean_script.py"


def script(c: int, name: str = PEER) -> Command:
    return lambda urls, out: [[PYTHON, str(HERE / name), str(urls), str(out), str(c)]]


def two_scripts(c: int) -> Command:
    """Two copies of the script, each on half of the URLs: what two cores can give."""

    def commands(urls: Path, out: Path) -> list[list[str]]:
        lines = urls.read_text().splitlines(keepends=True)
        halves = []
        for part, chunk in enumerate((lines[::2], lines[1::2])):
            path = urls.with_suffix(f".half{part}")
            path.write_text("".join(chunk))
            halves.append(path)
        peer = str(HERE / PEER)
        return [[PYTHON, peer, str(h), f"{out}.{i}", str(c)] for i, h in enumerate(halves)]

    return commands


def library(c: int) -> Command:
    return lambda urls, out: [[PYTHON, str(HERE / "lib_job.py"), str(urls), str(out), str(c)]]


def cli(c: int, loops: str, per_host: int | None = None) -> Command:
    host = ["--per-host", str(per_host or c)]
    return lambda urls, out: [
        [*CONVEYOR, "fetch", str(urls), "-o", str(out), "--concurrency", str(c), *host,
         "--loops", loops, "-q", "--no-journal"]
    ]  # fmt: skip


def defaults(per_host: int, *flags: str) -> Command:
    """``conveyor fetch`` with its default flags apart from ``--per-host`` (and ``flags``)."""
    return lambda urls, out: [
        [*CONVEYOR, "fetch", str(urls), "-o", str(out), "--per-host", str(per_host), *flags,
         "-q"]
    ]  # fmt: skip


def measure(commands: list[list[str]], outputs: list[Path], expected: int) -> dict[str, float]:
    """Run the commands at once; wall seconds, CPU seconds (all descendants), lines out."""
    for path in outputs:
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for cmd in commands
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{commands[0][:4]} failed: {err.decode()[-800:]}")
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = sum(
        sum(1 for _ in p.open("rb"))
        for out in outputs
        for p in out.parent.glob(out.name + "*")
        if not p.name.endswith(".journal")
    )
    if lines != expected:
        raise SystemExit(f"{commands[0][:4]} wrote {lines} lines, not {expected}")
    return {"wall": wall, "cpu": cpu}


def interleaved(
    contenders: dict[str, Command], urls: Path, n: int, repeats: int, folder: Path
) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, make in contenders.items():
            out = folder / f"{name.replace(' ', '_')}.jsonl"
            commands = make(urls, out)
            outputs = [out] if len(commands) == 1 else [Path(c[3]) for c in commands]
            runs[name].append(measure(commands, outputs, n))
            print(f"  {name}: {runs[name][-1]['wall']:.2f} s", flush=True)
    return runs


def table(title: str, runs: dict[str, list[dict[str, float]]], n: int, peer: str) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| contender | median wall s (runs) | pages/s | CPU ms per page | vs the script |",
    ]
    lines.append("| --- | --- | --- | --- | --- |")
    theirs = statistics.median(r["wall"] for r in runs[peer])
    for name, measured in runs.items():
        wall = statistics.median(r["wall"] for r in measured)
        each = " / ".join(f"{r['wall']:.2f}" for r in measured)
        cpu = statistics.median(r["cpu"] for r in measured)
        ratio = f"{theirs / wall:.2f}x" if name != peer else ""
        lines.append(
            f"| {name} | {wall:.2f} ({each}) | {n / wall:,.0f} | {cpu / n * 1000:.3f} | {ratio} |"
        )
    return [*lines, ""]


def startup(repeats: int, base: str, folder: Path) -> list[str]:
    one = folder / "one.txt"
    one.write_text(f"{base}/site/100001\n")
    cases = {
        "conveyor --help": [*CONVEYOR, "--help"],
        "conveyor fetch --help": [*CONVEYOR, "fetch", "--help"],
        "conveyor fetch (one URL)": [
            *CONVEYOR, "fetch", str(one), "-o", str(folder / "one.jsonl"), "-q", "--restart"
        ],
    }  # fmt: skip
    lines = ["### start-up", "", "| command | median s |", "| --- | --- |"]
    for name, cmd in cases.items():
        times = []
        for _ in range(max(5, repeats)):
            began = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - began)
        lines.append(f"| `{name}` | {statistics.median(times):.3f} |")
    return [*lines, ""]


def compile_sources() -> None:
    """Byte-compile conveyor's sources as installing its wheel does. An editable install
    compiles them on first import, unless PYTHONDONTWRITEBYTECODE is set (it is on these
    machines): then every command would compile ~160 modules again (~0.2 s of start-up)."""
    import compileall

    import conveyor

    compileall.compile_dir(Path(conveyor.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("-n", type=int, help="URLs for the throughput cases (default 100,000)")
    parser.add_argument(
        "--only", nargs="+", choices=["one-loop", "cores", "one-host", "latency", "startup"]
    )
    options = parser.parse_args()
    from _servers import delay_server, host_urls, nginx

    compile_sources()

    repeats = options.repeats or (1 if options.quick else 3)
    n = options.n or (20_000 if options.quick else 100_000)
    only = set(options.only or ["one-loop", "cores", "one-host", "latency", "startup"])
    report = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{repeats} interleaved repeat(s), {n:,} URLs, load average before "
        f"{os.getloadavg()[0]:.2f}",
        "",
    ]
    print(report[0], flush=True)
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:  # the real disk, not a tmpfs
        folder = Path(tmp)
        with nginx(hosts=HOSTS) as base:
            urls = folder / "urls.txt"
            urls.write_text("\n".join(host_urls(base, n, HOSTS)) + "\n")
            c = 100
            if "one-loop" in only:
                print("one-loop", flush=True)
                runs = interleaved({
                    "the script": script(c),
                    "gather_script.py (case-folding regexes)": script(c, "gather_script.py"),
                    "library: fetch + map(fn)": library(c),
                    "conveyor fetch --loops 1": cli(c, "1"),
                }, urls, n, repeats, folder)  # fmt: skip
                report += table(f"one loop: {n:,} URLs, concurrency {c}", runs, n, "the script")
            if "cores" in only:
                print("cores", flush=True)
                runs = interleaved({
                    "the script": script(c),
                    "two scripts, half each": two_scripts(c // 2),
                    "conveyor fetch --per-host 100 (defaults)": defaults(c),
                    "conveyor fetch --loops 2": cli(c, "2"),
                }, urls, n, repeats, folder)  # fmt: skip
                report += table(
                    f"every core, {HOSTS} hosts: {n:,} URLs, concurrency {c}",
                    runs,
                    n,
                    "the script",
                )
            if "one-host" in only:
                print("one-host", flush=True)
                one = folder / "one-host.txt"
                one.write_text("\n".join(host_urls(base, n, 1)) + "\n")
                runs = interleaved({
                    "the script": script(c),
                    "two scripts, half each": two_scripts(c // 2),
                    "conveyor fetch --per-host 100 (defaults)": defaults(c),
                }, one, n, repeats, folder)  # fmt: skip
                report += table(
                    f"every core, one host: {n:,} URLs, concurrency {c}", runs, n, "the script"
                )
            if "startup" in only:
                report += startup(repeats, base, folder)
        if "latency" in only:
            print("latency", flush=True)
            n_lat, c_lat, delay = (10_000 if options.quick else 50_000), 500, 0.1
            with delay_server(delay, hosts=HOSTS) as base:
                urls = folder / "slow.txt"
                urls.write_text("\n".join(host_urls(base, n_lat, HOSTS, "/")) + "\n")
                runs = interleaved({
                    "the script": script(c_lat),
                    "conveyor fetch --concurrency 500 --per-host 500 (defaults)": defaults(
                        c_lat, "--concurrency", str(c_lat)
                    ),
                    "conveyor fetch ... --loops 1": cli(c_lat, "1"),
                }, urls, n_lat, repeats, folder)  # fmt: skip
            ideal = n_lat * delay / c_lat
            report += table(
                f"latency: {n_lat:,} URLs at {delay * 1000:.0f} ms, concurrency {c_lat} "
                f"(ideal {ideal:.1f} s)",
                runs,
                n_lat,
                "the script",
            )
            for name, measured in runs.items():
                wall = statistics.median(r["wall"] for r in measured)
                report.append(f"- {name}: {ideal / wall:.2f} of ideal")
            report.append("")
    report.append(f"load average after: {os.getloadavg()[0]:.2f}")
    text = "\n".join(report)
    print(text)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"pages-{'quick' if options.quick else 'full'}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
