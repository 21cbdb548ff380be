"""The fetch on several loop processes (``run(loops=N)``), against the real test site.

Limits are proven by what the server saw (in flight per host, early arrivals after a
429), a killed loop process by every item still ending once, never by timings.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import conveyor as cv
from conveyor._engine.loops import resolve_loops, route_index, start_ahead
from conveyor._http.hosts import host_key
from conveyor._pipeline.fetch import ClientFactory, fetch_stage
from conveyor.testing import RunningSite, run_site

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


def status_of(response: Any) -> tuple[str, int]:
    """A module-level plain function: it runs inside the loop processes."""
    return response.url, response.status


@pytest.fixture
async def four_hosts() -> Any:
    async with run_site(HOSTS) as running:
        yield running


def urls_over(site: RunningSite, n: int, path: str) -> list[str]:
    return [site.url(f"{path}{i}", host=i % len(site.bases)) for i in range(n)]


async def test_every_url_once_and_per_host_limit_holds_across_loops(
    four_hosts: RunningSite,
) -> None:
    urls = [u + "?delay=0.02" for u in urls_over(four_hosts, 120, "/page/")]
    out: list[Any] = []
    result = await (
        cv.Pipeline(urls)
        .fetch(concurrency=24, per_host=3)
        .map(status_of, on="inline")
        .run_async(sink=out, loops=2)
    )
    assert result.results == 120
    assert result.failed == 0
    assert sorted(out) == sorted((u, 200) for u in urls)
    for index in range(len(HOSTS)):
        assert four_hosts.stats.max_in_flight[four_hosts.host(index)] <= 3
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("conveyor-loop")]


async def test_concurrency_is_one_budget_across_loops(four_hosts: RunningSite) -> None:
    # Busy hosts on both loops: never more than `concurrency` requests out in all.
    urls = [u + "?delay=0.05" for u in urls_over(four_hosts, 80, "/page/")]
    result = await cv.Pipeline(urls).fetch(concurrency=5, per_host=5).run_async(loops=2)
    assert result.results == 80
    assert 1 <= four_hosts.stats.max_in_flight_total <= 5


async def test_a_loop_owning_the_only_busy_host_may_use_the_whole_budget(
    four_hosts: RunningSite,
) -> None:
    one_host = [four_hosts.url(f"/page/{i}?delay=0.05") for i in range(60)]
    result = await cv.Pipeline(one_host).fetch(concurrency=6, per_host=6).run_async(loops=2)
    assert result.results == 60
    assert four_hosts.stats.max_in_flight_total == 6


async def test_a_429_pause_holds_for_its_host_with_two_loops(four_hosts: RunningSite) -> None:
    # per_host=1 (as in test_retries): the others wait behind the one that gets the 429; the
    # host's one loop keeps them all waiting out the pause, however many loops there are.
    throttled = [four_hosts.url(f"/throttled/{i}?after=1") for i in range(10)]
    others = urls_over(four_hosts, 40, "/page/")
    result = await (
        cv.Pipeline(throttled + others)
        .fetch(concurrency=8, per_host=1, retries=3, backoff=0.01)
        .run_async(loops=2)
    )
    assert result.results == 50
    assert four_hosts.stats.state.get("throttled-early", 0) == 0


async def test_a_killed_loop_process_fails_nothing_its_items_are_sent_again(
    four_hosts: RunningSite,
) -> None:
    urls = [u + "?delay=0.2" for u in urls_over(four_hosts, 60, "/page/")]
    killed: list[int] = []

    async def kill_one_loop() -> None:
        while not killed:
            await asyncio.sleep(0.05)
            loops = [p for p in multiprocessing.active_children() if p.name == "conveyor-loop-0"]
            if loops and sum(four_hosts.stats.hits.values()) >= 10 and loops[0].pid:
                os.kill(loops[0].pid, signal.SIGKILL)
                killed.append(loops[0].pid)

    killer = asyncio.create_task(kill_one_loop())
    out: list[Any] = []
    result = await cv.Pipeline(urls).fetch(concurrency=20, per_host=5).run_async(sink=out, loops=2)
    killer.cancel()
    assert killed, "the loop process was never killed"
    assert result.failed == 0
    assert result.results == 60
    assert sorted(r.url for r in out) == sorted(urls)
    assert result.stages[0].restarts >= 1


def test_route_keys_are_host_and_port_and_stable() -> None:
    assert host_key("http://User@Example.com:8080/a?b#c") == "example.com:8080"
    assert host_key("https://example.com") == "example.com:443"
    assert host_key("not a url") == "not a url"
    assert host_key(cv.Request("http://h:1/x")) == "h:1"
    # Stable across processes and runs (not Python's salted hash()).
    assert route_index("example.com:8080", 2) == route_index("example.com:8080", 2)
    assert {route_index(f"h{i}:80", 4) for i in range(100)} == {0, 1, 2, 3}


def test_loops_argument_is_checked_and_auto_counts_the_source() -> None:
    assert resolve_loops(3, []) == 3
    assert resolve_loops("auto", ["u"] * 10) == 1
    cores = len(os.sched_getaffinity(0))
    assert resolve_loops("auto", ["u"] * 20_000) == (cores if cores > 1 else 1)
    with pytest.raises(cv.UsageError, match="loops=0"):
        resolve_loops(0, [])


def test_a_lambda_after_fetch_stays_in_the_parent_and_still_runs(tmp_path: Any) -> None:
    async def main() -> cv.RunResult:
        async with run_site(HOSTS[:2]) as site:
            urls = urls_over(site, 20, "/page/")
            out: list[Any] = []
            result = await (
                cv.Pipeline(urls)
                .fetch(concurrency=4)
                .map(lambda r: r.status, on="inline")
                .run_async(sink=out, loops=2)
            )
            assert out == [200] * 20
            return result

    assert asyncio.run(main()).results == 20


def pid_of(response: Any) -> int:
    """Which process made the row: a loop process, when it runs in the head."""
    return os.getpid()


async def pids_of_a_run(site: RunningSite, loops: Any) -> list[int]:
    """Run 30 URLs with concurrency 5 on ``loops``; which process made each row."""
    urls = urls_over(site, 30, "/page/")
    out: list[int] = []
    result = await (
        cv.Pipeline(urls)
        .fetch(concurrency=5, per_host=5)
        .map(pid_of, on="inline")
        .run_async(sink=out, loops=loops)
    )
    assert result.results == 30
    return out


async def test_loop_processes_started_ahead_are_taken_over(four_hosts: RunningSite) -> None:
    warm = start_ahead(2, shared=5)
    started = {process.pid for process in multiprocessing.active_children()}
    pids = await pids_of_a_run(four_hosts, warm)
    assert set(pids) <= started  # made in the processes started ahead, none fresh
    assert len(set(pids)) == 2  # per_host=5 divides: every host's URLs go to both


async def test_loop_processes_started_ahead_for_another_shape_are_replaced(
    four_hosts: RunningSite,
) -> None:
    # Started to share 7 slots; the run's fetch shares 5: those end, and fresh ones serve.
    warm = start_ahead(2, shared=7)
    ahead = multiprocessing.active_children()
    pids = await pids_of_a_run(four_hosts, warm)
    assert not set(pids) & {process.pid for process in ahead}
    assert not [process for process in ahead if process.is_alive()]
    assert four_hosts.stats.max_in_flight_total <= 5


def explode(response: Any) -> Any:
    """Raises in the loop process, after the fetch (module-level: it runs in the head)."""
    raise ValueError(f"no thanks: {response.status}")


@pytest.mark.parametrize("loops", [1, 2])
async def test_a_function_raising_in_the_head_keeps_its_traceback(
    four_hosts: RunningSite, loops: int
) -> None:
    # One description of a failure in another process (outcomes.RemoteFailure), made
    # where it happened: the same Failure as on one loop, traceback included.
    urls = urls_over(four_hosts, 8, "/page/")
    pipeline = cv.Pipeline(urls).fetch(concurrency=4).map(explode, on="inline")
    result = await pipeline.run_async(loops=loops)
    assert result.failed == 8
    for failure in result.failures:
        assert (failure.stage, failure.kind, failure.error_type) == (
            "explode",
            "error",
            "ValueError",
        )
        assert failure.message == "no thanks: 200"
        assert failure.traceback is not None
        assert "in explode" in failure.traceback
        assert 'raise ValueError(f"no thanks' in failure.traceback
    # on_error="raise" raises what the function raised, its own type.
    with pytest.raises(ValueError, match="no thanks") as caught:
        await pipeline.run_async(loops=loops, on_error="raise")
    assert any("stage 'explode'" in note for note in caught.value.__notes__)


async def test_one_host_is_spread_over_every_loop_within_its_per_host_limit(
    four_hosts: RunningSite,
) -> None:
    # per_host=6 over 2 loops: 3 each. Both loops make rows, and the host never sees
    # more than 6 at once.
    urls = [four_hosts.url(f"/page/{i}?delay=0.02") for i in range(60)]
    out: list[int] = []
    result = await (
        cv.Pipeline(urls)
        .fetch(concurrency=20, per_host=6)
        .map(pid_of, on="inline")
        .run_async(sink=out, loops=2)
    )
    assert result.results == 60
    assert len(set(out)) == 2
    assert os.getpid() not in out
    assert four_hosts.stats.max_in_flight[four_hosts.host(0)] <= 6


async def test_a_host_whose_limit_does_not_divide_keeps_one_loop(
    four_hosts: RunningSite,
) -> None:
    # per_host=1 cannot be cut in two: the host has one owner, which holds it whole.
    urls = [four_hosts.url(f"/page/{i}") for i in range(20)]
    out: list[int] = []
    await (
        cv.Pipeline(urls).fetch(concurrency=4, per_host=1).map(pid_of).run_async(sink=out, loops=2)
    )
    assert len(set(out)) == 1
    assert four_hosts.stats.max_in_flight[four_hosts.host(0)] == 1


def test_a_loop_holds_its_part_of_the_per_host_limits_when_hosts_are_spread() -> None:
    factory = fetch_stage({"per_host": 5, "host_rate": 10, "rate": 40}).factory
    assert isinstance(factory, ClientFactory)
    assert factory.spreads(2)
    assert factory.spreads(5)
    assert not factory.spreads(6)
    shares = [factory.share(i, 2, spread=True) for i in range(2)]
    parts = [share.config for share in shares]
    assert [c.per_host for c in parts] == [3, 2]  # whole parts adding up to 5
    assert [share.per_host for share in shares] == [5, 5]  # what the report names
    assert [c.host_rate_per_second for c in parts] == [5.0, 5.0]
    assert [c.rate_per_second for c in parts] == [20.0, 20.0]
    owned = factory.share(1, 2).config  # each host has one loop: its limits stay whole
    assert (owned.per_host, owned.host_rate_per_second) == (5, 10.0)


def cpu_heavy_row(response: Any) -> tuple[str, int]:
    """A row that costs ~1 ms of CPU, so the run's loop is CPU-bound (module-level: it
    moves with the head)."""
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return response.url, os.getpid()


def unsized_urls(site: RunningSite, n: int) -> Iterator[str]:
    for i in range(n):
        yield site.url(f"/page/{i}", host=i % len(site.bases))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="auto moves with a core to spare")
async def test_a_cpu_bound_fetch_moves_to_loop_processes_within_its_limits(
    four_hosts: RunningSite,
) -> None:
    # Items out on the run's loop finish there; a host's later URLs wait for them, so
    # its limit holds across the move; the shared slots count what is still out here.
    out: list[tuple[str, int]] = []
    result = await (
        cv.Pipeline(unsized_urls(four_hosts, 1500))
        .fetch(concurrency=8, per_host=3)
        .map(cpu_heavy_row, on="inline")
        .run_async(sink=out, loops="auto")
    )
    assert result.results == 1500
    assert result.failed == 0
    assert sorted(url for url, _ in out) == sorted(unsized_urls(four_hosts, 1500))
    assert result.stages[0].reason.startswith("moved to"), result.stages[0].reason
    assert len({pid for _, pid in out}) > 1
    for index in range(len(HOSTS)):
        assert four_hosts.stats.max_in_flight[four_hosts.host(index)] <= 3
    assert four_hosts.stats.max_in_flight_total <= 8
