"""Sources: lazy, re-iterable, with cheap counts that match what iteration yields."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import UsageError
from conveyor._io import Parquet, read_csv, read_jsonl, read_lines, read_parquet

from .helpers import ROOT


def test_lines_skip_blanks_and_comments_and_strip(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(b"\xef\xbb\xbf# header\nhttp://a\n\n   \n  http://b \r\n#x\nhttp://c")
    source = read_lines(path)
    assert list(source) == ["http://a", "http://b", "http://c"]
    assert list(source) == ["http://a", "http://b", "http://c"]  # re-iterable
    assert source.count() == 3


line_text = st.lists(
    st.one_of(
        st.text(alphabet=" \t#abc\r", max_size=6),
        st.sampled_from(["", "#", " # x", "http://a", "\r"]),
    ),
    max_size=40,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=line_text, final_newline=st.booleans())
def test_line_count_matches_iteration(
    tmp_path: Path, lines: list[str], final_newline: bool
) -> None:
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""), newline="")
    source = read_lines(path)
    assert source.count() == len(list(source))


def test_gzip_is_read_transparently_and_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt.gz"
    with gzip.open(path, "wt") as file:
        file.write("a\n#c\nb\n")
    source = read_lines(path)
    assert list(source) == ["a", "b"]
    assert source.count() is None


def test_stdin_is_dash() -> None:
    code = "from conveyor._io import read_lines; s = read_lines('-'); print(list(s), s.count())"
    done = subprocess.run(
        [sys.executable, "-c", code], input="x\n\n# c\ny\n", capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "['x', 'y'] None"


def test_iteration_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("".join(f"line-{i}\n" for i in range(100_000)))
    iterator = iter(read_lines(path))
    assert next(iterator) == "line-0"
    iterator.close()  # type: ignore[attr-defined]


def test_describe_names_the_file_and_changes_with_it(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("a\n")
    before = read_lines(path).describe()
    assert before == read_lines(path).describe()
    assert before["path"] == str(path)
    assert before["size"] == 2
    path.write_text("a\nb\n")
    assert read_lines(path).describe() != before


def test_missing_input_and_bad_text_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(UsageError, match="folder"):
        read_lines(tmp_path)
    (tmp_path / "bin.txt").write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(UsageError, match="UTF-8"):
        list(read_lines(tmp_path / "bin.txt"))


def test_csv_column_rows_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,url\n1,http://a\n\n2,http://b\n")
    assert list(read_csv(path)) == ["http://a", "http://b"]
    assert read_csv(path).count() == 2
    assert list(read_csv(path, column=None)) == [
        {"id": "1", "url": "http://a"},
        {"id": "2", "url": "http://b"},
    ]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('url,note\nhttp://a,"two\nlines"\nhttp://b,x\n')
    assert list(read_csv(quoted)) == ["http://a", "http://b"]
    assert read_csv(quoted).count() == 2
    with pytest.raises(UsageError, match=r"no column 'link'.*\['id', 'url'\]"):
        read_csv(path, column="link")
    short = tmp_path / "short.csv"
    short.write_text("id,url\n1\n")
    with pytest.raises(UsageError, match="line 2"):
        list(read_csv(short))


def test_jsonl_field_whole_records_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"url": "a", "n": 1}\n\n{"url": "b"}\n')
    assert list(read_jsonl(path)) == ["a", "b"]
    assert read_jsonl(path).count() == 2
    assert next(iter(read_jsonl(path, field=None))) == {"url": "a", "n": 1}
    (tmp_path / "bad.jsonl").write_bytes(b'{"url": "a"}\n{oops\n')
    with pytest.raises(UsageError, match="line 2 is not JSON"):
        list(read_jsonl(tmp_path / "bad.jsonl"))
    (tmp_path / "other.jsonl").write_bytes(orjson.dumps({"link": "a"}) + b"\n")
    with pytest.raises(UsageError, match="no field 'url'"):
        list(read_jsonl(tmp_path / "other.jsonl"))


def test_parquet_file_and_folder_with_metadata_count(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"url": ["a", "b", "c"], "n": [1, 2, 3]}), tmp_path / "in.parquet")
    source = read_parquet(tmp_path / "in.parquet", batch_size=2)
    assert list(source) == ["a", "b", "c"]
    assert source.count() == 3
    assert next(iter(read_parquet(tmp_path / "in.parquet", column=None))) == {"url": "a", "n": 1}
    with pytest.raises(UsageError, match="no column 'link'"):
        read_parquet(tmp_path / "in.parquet", column="link")
    # The Parquet sink's folder of parts is a source too.
    with Parquet(tmp_path / "out.parquet", failures=None) as sink:
        sink.write([{"url": "x"}])
        sink.flush()
        sink.write([{"url": "y"}])
    folder = read_parquet(tmp_path / "out.parquet")
    assert sorted(folder) == ["x", "y"]
    assert folder.count() == 2
    assert folder.describe()["files"] == 2


def test_parquet_without_pyarrow_says_how_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from conveyor._io import read_parquet\n"
        "try:\n    read_parquet('x.parquet')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    (tmp_path / "x.parquet").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True,
    )  # fmt: skip
    assert "UsageError" in done.stdout
    assert "pip install 'conveyor[parquet]'" in done.stdout
