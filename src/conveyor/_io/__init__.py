"""Sources, sinks and the resume journal (files, SQLite, Parquet). Never imports _http."""

from .journal import Journal, JournalStatistics, open_journal, read_counts
from .records import to_record
from .sinks import Csv, FileSink, JsonLines, Parquet, Sqlite, Warc, sink_for
from .sources import (
    CsvSource,
    JsonLinesSource,
    LineSource,
    ParquetSource,
    read_csv,
    read_jsonl,
    read_lines,
    read_parquet,
)

__all__ = [
    "Csv",
    "CsvSource",
    "FileSink",
    "JsonLines",
    "JsonLinesSource",
    "Journal",
    "JournalStatistics",
    "LineSource",
    "Parquet",
    "ParquetSource",
    "Sqlite",
    "Warc",
    "open_journal",
    "read_counts",
    "read_csv",
    "read_jsonl",
    "read_lines",
    "read_parquet",
    "sink_for",
    "to_record",
]
