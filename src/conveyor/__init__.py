"""conveyor: fetch-and-process pipelines.

Async I/O on the event loop, blocking work on threads, pure-Python CPU work on processes;
bounded, observable and resumable. Start with ``Pipeline``.
"""

from ._engine.events import (
    Event as Event,
)
from ._engine.events import (
    ItemFailed as ItemFailed,
)
from ._engine.events import (
    ItemFinished as ItemFinished,
)
from ._engine.events import (
    ItemRetrying as ItemRetrying,
)
from ._engine.events import (
    ItemStarted as ItemStarted,
)
from ._engine.events import (
    Observer as Observer,
)
from ._engine.events import (
    RunFinished as RunFinished,
)
from ._engine.events import (
    RunStarted as RunStarted,
)
from ._engine.events import (
    Tick as Tick,
)
from ._engine.outcomes import Failure as Failure
from ._engine.ports import KeyOutcome as KeyOutcome
from ._engine.ports import Ledger as Ledger
from ._engine.ports import Sink as Sink
from ._engine.retry import Retry as Retry
from ._engine.stats import (
    RunResult as RunResult,
)
from ._engine.stats import (
    RunStatistics as RunStatistics,
)
from ._engine.stats import (
    StageStatistics as StageStatistics,
)
from ._errors import (
    ConveyorError as ConveyorError,
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
    SinkError as SinkError,
)
from ._errors import (
    UsageError as UsageError,
)
from ._errors import (
    WorkerCrashed as WorkerCrashed,
)
from ._pipeline.pipeline import Pipeline as Pipeline

__version__ = "0.1.0"

__all__ = [
    "ConveyorError",
    "Event",
    "Failure",
    "ItemError",
    "ItemFailed",
    "ItemFinished",
    "ItemRetrying",
    "ItemStarted",
    "ItemTimeout",
    "JobMismatchError",
    "JournalError",
    "KeyOutcome",
    "Ledger",
    "NotPicklableError",
    "Observer",
    "Pipeline",
    "Retry",
    "RunFinished",
    "RunInterrupted",
    "RunResult",
    "RunStarted",
    "RunStatistics",
    "Sink",
    "SinkError",
    "StageStatistics",
    "Tick",
    "UsageError",
    "WorkerCrashed",
]

# Public names report the public module, like trio and httpx do.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("conveyor._"):
        try:
            _obj.__module__ = "conveyor"
        except (AttributeError, TypeError):  # pragma: no cover - type aliases
            pass
del _name, _obj
