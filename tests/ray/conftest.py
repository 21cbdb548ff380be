"""The Ray tier (``pytest -m ray``): a 2-node Ray cluster on 127.0.0.1, a test site in this
process (so its counters can be read), and ``conveyor`` run as a subprocess driver.

See docs/scale.md and ../shared/notes on Ray and loopback: the variables below must be set
before Ray starts, or its nodes bind the network interface's address.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes on 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a loopback-only test cluster
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray's workers inherit this: they must import this tree's conveyor, not another checkout's.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.ray)
            # On 2 cores kept busy, Ray starts each shard's worker process slowly: a test
            # of two runs of 4 shards took past the suite's 120 s (waiting in ray.wait).
            item.add_marker(pytest.mark.timeout(240))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """Two nodes of one CPU each; yields the address a driver connects to."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
        },
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    try:
        yield str(cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


class SiteThread:
    """A test site served by a thread here: by default the test site on four loopback
    addresses (four hosts); ``serve`` opens another (the crawl site)."""

    def __init__(self, serve: Callable[[], AbstractAsyncContextManager[Any]] | None = None):
        self.site: Any = None  # what ``serve`` yields: a RunningSite by default
        self._open = serve or _four_hosts
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._open() as site:
            self.site = site
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _four_hosts() -> AbstractAsyncContextManager[Any]:
    from conveyor.testing.site import run_site

    return run_site(("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"))


@pytest.fixture(scope="session")
def ray_site() -> Iterator[SiteThread]:
    site = SiteThread()
    yield site
    site.close()


def conveyor(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``conveyor ARGS`` as a subprocess (the Ray driver), output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
