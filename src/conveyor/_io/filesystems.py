"""Whether a file lives on a network filesystem, where SQLite's WAL mode must not be used.

WAL keeps its index in a shared-memory file (``-wal``/``-shm``) that every process opening
the database maps; across machines (NFS, SMB, cluster filesystems) that memory is not
shared, and SQLite's documentation says WAL does not work there. A sharded job on Ray keeps
its journals and SQLite parts in a folder every node sees, so those files use a rollback
journal on such filesystems (``sqlite_journal_mode``), with POSIX locks, which NFSv3+ and
the cluster filesystems do provide.

``CONVEYOR_SQLITE_WAL=off`` forces the rollback journal anywhere, ``on`` forces WAL (for a
filesystem this module does not know); unset, the filesystem type of the path decides,
read from ``/proc/self/mountinfo`` on Linux (elsewhere: WAL).
"""

from __future__ import annotations

import os
from pathlib import Path

# Filesystem types (as /proc/self/mountinfo names them) whose files other machines open.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p", "afs", "ceph", "lustre",
        "gpfs", "glusterfs", "beegfs", "ocfs2", "gfs2", "fuse.sshfs", "fuse.glusterfs",
        "fuse.ceph", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone",
    }
)  # fmt: skip
MOUNTINFO = Path("/proc/self/mountinfo")


def filesystem_type(path: str | os.PathLike[str], mountinfo: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (its deepest mount point), or None when
    it cannot be told (not Linux, no /proc)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields, sep, rest = line.partition(" - ")
        parts = fields.split()
        if not sep or len(parts) < 5 or not rest:
            continue
        point = _unescape(parts[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), rest.split()[0])
    return None if best is None else best[1]


def sqlite_journal_mode(path: str | os.PathLike[str]) -> str:
    """``"wal"`` or ``"delete"`` (a rollback journal) for an SQLite file at ``path``."""
    forced = os.environ.get("CONVEYOR_SQLITE_WAL", "").strip().lower()
    if forced in ("0", "off", "no", "false"):
        return "delete"
    if forced in ("1", "on", "yes", "true"):
        return "wal"
    kind = filesystem_type(Path(path).parent)
    return "delete" if kind in NETWORK_FILESYSTEMS else "wal"


def _unescape(field: str) -> str:
    r"""mountinfo writes a space as \040, a tab as \011, a newline as \012, \ as \134."""
    if "\\" not in field:
        return field
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)
