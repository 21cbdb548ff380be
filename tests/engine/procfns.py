"""Module-level functions for process-stage tests (worker processes import this module)."""

from __future__ import annotations

import ctypes
import os
import time


def square(n: int) -> int:
    return n * n


def spin(n: int) -> int:
    """About 1 ms of pure-Python work."""
    deadline = time.perf_counter() + 0.001
    x = 0
    while time.perf_counter() < deadline:
        x += 1
    return n


def exit_on_seven(n: int) -> int:
    if n == 7:
        os._exit(3)
    return n * 10


def segfault_on_five(n: int) -> int:
    if n == 5:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return n


def exit_once(path_and_n: tuple[str, int]) -> int:
    """Crash the first time item 4 is seen (a marker file remembers), succeed after."""
    path, n = path_and_n
    if n == 4 and not os.path.exists(path):
        with open(path, "w") as marker:
            marker.write("crashed")
        os._exit(9)
    return n


def sleep_on_three(n: int) -> int:
    if n == 3:
        time.sleep(30)
    return n


def raise_on_odd(n: int) -> int:
    if n % 2:
        raise ValueError(f"odd {n}")
    return n


class Unpicklable(Exception):
    def __init__(self, n: int) -> None:
        super().__init__(f"bad {n}")
        self.lock = __import__("threading").Lock()


def raise_unpicklable(n: int) -> int:
    raise Unpicklable(n)


def pid(_: int) -> int:
    time.sleep(0.01)
    return os.getpid()


def identity_pair(item: tuple[int, int]) -> tuple[int, int]:
    return item


def count_up(n: int) -> int:
    """A few ms of pure-Python CPU work that holds the GIL throughout."""
    total = 0
    for i in range(150_000):
        total += i & 7
    return n + total * 0


_DATA = bytes(range(256)) * 16_384  # 4 MiB, made once


def compress(n: int) -> int:
    """A few ms of compression: zlib lets the GIL go for the whole call. (Not sha256:
    OpenSSL's constructor, on this Python, mostly ran two such calls one after the other
    even on two idle cores, so it did not show what this stands for.)"""
    import zlib

    return n + len(zlib.compress(_DATA, 1)) * 0


def fail_some(item: tuple[int, int], seed: int) -> tuple[int, int]:
    """Raise for about one item in seven, which ones chosen by ``seed`` (property tests)."""
    if (item[0] * 2654435761 + seed) % 7 == 0:
        raise ValueError("injected")
    return item
