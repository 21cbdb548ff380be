"""Journals and SQLite parts on a network filesystem: a rollback journal instead of WAL.

No NFS server can be mounted here, so the filesystem check reads sample mountinfo text,
and the rollback journal is forced with ``CONVEYOR_SQLITE_WAL=off`` for the real runs,
SIGKILLs included.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conveyor._io import open_journal, read_lines
from conveyor._io.filesystems import filesystem_type, sqlite_journal_mode

from .helpers import SUFFIX, journal_done, keys_of, kill_loop, read_records, sink_folders

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /shared rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
41 40 8:2 / /shared/local\\040disk rw,relatime shared:21 - xfs /dev/sdb1 rw
42 22 0:40 / /mnt/smb rw,relatime shared:22 - cifs //nas/share rw
"""


def test_the_deepest_mount_point_names_the_filesystem() -> None:
    assert filesystem_type("/shared/job/out.journal", MOUNTINFO) == "nfs4"
    assert filesystem_type("/shared/local disk/out.journal", MOUNTINFO) == "xfs"
    assert filesystem_type("/sharedother/x", MOUNTINFO) == "ext4"  # not under /shared
    assert filesystem_type("/mnt/smb", MOUNTINFO) == "cifs"
    assert filesystem_type("/tmp/x", "") is None


def test_the_mode_can_be_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_SQLITE_WAL", "off")
    assert sqlite_journal_mode(tmp_path / "j") == "delete"
    monkeypatch.setenv("CONVEYOR_SQLITE_WAL", "on")
    assert sqlite_journal_mode(tmp_path / "j") == "wal"
    monkeypatch.delenv("CONVEYOR_SQLITE_WAL")
    expected = "delete" if filesystem_type(tmp_path) in ("nfs", "nfs4") else "wal"
    assert sqlite_journal_mode(tmp_path / "j") == expected


def _header_mode(path: Path) -> bytes:
    return path.read_bytes()[18:20]  # b"\x01\x01": rollback journal; b"\x02\x02": WAL


@pytest.mark.slow
def test_sigkill_then_resume_with_rollback_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_SQLITE_WAL", "off")  # inherited by the jobs
    folders, keys = sink_folders(tmp_path, 2000, duplicates=20)
    kill_loop(folders, "direct", rounds=6, delay=0.001, grow=(1, 12_000), done=journal_done)
    for sink, folder in folders.items():
        journal = folder / "job.journal"
        assert _header_mode(journal) == b"\x01\x01", sink
        assert not Path(f"{journal}-wal").exists(), sink
        assert keys_of(read_records(folder / f"out.{SUFFIX[sink]}")) == sorted(keys), sink
        fingerprint = {"source": read_lines(folder / "input.txt").describe()}
        with open_journal(journal, fingerprint=fingerprint) as opened:
            assert opened.statistics().done == 2000, sink
    sqlite_parts = [f for f in folders.values() if (f / "out.db").exists()]
    for folder in sqlite_parts:
        mode = sqlite3.connect(folder / "out.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "delete"
