"""conveyor: fetch-and-process pipelines.

Async I/O on the event loop, blocking work on threads, pure-Python CPU work on processes;
bounded, observable and resumable. Start with ``Pipeline``.
"""

import importlib
from typing import TYPE_CHECKING

from ._errors import (
    BadURL as BadURL,
)
from ._errors import (
    Blocked as Blocked,
)
from ._errors import (
    ConnectError as ConnectError,
)
from ._errors import (
    ConnectionReset as ConnectionReset,
)
from ._errors import (
    ConveyorError as ConveyorError,
)
from ._errors import (
    Deferred as Deferred,
)
from ._errors import (
    DNSError as DNSError,
)
from ._errors import (
    FetchError as FetchError,
)
from ._errors import (
    FetchTimeout as FetchTimeout,
)
from ._errors import (
    ItemError as ItemError,
)
from ._errors import (
    ItemTimeout as ItemTimeout,
)
from ._errors import (
    JobMismatchError as JobMismatchError,
)
from ._errors import (
    JournalError as JournalError,
)
from ._errors import (
    NotPicklableError as NotPicklableError,
)
from ._errors import (
    RunInterrupted as RunInterrupted,
)
from ._errors import (
    ShardFailed as ShardFailed,
)
from ._errors import (
    ShardFenced as ShardFenced,
)
from ._errors import (
    SinkError as SinkError,
)
from ._errors import (
    UsageError as UsageError,
)
from ._errors import (
    WorkerCrashed as WorkerCrashed,
)
from ._version import __version__ as __version__

__all__ = [
    "BadURL",
    "Blocked",
    "ConnectError",
    "ConnectionReset",
    "ConveyorError",
    "Csv",
    "DNSError",
    "Deferred",
    "Event",
    "Failure",
    "FetchConfig",
    "FetchError",
    "FetchTimeout",
    "HttpClient",
    "ItemError",
    "ItemFailed",
    "ItemFinished",
    "ItemRetrying",
    "ItemStarted",
    "ItemTimeout",
    "JobMismatchError",
    "JournalError",
    "JsonLines",
    "KeyOutcome",
    "Ledger",
    "NotPicklableError",
    "Observer",
    "Page",
    "Parquet",
    "Pipeline",
    "Progress",
    "Request",
    "Response",
    "Retry",
    "RunFinished",
    "RunInterrupted",
    "RunReport",
    "RunResult",
    "RunStarted",
    "RunStatistics",
    "ShardFailed",
    "ShardFenced",
    "Sink",
    "SinkError",
    "Sqlite",
    "StageStatistics",
    "Tick",
    "UsageError",
    "Warc",
    "WorkerCrashed",
    "crawl",
    "read_csv",
    "read_jsonl",
    "read_lines",
    "read_parquet",
    "sink_for",
    "to_record",
]

# Every public name but the errors loads on first use (PEP 562), so that `import conveyor`
# and `conveyor --help` stay quick: the pipeline, the journal, aiohttp and rich are loaded
# by what needs them, not by the import of the package.
_LAZY = {
    "Event": "._engine.events",
    "ItemFailed": "._engine.events",
    "ItemFinished": "._engine.events",
    "ItemRetrying": "._engine.events",
    "ItemStarted": "._engine.events",
    "Observer": "._engine.events",
    "RunFinished": "._engine.events",
    "RunStarted": "._engine.events",
    "Tick": "._engine.events",
    "Failure": "._engine.outcomes",
    "KeyOutcome": "._engine.ports",
    "Ledger": "._engine.ports",
    "Sink": "._engine.ports",
    "Retry": "._engine.retry",
    "RunResult": "._engine.stats",
    "RunStatistics": "._engine.stats",
    "StageStatistics": "._engine.stats",
    "Csv": "._io",
    "JsonLines": "._io",
    "Parquet": "._io",
    "Sqlite": "._io",
    "Warc": "._io",
    "Page": "._pipeline.crawl",
    "crawl": "._pipeline.crawl",
    "read_csv": "._io",
    "read_jsonl": "._io",
    "read_lines": "._io",
    "read_parquet": "._io",
    "sink_for": "._io",
    "to_record": "._io",
    "Pipeline": "._pipeline.pipeline",
    "__version__": "._version",
    "FetchConfig": ".http",
    "HttpClient": ".http",
    "Request": ".http",
    "Response": ".http",
    "Progress": "._observe",
    "RunReport": "._observe",
}

if TYPE_CHECKING:  # loaded lazily at run time (see __getattr__); typed for checkers here
    from ._engine.events import Event as Event
    from ._engine.events import ItemFailed as ItemFailed
    from ._engine.events import ItemFinished as ItemFinished
    from ._engine.events import ItemRetrying as ItemRetrying
    from ._engine.events import ItemStarted as ItemStarted
    from ._engine.events import Observer as Observer
    from ._engine.events import RunFinished as RunFinished
    from ._engine.events import RunStarted as RunStarted
    from ._engine.events import Tick as Tick
    from ._engine.outcomes import Failure as Failure
    from ._engine.ports import KeyOutcome as KeyOutcome
    from ._engine.ports import Ledger as Ledger
    from ._engine.ports import Sink as Sink
    from ._engine.retry import Retry as Retry
    from ._engine.stats import RunResult as RunResult
    from ._engine.stats import RunStatistics as RunStatistics
    from ._engine.stats import StageStatistics as StageStatistics
    from ._io import Csv as Csv
    from ._io import JsonLines as JsonLines
    from ._io import Parquet as Parquet
    from ._io import Sqlite as Sqlite
    from ._io import Warc as Warc
    from ._io import read_csv as read_csv
    from ._io import read_jsonl as read_jsonl
    from ._io import read_lines as read_lines
    from ._io import read_parquet as read_parquet
    from ._io import sink_for as sink_for
    from ._io import to_record as to_record
    from ._observe import Progress as Progress
    from ._observe import RunReport as RunReport
    from ._pipeline.crawl import Page as Page
    from ._pipeline.crawl import crawl as crawl
    from ._pipeline.pipeline import Pipeline as Pipeline
    from ._version import __version__ as __version__
    from .http import FetchConfig as FetchConfig
    from .http import HttpClient as HttpClient
    from .http import Request as Request
    from .http import Response as Response


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    _public(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _public(obj: object) -> None:
    """Public names report the public module, like trio and httpx do."""
    if getattr(obj, "__module__", "").startswith("conveyor._"):
        try:
            obj.__module__ = "conveyor"
        except (AttributeError, TypeError):  # pragma: no cover - type aliases
            pass


for _name in [
    "BadURL",
    "Blocked",
    "ConnectError",
    "ConnectionReset",
    "ConveyorError",
    "DNSError",
    "Deferred",
    "FetchError",
    "FetchTimeout",
    "ItemError",
    "ItemTimeout",
    "JobMismatchError",
    "JournalError",
    "NotPicklableError",
    "RunInterrupted",
    "ShardFailed",
    "ShardFenced",
    "SinkError",
    "UsageError",
    "WorkerCrashed",
]:
    _public(globals()[_name])
del _name
