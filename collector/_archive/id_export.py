"""``tgspread export --ids``: a dehydrated id list of the archive's posts, for sharing a dataset.

Telegram's terms (and most ethics approvals) let researchers share *which* posts a dataset holds, not their
content: the list names each post by ``channel_id``, ``username`` and ``message_id`` (and with ``dates``
its ``posted_at``, UTC ISO 8601), and a colleague re-collects it with ``tgspread hydrate``. Left out:
posts deleted on Telegram (their authors took them down), messages of groups (``channels.megagroup``:
private people's words), and posts of channels without a numeric id. A username that is not Telegram's
spelling (it came from a file) is written empty. Rows are streamed in (channel_id, message_id) order, so
memory stays bounded whatever the archive's size.

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        rows = export_ids(archive.con, Path("ids.csv"), dates=True)
"""

from __future__ import annotations

import csv
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb

_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_SQL = """
SELECT p.channel_id, c.username, p.message_id, p.posted_at
FROM posts p LEFT JOIN channels c USING (channel_id)
WHERE p.deleted_at IS NULL AND NOT coalesce(c.megagroup, false) {since}
ORDER BY p.channel_id, p.message_id
"""


def export_ids(con: duckdb.DuckDBPyConnection, out: Path, *, dates: bool = False,
               since: datetime | None = None) -> int:
    """Write the id list to ``out`` (a new file, written beside it and renamed at the end); returns the rows."""
    params = {"since": since} if since is not None else {}
    cur = con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    cur.execute(_SQL.format(since="AND p.posted_at >= $since" if since is not None else ""), params or None)
    part = out.with_name(f".{out.name}.part")
    rows = 0
    try:
        with open(part, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["channel_id", "username", "message_id", *(["posted_at"] if dates else [])])
            while batch := cur.fetchmany(10_000):
                for channel_id, username, message_id, posted_at in batch:
                    name = username if username and _USERNAME.match(username) else ""
                    row: list[object] = [channel_id, name, message_id]
                    if dates:
                        row.append(posted_at.astimezone(UTC).isoformat() if posted_at is not None else "")
                    writer.writerow(row)
                rows += len(batch)
            f.flush()
            os.fsync(f.fileno())
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    return rows
