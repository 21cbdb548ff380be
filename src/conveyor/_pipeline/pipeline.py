"""The public builder: ``Pipeline(source).map(...).filter(...).run()``.

A pipeline is immutable: each method returns a new one, and building does no work. This
module is the composition root: it is where the engine meets the HTTP layer and the
output layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._engine.events import ObserverLike
from .._engine.loops import WarmLoops, measured_loops, resolve_loops
from .._engine.ports import Feed, Sink
from .._engine.retry import Retry
from .._engine.runner import OnError, RetryOnResume, Runner
from .._engine.spec import StageSpec, make_batch, make_stage
from .._engine.stats import RunResult
from .._engine.tail import check_tail
from .._errors import RunInterrupted, UsageError
from .iteration import iterate_async, iterate_sync
from .output import Output, prepare_output
from .portal import Interrupts, run_blocking

# Where a stage's function runs (``auto``: async on the loop, plain on threads).
On = Literal["auto", "loop", "threads", "processes", "inline"]
# How many loop processes run the head: a number, "auto", or those started ahead.
Loops = int | Literal["auto"] | WarmLoops


class Pipeline:
    """A chain of stages over a lazily read source.

    Args:
        source: any iterable, async iterable or generator (read lazily, never listed);
            conveyor sources (``read_lines`` …) also give a count for progress.
        key: a function giving each item's stable key (e.g. the URL); by default an
            item's key is its position in the input. Keys drive resume and de-duplication.
    """

    def __init__(
        self,
        source: Any,
        *,
        key: Callable[[Any], Hashable] | None = None,
        _stages: tuple[StageSpec, ...] = (),
    ) -> None:
        if not (hasattr(source, "__iter__") or hasattr(source, "__aiter__") or _fed(source)):
            raise UsageError(
                f"Pipeline(source): {type(source).__name__} is not iterable; give a list, "
                "a generator, an async iterable or a source such as conveyor.read_lines(path)"
            )
        if key is not None and not callable(key):
            raise UsageError(f"key={key!r} must be a function of the item, e.g. key=lambda u: u")
        self._source = source
        self._key = key
        self._stages = _stages

    def __repr__(self) -> str:
        stages = " → ".join(f"{s.kind}({s.name}, on={s.place})" for s in self._stages)
        return f"<Pipeline {type(self._source).__name__}{' → ' + stages if stages else ''}>"

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        return self._stages

    @property
    def source(self) -> Any:
        return self._source

    @property
    def key(self) -> Callable[[Any], Hashable] | None:
        return self._key

    def _then(self, spec: StageSpec) -> Pipeline:
        if any(s.name == spec.name for s in self._stages):
            spec = _renamed(spec, f"{spec.name}#{len(self._stages) + 1}")
        return Pipeline(self._source, key=self._key, _stages=(*self._stages, spec))

    # -- stages ---------------------------------------------------------------------------

    def map(
        self,
        fn: Callable[[Any], Any],
        *,
        on: On = "auto",
        workers: int | None = None,
        concurrency: int | None = None,
        rate: float | str | None = None,
        retries: int | Retry = 0,
        timeout: float | None = None,
        limit_per: tuple[Callable[[Any], Hashable], int] | None = None,
        name: str | None = None,
    ) -> Pipeline:
        """Apply ``fn`` to every item.

        Args:
            fn: ``async def`` (runs on the event loop) or a plain function.
            on: ``"auto"`` (async → loop, plain → threads), ``"loop"``, ``"threads"``,
                ``"processes"`` (pure-Python CPU work; ``fn`` must be a module-level def) or
                ``"inline"`` (a cheap plain function, called right on the loop; after
                another stage it runs in that stage's workers, with no queue between).
            workers: threads or processes in the pool (default: CPUs + 4 up to 32 threads,
                one process per CPU).
            concurrency: items in flight at once (default 100 on the loop, ``workers`` on
                threads, enough to fill chunks on processes).
            rate: at most this many calls per second: ``"20/s"``, ``"600/min"`` or a number.
            retries: retries after the first attempt, or a ``Retry`` policy.
            timeout: seconds per attempt; a late item fails with kind ``"timeout"``. Not
                with ``on="inline"``: a plain call on the loop cannot be interrupted.
            limit_per: ``(key_fn, n)``: at most ``n`` items in flight per ``key_fn(item)``.
            name: the stage's name in statistics and failures (default: the function's).
        """
        return self._then(
            make_stage(
                "map",
                fn,
                on=on,
                workers=workers,
                concurrency=concurrency,
                rate=rate,
                retries=retries,
                timeout=timeout,
                limit_per=limit_per,
                name=name,
            )
        )

    def filter(
        self,
        fn: Callable[[Any], Any],
        *,
        on: On = "auto",
        workers: int | None = None,
        concurrency: int | None = None,
        name: str | None = None,
    ) -> Pipeline:
        """Keep the items for which ``fn`` is true; dropped items are counted as filtered.

        A plain predicate runs right on the event loop (keep it cheap, or pass
        ``on="threads"``); an ``async def`` predicate runs on the loop concurrently.
        """
        return self._then(
            make_stage(
                "filter",
                fn,
                on=on,
                workers=workers,
                concurrency=concurrency,
                name=name,
                sync_default="inline",
            )
        )

    def flat_map(
        self,
        fn: Callable[[Any], Any],
        *,
        on: On = "auto",
        workers: int | None = None,
        concurrency: int | None = None,
        name: str | None = None,
    ) -> Pipeline:
        """Replace each item by the items of the iterable or async iterable ``fn`` returns.

        A generator function (or one returning a list) runs inline by default; pass
        ``on="threads"`` when producing the items blocks. Async generators run on the loop.
        """
        if on == "processes":
            raise UsageError(
                "flat_map cannot run on processes (generators cannot cross processes); "
                "use .map(fn, on='processes') returning a list, then .flat_map(lambda xs: xs)"
            )
        target = fn
        if inspect.isasyncgenfunction(fn):
            # The stage awaits its function; an async generator function is called, not awaited.
            async def start(value: Any) -> Any:
                return fn(value)

            target = start
            name = name or getattr(fn, "__name__", None)
        return self._then(
            make_stage(
                "flat_map",
                target,
                on=on,
                workers=workers,
                concurrency=concurrency,
                name=name,
                sync_default="inline",
            )
        )

    def batch(
        self, size: int, *, timeout: float | None = None, name: str | None = None
    ) -> Pipeline:
        """Group items into lists of up to ``size`` (for bulk writes).

        Args:
            size: the most items in one list.
            timeout: emit a partial list once its first item has waited this many seconds.
        """
        return self._then(make_batch(size, timeout, name))

    def fetch(
        self,
        *,
        concurrency: int = 100,
        per_host: int = 8,
        rate: float | str | None = None,
        host_rate: float | str | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        jitter: float = 0.5,
        retry_statuses: Iterable[int] = frozenset({429, 500, 502, 503, 504}),
        retry_kinds: Iterable[str] = frozenset({"connect", "reset", "timeout", "too-slow"}),
        max_retry_after: float = 60.0,
        timeout: float | None = 30.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 20.0,
        max_redirects: int = 10,
        max_bytes: int = 50 * 1024 * 1024,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = (),
        user_agent: str | None = None,
        cookies: bool = False,
        verify_tls: bool = True,
        trust_env: bool = False,
        proxy: str | Iterable[str] | None = None,
        block_private: bool = False,
        allow_networks: Iterable[str] = (),
        save_to: str | Path | None = None,
        adapt: bool = True,
        refuse_403: bool = False,
        min_rate: float | None = 1024.0,
        max_pause: float = 86_400.0,
        name: str = "fetch",
    ) -> Pipeline:
        """Fetch each URL or ``Request`` over HTTP, giving a ``conveyor.http.Response``.

        One client (one connection pool) is opened per run; it applies every limit and
        retry itself. The options are those of ``conveyor.http.FetchConfig``, with the same
        defaults, checked when the pipeline is built; docs/http.md says more of each.

        Args:
            concurrency: requests in flight in all. Up to 1,024 more items may wait
                inside the client beside them, for a host held back (paused by its
                site, its breaker open, at its rate or limit), with no request out, so
                a held host's items do not take the others' slots.
            per_host: requests in flight per host (``host:port``); with ``adapt``, the
                ceiling of what the controller allows each host.
            rate: requests per second in all: a number, ``"20/s"``, ``"600/min"``.
            host_rate: requests per second per host, same forms (a ceiling, as per_host).
            retries: retries after the first attempt, with exponential backoff.
            backoff: seconds before the first retry, doubled after each.
            max_backoff: the longest backoff wait, in seconds.
            jitter: the random share (0 to 1) added to or taken from each wait.
            retry_statuses: statuses retried; after the last retry the response is returned.
            retry_kinds: failure kinds retried (of connect, reset, timeout, too-slow, dns,
                tls, decode, proxy).
            max_retry_after: the longest ``Retry-After`` honoured, in seconds.
            timeout: seconds for one attempt, body included (None: no limit).
            connect_timeout: seconds to open a connection.
            read_timeout: the longest silence, in seconds, before or within a response.
            max_redirects: redirects followed before ``too-many-redirects``.
            max_bytes: the largest body, on the wire and decompressed.
            headers: headers sent with every request (a ``Request``'s own win).
            user_agent: the ``User-Agent``; default ``conveyor/<version>``.
            cookies: keep a cookie jar for the run.
            verify_tls: check TLS certificates.
            trust_env: take proxies (``HTTP(S)_PROXY``, ``NO_PROXY``) and ``.netrc`` logins
                from the environment.
            proxy: a forward proxy, ``http://[user:password@]host:port``, or several (hosts
                are spread over them, each host staying on one).
            block_private: refuse non-global addresses after DNS, on every hop.
            allow_networks: networks exempt from ``block_private``, e.g. ``"10.1.0.0/16"``.
            save_to: a directory: bodies are streamed to files there instead of memory.
            adapt: set each host's concurrency and rate from what the host says (latency,
                refusals, Retry-After, RateLimit headers), with ``per_host`` and
                ``host_rate`` as ceilings, a breaker, a retry budget; False: fixed limits
                (docs/politeness.md).
            refuse_403: count a 403 as a refusal (slow down), as 429 and 503 are.
            min_rate: bytes per second a body must average over 30 s (None: no floor);
                slower fails the attempt as ``too-slow``.
            max_pause: the longest ``Retry-After`` waited for, in seconds; a host that asks
                for longer has its items deferred to the next run.
            name: the stage's name in statistics and failures.
        """
        # Every parameter but self and name is a FetchConfig field (a test keeps them equal).
        options = {k: v for k, v in locals().items() if k not in ("self", "name")}
        from .fetch import fetch_stage

        return self._then(fetch_stage(options, name=name))

    # -- running --------------------------------------------------------------------------

    def _runner(
        self,
        output: Output | None,
        *,
        ordered: bool,
        on_error: OnError,
        observers: tuple[ObserverLike, ...],
        grace: float,
        consumer: Any = None,
        yield_failures: bool = False,
        loops: Loops = 1,
        retry_on_resume: RetryOnResume | None = None,
        stages: tuple[StageSpec, ...] | None = None,
        tail: Tail | None = None,
    ) -> Runner:
        tail = tail or Tail()
        return Runner(
            self._source,
            self._stages if stages is None else stages,
            key=self._key,
            ordered=ordered,
            on_error=on_error,
            sink=output.sink if output else None,
            open_ledger=output.open_ledger if output else None,
            consumer=consumer,
            yield_failures=yield_failures,
            observers=observers,
            grace=grace,
            loops=resolve_loops(loops, self._source),
            warm=loops if isinstance(loops, WarmLoops) else None,
            measured=measured_loops(loops),
            retry_on_resume=retry_on_resume,
            deadline=tail.deadline,
            finish_at=tail.finish_at,
            stall_after=tail.stall_after,
        )

    async def run_async(
        self,
        sink: Any = None,
        *,
        ordered: bool = False,
        on_error: OnError = "record",
        journal: str | None = None,
        restart: bool = False,
        retry_failed: bool = False,
        observers: tuple[ObserverLike, ...] = (),
        grace: float = 10.0,
        loops: Loops = 1,
        retry_on_resume: RetryOnResume | None = None,
        deadline: float | None = None,
        finish_at: float | None = None,
        stall_after: float = 60.0,
    ) -> RunResult:
        """Run to the end and return the ``RunResult``; see ``run``."""
        return await self._run(
            sink,
            ordered=ordered,
            on_error=on_error,
            journal=journal,
            restart=restart,
            retry_failed=retry_failed,
            observers=observers,
            grace=grace,
            interrupts=None,
            loops=loops,
            retry_on_resume=retry_on_resume,
            tail=Tail(deadline, finish_at, stall_after),
        )

    async def _run(
        self,
        sink: Any,
        *,
        ordered: bool,
        on_error: OnError,
        journal: str | None,
        restart: bool,
        retry_failed: bool,
        observers: tuple[ObserverLike, ...],
        grace: float,
        interrupts: Interrupts | None,
        loops: Loops = 1,
        retry_on_resume: RetryOnResume | None = None,
        tail: Tail | None = None,
    ) -> RunResult:
        tail = tail or Tail()
        check_tail(tail.deadline, tail.finish_at, tail.stall_after)
        if retry_on_resume is not None:
            if not callable(retry_on_resume):
                raise UsageError(
                    f"retry_on_resume={retry_on_resume!r} must be a function of a result "
                    "that returns a kind (such as 'http-503') or None"
                )
            if journal is None and not _fed(self._source):
                raise UsageError("retry_on_resume= needs a journal: pass journal='run.journal'")
        with contextlib.ExitStack() as scope:
            stages, hook = self._stages, None
            if _fed(self._source):  # a crawl: its frontier lives in the journal
                from .crawl.api import prepare_crawl

                crawl = scope.enter_context(prepare_crawl(self._source, self._stages, journal))
                stages, hook, journal = crawl.stages, crawl.hook, crawl.journal
            output = prepare_output(
                self, sink, journal=journal, restart=restart, retry_failed=retry_failed, hook=hook
            )
            runner = self._runner(
                output,
                ordered=ordered,
                on_error=on_error,
                observers=observers,
                grace=grace,
                loops=loops,
                retry_on_resume=retry_on_resume,
                stages=stages,
                tail=tail,
            )
            if interrupts is not None:
                interrupts.runner = runner
                if interrupts.count:
                    runner.stop()
            return await runner.run()

    def run(
        self,
        sink: Any = None,
        *,
        ordered: bool = False,
        on_error: OnError = "record",
        journal: str | None = None,
        restart: bool = False,
        retry_failed: bool = False,
        observers: tuple[ObserverLike, ...] = (),
        grace: float = 10.0,
        loops: Loops = 1,
        retry_on_resume: RetryOnResume | None = None,
        backend: Literal["local", "ray"] = "local",
        shards: int | None = None,
        address: str | None = None,
        deadline: float | None = None,
        finish_at: float | None = None,
        stall_after: float = 60.0,
    ) -> RunResult:
        """Run the pipeline to the end and return what it did.

        Works from plain code and inside a running event loop (Jupyter), where it drives
        the run on a background thread. The first Ctrl-C stops reading input and lets
        in-flight items finish (at most ``grace`` seconds; a fetch's items with no request
        sent yet, waiting on a held host or a slot, are left for the next run at once); a
        second one stops at once.
        Either way what finished is written and committed, and ``RunInterrupted`` is
        raised with the partial ``RunResult``.

        Args:
            sink: where results go: a ``Sink`` (``JsonLines("out.jsonl")`` …), a path whose
                extension picks the sink, a list to append to, a function called with each
                result (on the writer thread), or None to only count them.
            ordered: write results in input order (a bounded reorder buffer).
            on_error: ``"record"`` failures (in the result and the sink) and go on, or
                ``"raise"`` the first failure's exception, cancelling the run cleanly.
            journal: a path for the resume journal; running again resumes.
            restart: throw away an existing journal (and output) and begin again.
            retry_failed: on resume, run the keys that failed last time again.
            observers: subscribers to the run's events (progress bars, reports).
            grace: seconds in-flight items get to finish after the first Ctrl-C.
            loops: event loops for the pipeline's head, one per process: its first stage
                (an async map such as ``fetch``) and the plain maps right after it
                (``on="inline"`` or ``"auto"``, module-level functions). A host's URLs
                go to every loop, each holding its part of ``per_host`` and
                ``host_rate`` (when ``per_host`` is at least ``loops``; else each host
                has one loop, holding them whole); ``concurrency`` is one budget for all
                loops, ``rate`` is divided among them. ``"auto"``: the head starts on
                this process's loop and moves to one loop process per core once that
                loop is CPU-bound (never for a source known to hold under 20,000 items,
                or a file under 1 MB). The rest of the pipeline, the journal and the
                sink stay in this process. See ``docs/guide.md``. Loop processes started
                ahead of the run (``conveyor._engine.loops.start_ahead``, as ``conveyor
                fetch`` does) count as many as they are, and the run takes them over.
            retry_on_resume: with a journal, a function called with each result (once):
                None when the result finishes its key, or a kind such as ``"http-503"``
                (or ``(kind, attempts)``) when the key should stay retryable. Such a
                result is written like any other, and the journal records its key as
                failed with that kind, so a later run with ``retry_failed=True`` runs it
                again (its new output follows the old; see ``docs/io.md``).
            backend: ``"ray"`` runs the pipeline as ``shards`` Ray tasks (default: the
                cluster's CPUs) on the cluster at ``address`` (``"auto"``, ``ray://…``;
                default: ``RAY_ADDRESS``, else a new one on this machine). ``sink`` is then
                a folder path (``"out.jsonl"``: parts ``part-0000N.jsonl``, each with its
                journal, so running again resumes; ``journal`` stays unset), joined with
                ``conveyor merge``; ``restart`` removes only the files the job wrote there.
                ``observers`` and ``ordered`` are not used. See ``docs/scale.md``.
            deadline: seconds after which the run winds down: the source is read no
                further, the items in flight get a few seconds, and what is left then is
                deferred (``RunResult.deferred``, ``unread``): running the same job again
                with its journal does the rest. Services that can (the fetch) hear it
                first and defer their waiting items at once.
            finish_at: a share of the input (0.99): once that much has ended, the
                services hear it and defer the items of hosts that would hold the run's
                end (the fetch: hosts whose forecast drain time is longer than the run so
                far). Needs a source of known length.
            stall_after: seconds with nothing finishing (polite waits on paused hosts left
                out) after which the run names the stall: ``RunStatistics.stall`` and one
                warning on the ``conveyor`` logger.

        Items a stage defers (``conveyor.Deferred``: a host paused past ``max_pause``, an
        open breaker, the deadline) are neither results nor failures: ``RunResult.ok``
        stays true, ``RunResult.complete`` is false, and, with a journal, the next run of
        the same job takes them (and only them) up.
        """
        check_tail(deadline, finish_at, stall_after)
        if backend == "ray":
            if ordered or observers:
                raise UsageError("backend='ray' keeps no input order and takes no observers")
            if deadline is not None or finish_at is not None:
                raise UsageError(
                    "deadline= and finish_at= are not taken with backend='ray' (each shard "
                    "runs when Ray starts it); run locally, or stop the job and run it again"
                )
            if retry_on_resume is not None and not callable(retry_on_resume):
                raise UsageError(f"retry_on_resume={retry_on_resume!r} must be a function")
            from .on_ray import run_on_ray, sharded_job  # Ray is imported only when it runs

            if _fed(self._source):  # a crawl: shards own hosts, and send each other links
                from .crawl.shards import crawl_sharded_job

                job = crawl_sharded_job(self)
            else:
                job = sharded_job(
                    self, LocalShard(self._key, self._stages, retry_on_resume, stall_after)
                )
            return run_on_ray(
                job,
                sink,
                journal=journal,
                shards=shards,
                address=address,
                restart=restart,
                retry_failed=retry_failed,
            )
        if backend != "local":
            raise UsageError(f"backend={backend!r}: use 'local' or 'ray'")
        if shards is not None or address is not None:
            raise UsageError("shards= and address= go with backend='ray'")
        result, interrupts = run_blocking(
            lambda interrupts: self._run(
                sink,
                ordered=ordered,
                on_error=on_error,
                journal=journal,
                restart=restart,
                retry_failed=retry_failed,
                observers=observers,
                grace=grace,
                interrupts=interrupts,
                loops=loops,
                retry_on_resume=retry_on_resume,
                tail=Tail(deadline, finish_at, stall_after),
            )
        )
        if interrupts.count:
            raise RunInterrupted(result)
        return result

    # -- streaming ------------------------------------------------------------------------

    def stream(
        self,
        *,
        ordered: bool = False,
        on_error: OnError = "record",
        failures: bool = False,
        observers: tuple[ObserverLike, ...] = (),
    ) -> AsyncIterator[Any]:
        """Results as an async iterator; with ``failures=True`` also the ``Failure`` objects."""
        return iterate_async(self._streaming_runner(ordered, on_error, failures, observers))

    def iter(
        self,
        *,
        ordered: bool = False,
        on_error: OnError = "record",
        failures: bool = False,
        observers: tuple[ObserverLike, ...] = (),
    ) -> Iterator[Any]:
        """Results as a plain iterator, the pipeline running on a background thread."""
        return iterate_sync(self._streaming_runner(ordered, on_error, failures, observers))

    def _streaming_runner(
        self,
        ordered: bool,
        on_error: OnError,
        failures: bool,
        observers: tuple[ObserverLike, ...],
    ) -> Callable[[asyncio.Queue[Any]], Runner]:
        """A runner factory whose results go to the queue the iterator gives it."""

        def make(queue: asyncio.Queue[Any]) -> Runner:
            output, stages, done = None, None, None
            if _fed(self._source):  # a crawl: its frontier in a journal, for the run
                from .crawl.api import start_crawl

                crawl, done = start_crawl(self._source, self._stages, None)
                stages = crawl.stages
                output = prepare_output(
                    self, None, journal=crawl.journal, restart=False, retry_failed=False,
                    hook=crawl.hook,
                )  # fmt: skip
            runner = self._runner(
                output,
                ordered=ordered,
                on_error=on_error,
                observers=observers,
                grace=10.0,
                consumer=queue,
                yield_failures=failures,
                stages=stages,
            )
            if done is not None:
                weakref.finalize(runner, done)  # the temporary journal goes with the run
            return runner

        return make

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.stream()

    def __iter__(self) -> Iterator[Any]:
        return self.iter()


@dataclass(frozen=True)
class LocalShard:
    """How one shard of a job on Ray runs, in its task: these stages over the shard's
    slice, on one loop (the cluster is the parallelism), into its part and journal.
    Picklable (with Ray's cloudpickle, lambdas too); ``_shards`` calls it, so the driver
    needs the builder only through this."""

    key: Callable[[Any], Hashable] | None
    stages: tuple[StageSpec, ...]
    retry_on_resume: RetryOnResume | None = None
    stall_after: float = 60.0

    def __call__(
        self,
        source: Iterable[Any],
        sink: Sink,
        journal: str,
        *,
        retry_failed: bool,
        shard: Any = None,
    ) -> RunResult:
        pipeline = Pipeline(source, key=self.key, _stages=self.stages)
        return pipeline.run(
            sink,
            journal=journal,
            retry_failed=retry_failed,
            loops=1,
            retry_on_resume=self.retry_on_resume,
            stall_after=self.stall_after,
        )


@dataclass(frozen=True)
class Tail:
    """A run's tail flags (``Pipeline.run``): ``deadline``, ``finish_at``, ``stall_after``."""

    deadline: float | None = None
    finish_at: float | None = None
    stall_after: float = 60.0


def _fed(source: Any) -> bool:
    """A source its run's journal feeds: a crawl's frontier (``conveyor.crawl``)."""
    return isinstance(source, Feed)


def _renamed(spec: StageSpec, name: str) -> StageSpec:
    import dataclasses

    return dataclasses.replace(spec, name=name)
