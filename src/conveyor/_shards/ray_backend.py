"""Running shards as Ray tasks: the only module that imports Ray, and only when asked to.

conveyor does not become a second scheduler: each shard is one plain Ray task
(``scheduling_strategy="SPREAD"``, so the shards spread over the nodes; ``max_retries``,
so Ray runs a shard again when its worker or node dies). A task runs conveyor's own runner
over its slice, and its journal makes a retried task resume rather than start again.
Ray Data is not used: it starts actors slowly and cannot resume after the driver dies.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from .._errors import ConveyorError, ShardFailed, UsageError

INSTALL_HINT = "pip install 'conveyor[ray]'"


def import_ray() -> ModuleType:
    """Ray, or a ``UsageError`` that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            f"backend 'ray' needs Ray, which is not installed; {INSTALL_HINT}"
        ) from None
    return ray


def connect(address: str | None) -> ModuleType:
    """Connect this process to a Ray cluster: ``address`` (``auto``, ``ray://host:port`` or a
    GCS ``host:port``), else ``RAY_ADDRESS``, else a new one-machine cluster on loopback."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    # A cluster started here serves only this machine: keep its nodes on 127.0.0.1 (Ray
    # otherwise maps localhost to the network interface's address; see docs/scale.md).
    if address is None and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        ray.init(
            address=address,
            log_to_driver=False,
            include_dashboard=False if address is None else None,
            configure_logging=False,
        )
    except ConnectionError as exc:
        raise UsageError(
            f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: "
            f"{exc}; start it with `ray start --head`, or check --address"
        ) from None
    return ray


def _cause(exc: BaseException) -> BaseException:
    """The task's own exception inside Ray's wrapper (``RayTaskError.cause``)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def run_tasks(
    ray: ModuleType,
    function: Callable[[Any], Any],
    specs: Sequence[Any],
    *,
    max_retries: int,
    on_done: Callable[[Any], None],
    on_tick: Callable[[], None],
    tick_seconds: float = 0.5,
) -> None:
    """Run ``function(spec)`` for each spec as one Ray task; call ``on_done`` with each
    return value as it arrives and ``on_tick`` every ``tick_seconds`` (live progress).

    A task whose exception is a ``ConveyorError`` (a mismatched journal, a full disk) is not
    retried: it would fail the same way. A worker or node that dies is retried by Ray.
    """
    remote = ray.remote(
        num_cpus=1,
        max_retries=max_retries,
        retry_exceptions=False,
        scheduling_strategy="SPREAD",
    )(function)
    pending = {remote.remote(spec): spec for spec in specs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=tick_seconds)
            on_tick()
            for ref in ready:
                pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    cause = _cause(exc)
                    if isinstance(cause, ConveyorError):
                        raise cause from None
                    first = (str(cause).splitlines() or [""])[0]
                    raise ShardFailed(
                        f"a shard failed after {max_retries} retries "
                        f"({type(cause).__name__}: {first}); run the job again to resume it"
                    ) from None
                on_done(value)
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):  # best effort on the way out
                ray.cancel(ref, force=True)
