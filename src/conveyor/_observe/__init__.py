"""Observers of a run: the live progress display and the end-of-run summary and report.

They subscribe to engine events (``conveyor._engine.events``) and sit beside ``_cli``: the
engine never prints, the CLI decides what is shown, and these pieces do the showing.
"""

from .progress import Progress as Progress
from .report import RunReport as RunReport

__all__ = ["Progress", "RunReport"]
