"""The thin sync face: run the async core from plain code, in Jupyter, and on Ctrl-C.

With no event loop running in this thread, ``run_blocking`` uses ``asyncio.Runner`` here
(uvloop when installed) and turns SIGINT into a graceful stop, then an abort. Inside a
running loop (Jupyter), it drives the run on a background thread with a loop of its own and
turns ``KeyboardInterrupt`` in the waiting thread into the same stop and abort.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._engine.runner import Runner

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every non-Windows OS
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_on_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end on a new event loop (uvloop when installed) in this thread:
    the one way conveyor starts a loop, here and on its background threads."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Interrupts:
    """First Ctrl-C stops the runner gracefully; the second aborts it."""

    def __init__(self) -> None:
        self.count = 0
        self.runner: Runner | None = None

    def hit(self) -> None:
        self.count += 1
        if self.runner is not None:
            self.runner.threadsafe(self.runner.stop if self.count == 1 else self.runner.abort)


def run_blocking(
    main: Callable[[Interrupts], Coroutine[Any, Any, T]], *, handle_sigint: bool = True
) -> tuple[T, Interrupts]:
    """Run ``main`` to completion from sync code, wherever we are called from."""
    interrupts = Interrupts()
    if not loop_is_running():
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            on_main = threading.current_thread() is threading.main_thread()
            if handle_sigint and on_main:
                return runner.run(_with_sigint(main, interrupts)), interrupts
            return runner.run(main(interrupts)), interrupts
    return _run_on_thread(main, interrupts), interrupts


async def _with_sigint(
    main: Callable[[Interrupts], Coroutine[Any, Any, T]], interrupts: Interrupts
) -> T:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupts.hit)
    try:
        return await main(interrupts)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _run_on_thread(
    main: Callable[[Interrupts], Coroutine[Any, Any, T]], interrupts: Interrupts
) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = run_on_new_loop(main(interrupts))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="conveyor-run")
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.1)
        except KeyboardInterrupt:
            interrupts.hit()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
