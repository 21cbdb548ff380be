"""The resume journal, in a module each:

- ``journal``: ``Journal`` and ``open_journal``, which admit keys, stage and record finished
  ones with the sink's position, and resume;
- ``strategies``: the two ways keys are kept, input positions (as spans) or a ``key=``
  function's keys (a row each);
- ``keys``: how a key is stored, and travels to SQLite and back;
- ``spans``: finished positions as ``[start, stop)`` runs;
- ``schema``: the file format: SQL text, header checks, and the shipped ``empty.journal``;
- ``counts``: a journal's committed counts, read-only, while another process writes it.
"""

from .counts import read_counts
from .journal import Journal, JournalStatistics, open_journal
from .schema import EMPTY_JOURNAL, empty_journal

_EMPTY_JOURNAL = EMPTY_JOURNAL  # the name it had when the journal was one module

__all__ = [
    "EMPTY_JOURNAL",
    "Journal",
    "JournalStatistics",
    "empty_journal",
    "open_journal",
    "read_counts",
]
