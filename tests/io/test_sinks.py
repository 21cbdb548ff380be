"""The four file sinks: records, failures, durable positions and cutting back to them."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor import Failure, SinkError, UsageError
from conveyor._engine.ports import Sink
from conveyor._io import Csv, JsonLines, Parquet, Sqlite, open_journal, sink_for, to_record

from .helpers import read_records

SUFFIXES = ["jsonl", "csv", "db", "parquet"]


def fail(key: Any) -> Failure:
    return Failure(key=key, stage="parse", kind="error", message="bad", attempts=2,
                   error_type="ValueError")  # fmt: skip


def rows(start: int, stop: int) -> list[dict[str, Any]]:
    return [{"key": f"k{i}", "n": i} for i in range(start, stop)]


def simple(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, n) as text, whatever the sink made of the types; failures left out."""
    return [(str(r["key"]), str(r["n"])) for r in records if r.get("n") not in (None, "")]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_written_and_flushed_records_read_back(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out.{suffix}"
    sink = sink_for(out)
    assert isinstance(sink, Sink)
    sink.open()
    sink.write(rows(0, 5))
    sink.write_failures([fail("k9")])
    position = sink.flush()
    orjson.dumps(position)  # JSON-able, for the journal
    sink.close()
    records = read_records(out)
    assert simple(records) == [(f"k{i}", str(i)) for i in range(5)]
    failure = records[-1]
    assert (failure["key"], failure["error_kind"], failure["error"]) == ("k9", "error", "bad")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_open_at_a_position_cuts_off_what_came_after(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out.{suffix}"
    sink = sink_for(out)
    sink.open()
    sink.write(rows(0, 3))
    position = sink.flush()
    sink.write(rows(3, 6))  # a crash after this flush: not recorded
    sink.flush()
    sink.write(rows(6, 8))  # and this never flushed
    sink.close()

    again = sink_for(out)
    again.open(position)
    again.write(rows(100, 102))
    again.flush()
    again.close()
    expected = [(f"k{i}", str(i)) for i in [0, 1, 2, 100, 101]]
    assert simple(read_records(out)) == expected


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncate_to_while_open(tmp_path: Path, suffix: str) -> None:
    sink = sink_for(tmp_path / f"out.{suffix}")
    sink.open()
    sink.write(rows(0, 2))
    position = sink.flush()
    sink.write(rows(2, 4))
    sink.flush()
    sink.truncate_to(position)
    sink.write(rows(9, 10))
    sink.close()
    assert simple(read_records(tmp_path / f"out.{suffix}")) == [
        ("k0", "0"),
        ("k1", "1"),
        ("k9", "9"),
    ]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_open_without_a_position_starts_afresh(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out.{suffix}"
    for start in (0, 10):
        with sink_for(out) as sink:
            sink.write(rows(start, start + 2))
    assert simple(read_records(out)) == [("k10", "10"), ("k11", "11")]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failures_to_a_separate_file_are_cut_back_too(tmp_path: Path, suffix: str) -> None:
    out, failures = tmp_path / f"out.{suffix}", tmp_path / "failures.jsonl"
    sink = sink_for(out, failures=failures)
    sink.open()
    sink.write(rows(0, 1))
    sink.write_failures([fail("a")])
    position = sink.flush()
    sink.write_failures([fail("b")])
    sink.flush()
    sink.close()
    again = sink_for(out, failures=failures)
    again.open(position)
    again.close()
    assert [r["key"] for r in read_records(failures)] == ["a"]
    assert simple(read_records(out)) == [("k0", "0")]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failures_none_drops_them(tmp_path: Path, suffix: str) -> None:
    with sink_for(tmp_path / f"out.{suffix}", failures=None) as sink:
        sink.write(rows(0, 1))
        sink.write_failures([fail("a")])
    records = read_records(tmp_path / f"out.{suffix}")
    assert len(records) == 1


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_an_output_shorter_than_the_journal_says_is_refused(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out.{suffix}"
    with sink_for(out) as sink:
        sink.write(rows(0, 3))
        position = sink.flush()
    out.write_bytes(out.read_bytes()[:5])
    with pytest.raises(SinkError, match="--restart"):
        sink_for(out).open(position)
    out.unlink()
    with pytest.raises(SinkError, match="missing"):
        sink_for(out).open(position)


def test_a_position_of_another_sink_is_refused(tmp_path: Path) -> None:
    from conveyor import JournalError

    with pytest.raises(JournalError, match="does not fit"):
        JsonLines(tmp_path / "out.jsonl").open({"rowid": 3})


def test_records_from_results() -> None:
    @dataclasses.dataclass
    class Page:
        url: str
        size: int

    class Own:
        def __conveyor_record__(self) -> dict[str, Any]:
            return {"own": True}

    assert to_record(Page("u", 1)) == {"url": "u", "size": 1}
    assert to_record(Own()) == {"own": True}
    assert to_record({"a": 1}) == {"a": 1}
    assert to_record(5) == {"value": 5}
    assert to_record(fail("k"))["error_type"] == "ValueError"


def test_jsonl_writes_values_json_cannot_hold_as_text(tmp_path: Path) -> None:
    with JsonLines(tmp_path / "o.jsonl") as sink:
        sink.write([{"p": Path("/x"), "b": b"hi", 1: {2, 1}}, 7])
    assert read_records(tmp_path / "o.jsonl") == [{"p": "/x", "b": "hi", "1": [1, 2]}, {"value": 7}]


def test_csv_header_once_nested_as_json_and_unknown_fields_named(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    sink = Csv(out, failures=None)
    sink.open()
    sink.write([{"a": 1, "b": {"x": [1]}}, {"b": None, "a": "two"}])
    position = sink.flush()
    sink.close()
    again = Csv(out, failures=None)
    again.open(position)  # resumes under the header already there
    again.write([{"a": 3}])
    with pytest.raises(UsageError, match=r"\['c'\].*fields="):
        again.write([{"a": 4, "c": 1}])
    again.close()
    assert out.read_text() == 'a,b\n1,"{""x"":[1]}"\ntwo,\n3,\n'


def test_csv_inline_failures_get_their_columns_up_front(tmp_path: Path) -> None:
    with Csv(tmp_path / "o.csv") as sink:
        sink.write(rows(0, 1))
        sink.write_failures([fail("z")])
    header = (tmp_path / "o.csv").read_text().splitlines()[0]
    assert header == "key,n,stage,error_kind,error,error_type,attempts"


def test_parquet_widens_its_schema_and_the_folder_reads_as_one_dataset(tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    out = tmp_path / "o.parquet"
    sink = Parquet(out, failures=None)
    sink.open()
    sink.write([{"url": "a", "status": None}])
    sink.flush()
    sink.write([{"url": "b", "status": 200, "title": "B"}])  # null -> int, a new field
    sink.flush()
    sink.close()
    table = ds.dataset(out).to_table()
    assert table.to_pylist() == [
        {"url": "a", "status": None, "title": None},
        {"url": "b", "status": 200, "title": "B"},
    ]
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]


def test_parquet_refuses_mixed_types_and_a_folder_of_other_files(tmp_path: Path) -> None:
    sink = Parquet(tmp_path / "a.parquet")
    sink.open()
    sink.write([{"v": 1}, {"v": "x"}])
    with pytest.raises(UsageError, match="mixed types"):
        sink.flush()
    sink.close()
    (tmp_path / "b.parquet").mkdir()
    (tmp_path / "b.parquet" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"notes\.txt"):
        Parquet(tmp_path / "b.parquet").open()


def test_parquet_with_a_given_schema(tmp_path: Path) -> None:
    import pyarrow as pa

    schema = pa.schema([("url", pa.string()), ("status", pa.int32())])
    with Parquet(tmp_path / "o.parquet", schema=schema, failures=None) as sink:
        sink.write([{"url": "a"}, {"url": "b", "status": 404}])
    assert read_records(tmp_path / "o.parquet") == [
        {"url": "a", "status": None},
        {"url": "b", "status": 404},
    ]


def test_sqlite_adds_columns_and_keeps_other_tables(tmp_path: Path) -> None:
    out = tmp_path / "o.db"
    db = sqlite3.connect(out)
    db.execute("CREATE TABLE mine (x)")
    db.commit()
    db.close()
    with Sqlite(out, table="pages") as sink:
        sink.write([{"a": 1}, {"a": 2, "b": [1, 2]}])
    db = sqlite3.connect(out)
    try:
        assert db.execute("SELECT a, b FROM pages").fetchall() == [(1, None), (2, "[1,2]")]
        assert db.execute("SELECT count(*) FROM mine").fetchone() == (0,)
    finally:
        db.close()


def test_sqlite_refuses_to_write_into_a_journal(tmp_path: Path) -> None:
    open_journal(tmp_path / "j.db", fingerprint={}).close()
    with pytest.raises(UsageError, match="journal"):
        Sqlite(tmp_path / "j.db").open()


def test_sink_for_picks_by_extension_and_explains_unknown_ones(tmp_path: Path) -> None:
    assert type(sink_for(tmp_path / "a.ndjson")) is JsonLines
    assert type(sink_for("a.CSV")) is Csv
    assert type(sink_for("a.sqlite3", table="t")) is Sqlite
    assert type(sink_for("a.parquet")) is Parquet
    with pytest.raises(UsageError, match=r"\.jsonl"):
        sink_for("a.txt")
    with pytest.raises(UsageError, match="bogus"):
        sink_for("a.jsonl", bogus=1)
    with pytest.raises(UsageError, match="cannot be the output"):
        JsonLines("a.jsonl", failures="a.jsonl")


def test_describe_is_stable_and_json(tmp_path: Path) -> None:
    sink = Csv(tmp_path / "o.csv", fields=["a"], failures=tmp_path / "f.jsonl")
    assert (
        sink.describe()
        == Csv(tmp_path / "o.csv", fields=["a"], failures=tmp_path / "f.jsonl").describe()
    )
    orjson.dumps(sink.describe())


def test_writing_before_open_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="open"):
        JsonLines(tmp_path / "o.jsonl").write([{}])


def test_a_missing_folder_is_a_one_line_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="No such file") as caught:
        JsonLines(tmp_path / "nope" / "o.jsonl").open()
    assert "\n" not in str(caught.value)
