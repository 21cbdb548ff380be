"""Real processes killed with SIGKILL mid-write, then resumed: every key ends up once.

These drive a sink and the journal by hand (``crash_job direct``) in a tight
admit/write/flush/record loop, so a kill lands at every stage of a commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor._io import open_journal

from .helpers import (
    SINKS,
    SUFFIX,
    journal_done,
    keys_of,
    kill_loop,
    read_records,
    sink_folders,
    start_job,
    write_input,
)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_every_key_once(tmp_path: Path) -> None:
    folders, keys = sink_folders(tmp_path, 3000, duplicates=40)
    kill_loop(folders, "direct", rounds=10, delay=0.001, grow=(1, 12_000), done=journal_done)
    for sink, folder in folders.items():
        records = read_records(folder / f"out.{SUFFIX[sink]}")
        assert keys_of(records) == sorted(keys), sink
        with open_journal(folder / "job.journal", fingerprint=_fingerprint_of(folder)) as journal:
            stats = journal.statistics()
        assert stats.done == 3000, sink
        assert stats.duplicates == 40, sink


def _fingerprint_of(folder: Path) -> dict[str, object]:
    from conveyor._io import read_lines

    return {"source": read_lines(folder / "input.txt").describe()}


@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize(("payload", "full"), [(40, "journal"), (4000, "output")])
def test_full_disk_stops_with_one_line_and_resume_completes(
    sink: str, payload: int, full: str, tmp_path: Path
) -> None:
    keys = write_input(tmp_path / "input.txt", 2000)
    # Room for some of the job only: small records fill the journal's WAL first, big
    # ones the output.
    proc = start_job("direct", sink, tmp_path, fsize=96 * 1024, payload=payload)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "run again to resume" in lines[0]
    if not (sink == "sqlite" and full == "journal"):  # two WALs there: either may fill first
        assert ("journal" in lines[0]) == (full == "journal"), lines[0]
    with open_journal(tmp_path / "job.journal", fingerprint=_fingerprint_of(tmp_path)) as j:
        assert j.statistics().done < 2000

    proc = start_job("direct", sink, tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert keys_of(read_records(tmp_path / f"out.{SUFFIX[sink]}")) == sorted(keys)
