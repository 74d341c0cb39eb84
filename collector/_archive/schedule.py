"""What scheduled runs keep in the archive: the requests each run sent (``run_requests``, read back for the
budgets that span runs) and one row per run of the plan's numbers (``run_schedule``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .archive import Archive


def record_usage(archive: Archive, run_id: int, at: datetime, used: Mapping[str, int]) -> None:
    """Store (or update) the requests ``run_id`` sent by kind; ``at`` is the run's clock. Idempotent."""
    rows = [(run_id, name, at, int(count)) for name, count in sorted(used.items()) if count]
    if not rows:
        return
    with archive.transaction() as con:
        con.executemany(
            "INSERT INTO run_requests (run_id, request, run_at, requests) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, request) DO UPDATE SET requests = excluded.requests", rows)


def usage_since(archive: Archive, request: str, since: datetime, until: datetime) -> tuple[int, datetime | None]:
    """(requests of kind ``request`` sent by runs started in ``(since, until]``, the earliest such run)."""
    row = archive.con.execute(
        "SELECT coalesce(sum(requests), 0), min(run_at) FROM run_requests WHERE request = ? AND run_at > ? "
        "AND run_at <= ?",
        [request, since, until]).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


def record_schedule(archive: Archive, row: Mapping[str, Any]) -> None:
    """One run's plan numbers (``run_schedule``; a row for that run already there is kept)."""
    columns = ("run_id", "started_at", "channels_due", "channels_skipped", "channels_not_due", "max_requests",
               "resolves_allowed", "requests", "budget_exhausted", "next_due_at")
    archive.con.execute(
        f"INSERT INTO run_schedule ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        "ON CONFLICT DO NOTHING", [row[c] for c in columns])
