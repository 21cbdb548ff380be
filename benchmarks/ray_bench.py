"""What Ray buys and what it costs (``backend="ray"``; see docs/scale.md).

1. A CPU-bound pure-Python stage (~2 ms an item) over ``--items`` items: a 2-node Ray
   cluster (1 CPU each) against a 1-node one, against ``on="processes"`` (2 workers) on
   this machine, and against one core inline.
2. A fetch job: ``conveyor fetch`` with ``--backend ray`` on the 2-node cluster against the
   same command without Ray (``--loops 1``), ``--urls`` URLs over 4 hosts of the delay
   server (10 ms a response).

Clusters are ``ray.cluster_utils.Cluster`` nodes on 127.0.0.1 (both "nodes" share this
machine's cores: the figure is what sharding costs and how it scales, not a real second
machine). Cluster start-up is reported apart and not counted in the runs. Medians of
``--repeats``. Run: ``.venv/bin/python benchmarks/ray_bench.py`` (needs the ray extra).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes on 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback-only cluster
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "src"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")) if p
)

from _servers import delay_server  # noqa: E402

from conveyor import Pipeline  # noqa: E402


class Burn:
    """~2 ms of pure Python (holds the GIL) an item: ``loops`` is calibrated at start. A
    class instance, so the count travels with it to Ray tasks and spawned processes."""

    def __init__(self, loops: int) -> None:
        self.loops = loops

    def __call__(self, item: int) -> dict[str, int]:
        total = item
        for i in range(self.loops):
            total = (total * 31 + i) % 1_000_003
        return {"n": item, "h": total}


def calibrate() -> Burn:
    probe = Burn(20_000)
    start = time.perf_counter()
    for n in range(200):
        probe(n)
    per_item = (time.perf_counter() - start) / 200
    return Burn(int(20_000 * 0.002 / per_item))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cluster(nodes: int) -> tuple[object, str, float]:
    from ray.cluster_utils import Cluster

    start = time.perf_counter()
    made = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    for _ in range(nodes - 1):
        made.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    made.wait_for_nodes()
    return made, str(made.address), time.perf_counter() - start


def cpu_on_ray(burn: Burn, address: str, items: int, shards: int, work: Path) -> float:
    out = work / "cpu-ray.jsonl"
    shutil.rmtree(out, ignore_errors=True)
    pipeline = Pipeline(range(items), key=lambda n: n).map(burn, on="inline")
    return timed(lambda: pipeline.run(str(out), backend="ray", shards=shards, address=address))


def cpu_local(burn: Burn, items: int, on: str, work: Path) -> float:
    out = work / "cpu-local.jsonl"
    out.unlink(missing_ok=True)
    workers = 2 if on == "processes" else None
    pipeline = Pipeline(range(items)).map(burn, on=on, workers=workers)  # type: ignore[arg-type]
    return timed(lambda: pipeline.run(str(out)))


def fetch_cli(urls: Path, out: Path, extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.unlink(missing_ok=True) if out.is_file() else None
    for stale in out.parent.glob(out.name + ".journal*"):
        stale.unlink()
    command = [sys.executable, "-m", "conveyor", "fetch", str(urls), "-o", str(out), "-q"]
    start = time.perf_counter()
    subprocess.run([*command, *extra], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--urls", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    burn = calibrate()
    print(f"calibrated: {burn.loops} loops ≈ 2 ms an item; {os.cpu_count()} cores here")
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for nodes in (2, 1):
            made, address, started = cluster(nodes)
            print(f"{nodes}-node cluster started in {started:.1f} s")
            ray.init(address=address, log_to_driver=False)
            try:
                cpu_on_ray(burn, address, 50, 2, work)  # warm the workers
                for _ in range(args.repeats):
                    t = cpu_on_ray(burn, address, args.items, 2, work)
                    figures.setdefault(f"cpu: ray, {nodes} node(s), 2 shards", []).append(t)
                if nodes == 2:
                    with delay_server(0.01, hosts=4) as base:
                        port = base.rsplit(":", 1)[1]
                        urls = work / "urls.txt"
                        urls.write_text(
                            "".join(
                                f"http://127.0.0.{n % 4 + 1}:{port}/p{n}\n"
                                for n in range(args.urls)
                            )
                        )
                        for _ in range(args.repeats):
                            no_ray = fetch_cli(urls, work / "f.jsonl", ["--loops", "1"])
                            on_ray = fetch_cli(
                                urls, work / "fr.jsonl",
                                ["--backend", "ray", "--address", address, "--shards", "4"],
                            )  # fmt: skip
                            figures.setdefault("fetch: without ray (--loops 1)", []).append(no_ray)
                            figures.setdefault("fetch: ray, 2 nodes, 4 shards", []).append(on_ray)
            finally:
                ray.shutdown()
                made.shutdown()  # type: ignore[attr-defined]
        for _ in range(args.repeats):
            figures.setdefault("cpu: processes, 2 workers, no ray", []).append(
                cpu_local(burn, args.items, "processes", work)
            )
            figures.setdefault("cpu: inline, 1 core, no ray", []).append(
                cpu_local(burn, args.items, "inline", work)
            )
    print(f"\n{args.items} CPU items, {args.urls} URLs; medians of {args.repeats}:")
    for name, times in figures.items():
        runs = " / ".join(f"{t:.2f}" for t in times)
        print(f"  {name:40s} {statistics.median(times):7.2f} s   ({runs})")
    one = statistics.median(figures["cpu: ray, 1 node(s), 2 shards"])
    two = statistics.median(figures["cpu: ray, 2 node(s), 2 shards"])
    print(f"  2 nodes vs 1 node: {one / two:.2f}x")


if __name__ == "__main__":
    main()
