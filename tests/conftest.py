from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def child_pids() -> list[int]:
    """Live child processes of this process, read from /proc (zombies count as gone).

    multiprocessing's resource tracker is left out: it is one helper per interpreter, started
    by the first spawned process and meant to live until the interpreter exits.
    """
    me = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            cmdline = (stat.parent / "cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                found.append(int(stat.parent.name))
    return found


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fail the test if the run left a thread or a child process behind."""
    threads_before = set(threading.enumerate())
    children_before = set(child_pids())
    yield
    extra_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    extra_children = set(child_pids()) - children_before
    assert not extra_threads, f"threads left behind: {extra_threads}"
    assert not extra_children, f"processes left behind: {extra_children}"
