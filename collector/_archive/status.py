"""What ``tgspread status`` reports: pure SQL over an open archive, returned as plain records.

Per channel: posts archived (live and deleted), the newest post, the last metadata snapshot, the outcome
of the last pass that named it, passes that failed for it, a pending flood wait, and the message ids
the archive never saw. Telegram numbers a channel's messages 1, 2, 3, ... so every id between 1 and the
cursor (the newest id fetched) that is not archived is a gap. Some gaps are explained by the channel
itself (history cleared below ``available_min_id``); the rest are reported as *never seen*: service
messages ("channel created", "message pinned": tgspread does not store them) or posts deleted before
the first collection reached them. The archive cannot tell those two apart, and the report says so.

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        report = archive_status(archive.con)
        for ch in report.channels:
            print(ch.username, ch.posts, ch.never_seen_ids)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from . import provenance
from .channel_runs import channel_ranges

GAP_LABEL = ("never seen: service messages (not archived) or posts deleted before the first collection "
             "reached them; the archive cannot tell which")
LARGEST_GAPS = 3


@dataclass(frozen=True)
class Gap:
    """Message ids ``first_id..last_id`` (inclusive) that the archive never saw."""

    first_id: int
    last_id: int

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True)
class ChannelStatus:
    """One channel as the archive knows it. ``channel_id`` is None for a name that never resolved."""

    channel_id: int | None
    username: str | None
    title: str | None
    state: str | None                 # channels.status: active, private, gone, group, not_found (None: never resolved)
    posts: int = 0                    # archived posts, deleted ones included
    deleted: int = 0                  # of which seen deleted
    newest_post_at: datetime | None = None
    last_snapshot_at: datetime | None = None
    participants: int | None = None
    cursor: int = 0                   # newest message id fetched
    last_run_id: int | None = None
    last_run_at: datetime | None = None
    last_outcome: str | None = None   # ok, flood_wait, not_found, private, error, not_owned
    last_error: str | None = None
    failed_passes: int = 0            # passes that named the channel and did not end ok
    flood_until: datetime | None = None
    cleared_ids: int = 0              # ids at or below available_min_id not archived: history cleared
    never_seen_ids: int = 0           # the other missing ids (see GAP_LABEL)
    largest_gaps: tuple[Gap, ...] = ()
    last_input: str | None = None     # the name the last pass was given for it

    @property
    def name(self) -> str:
        """``@username``; else the name the user gave; else the id."""
        if self.username and self.channel_id is not None:
            return f"@{self.username}"
        if self.last_input:
            return self.last_input
        return str(self.channel_id) if self.channel_id is not None else "?"


@dataclass(frozen=True)
class FloodWait:
    """A long flood wait still pending: no ``request`` is sent before ``until``."""

    request: str
    until: datetime
    seconds: int
    channel_id: int | None
    username: str | None


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    requests: int | None
    error: str | None


@dataclass(frozen=True)
class Totals:
    """Row counts over the whole archive."""

    channels: int
    posts: int
    deleted: int
    observations: int
    versions: int
    channel_observations: int
    runs: int


@dataclass(frozen=True)
class ArchiveStatus:
    as_of: datetime
    channels: list[ChannelStatus]
    flood_waits: list[FloodWait]
    last_run: RunInfo | None
    totals: Totals
    gap_label: str = GAP_LABEL
    unresolved: list[ChannelStatus] = field(default_factory=list)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def archive_totals(con: duckdb.DuckDBPyConnection) -> Totals:
    """Counts of channels, posts (and deleted posts), observations, versions and passes."""
    row = _rows(con, """
        SELECT (SELECT count(*) FROM channels) AS channels,
               (SELECT count(*) FROM posts) AS posts,
               (SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL) AS deleted,
               (SELECT count(*) FROM post_observations) AS observations,
               (SELECT count(*) FROM post_versions) AS versions,
               (SELECT count(*) FROM channel_observations) AS channel_observations,
               (SELECT count(*) FROM runs) AS runs
    """)[0]
    return Totals(**{k: int(v) for k, v in row.items()})


# Missing ids per channel: between consecutive archived ids, and from the newest archived id up to the cursor.
# {posts} and {cursors}: the tables, or a range of their channels (gaps_sql).
_GAPS_TEMPLATE = """
WITH ids AS (
    SELECT channel_id, message_id,
           lag(message_id, 1, 0) OVER (PARTITION BY channel_id ORDER BY message_id) AS prev_id
    FROM {posts}
), tops AS (
    SELECT c.channel_id, c.max_message_id AS cursor, coalesce(max(p.message_id), 0) AS top
    FROM {cursors} c LEFT JOIN {posts} p USING (channel_id)
    GROUP BY c.channel_id, c.max_message_id
), gaps AS (
    SELECT channel_id, prev_id + 1 AS first_id, message_id - 1 AS last_id FROM ids WHERE message_id > prev_id + 1
    UNION ALL
    SELECT channel_id, top + 1, cursor FROM tops WHERE cursor > top
), split AS (
    SELECT g.channel_id, g.first_id, g.last_id,
           greatest(0, least(g.last_id, coalesce(ch.available_min_id, 0)) - g.first_id + 1) AS cleared,
           g.last_id - g.first_id + 1 AS size
    FROM gaps g LEFT JOIN channels ch USING (channel_id)
)
SELECT channel_id, first_id, last_id, cleared, size,
       row_number() OVER (PARTITION BY channel_id ORDER BY size - cleared DESC, first_id) AS rank
FROM split
"""


def gaps_sql(ranged: bool = False) -> str:
    """The gaps of every channel (:data:`GAPS_SQL`), or with ``ranged`` only of the channels ``BETWEEN $first AND
    $last``: a channel's gaps depend on its own rows only, so runs of channels give the same rows as one query, with
    memory bounded by a run (issue 14)."""
    if not ranged:
        return _GAPS_TEMPLATE.format(posts="posts", cursors="channel_cursors")
    return _GAPS_TEMPLATE.format(posts="(SELECT * FROM posts WHERE channel_id BETWEEN $first AND $last)",
                                 cursors="(SELECT * FROM channel_cursors WHERE channel_id BETWEEN $first AND $last)")


GAPS_SQL = gaps_sql()


#: Posts whose gaps are computed at a time (the window over ``posts`` per range of channels; issue 14).
GAP_RUN_ROWS = 2_000_000


def _gaps(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[int, int, tuple[Gap, ...]]]:
    """channel_id -> (cleared ids, never-seen ids, largest never-seen ranges); per range of channels."""
    out: dict[int, tuple[int, int, list[Gap]]] = {}
    for first, last in channel_ranges(con, GAP_RUN_ROWS, ("posts",)):
        for r in _rows(con, gaps_sql(ranged=True), {"first": first, "last": last}):
            cleared, seen_missing, largest = out.get(r["channel_id"], (0, 0, []))
            unexplained = int(r["size"]) - int(r["cleared"])
            if unexplained > 0 and r["rank"] <= LARGEST_GAPS:
                largest.append(Gap(int(r["first_id"]) + int(r["cleared"]), int(r["last_id"])))
            out[r["channel_id"]] = (cleared + int(r["cleared"]), seen_missing + unexplained, largest)
    return {k: (c, n, tuple(sorted(g, key=lambda gap: -gap.size))) for k, (c, n, g) in out.items()}


_CHANNELS_SQL = """
WITH counts AS (
    SELECT channel_id, count(*) AS posts, count(deleted_at) AS deleted, max(posted_at) AS newest_post_at
    FROM posts GROUP BY channel_id
), last_rc AS (
    SELECT rc.channel_id, rc.run_id, r.started_at, rc.outcome, rc.error, rc.input
    FROM run_channels rc JOIN runs r USING (run_id)
    WHERE rc.channel_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY rc.channel_id ORDER BY rc.run_id DESC) = 1
), failed AS (
    SELECT channel_id, count(DISTINCT run_id) AS failed_passes FROM run_channels
    WHERE channel_id IS NOT NULL AND outcome <> 'ok' GROUP BY channel_id
), flood AS (
    SELECT channel_id, max(until) AS flood_until FROM flood_waits WHERE until > $as_of GROUP BY channel_id
)
SELECT ch.channel_id, ch.username, ch.title, ch.status AS state, ch.participants_count AS participants,
       coalesce(n.posts, 0) AS posts, coalesce(n.deleted, 0) AS deleted, n.newest_post_at,
       ch.last_snapshot_at, coalesce(cur.max_message_id, 0) AS cursor,
       l.run_id AS last_run_id, l.started_at AS last_run_at, l.outcome AS last_outcome, l.error AS last_error,
       l.input AS last_input,
       coalesce(f.failed_passes, 0) AS failed_passes, fw.flood_until
FROM channels ch
LEFT JOIN counts n USING (channel_id)
LEFT JOIN channel_cursors cur USING (channel_id)
LEFT JOIN last_rc l USING (channel_id)
LEFT JOIN failed f USING (channel_id)
LEFT JOIN flood fw USING (channel_id)
ORDER BY lower(coalesce(ch.username, ch.title, '')), ch.channel_id
"""

# Names the latest pass was given that never resolved to a channel (misspelt, invite links, ...).
_UNRESOLVED_SQL = """
SELECT rc.input, rc.run_id, r.started_at, rc.outcome, rc.error,
       (SELECT count(*) FROM run_channels x WHERE x.input = rc.input AND x.outcome <> 'ok') AS failed_passes
FROM run_channels rc JOIN runs r USING (run_id)
WHERE rc.run_id = (SELECT max(run_id) FROM runs) AND rc.channel_id IS NULL
ORDER BY rc.input
"""


def _as_of(con: duckdb.DuckDBPyConnection, now: datetime | None) -> datetime:
    """The clock for "pending": the later of ``now`` (default: real time) and the newest pass's clock.

    A pass's clock can run ahead of the wall clock (the simulated world of ``tgspread demo``); flood waits
    it recorded are then judged on its own clock.
    """
    wall = datetime.now(UTC) if now is None else now
    row = con.execute("SELECT max(started_at) FROM runs").fetchone()
    latest = row[0] if row else None
    return max(wall, latest.astimezone(UTC)) if latest is not None else wall


def archive_status(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> ArchiveStatus:
    """Everything ``tgspread status`` shows, read from ``con`` (read-only is enough)."""
    as_of = _as_of(con, now)
    gaps = _gaps(con)
    channels = []
    for r in _rows(con, _CHANNELS_SQL, {"as_of": as_of}):
        cleared, never_seen, largest = gaps.get(r["channel_id"], (0, 0, ()))
        channels.append(ChannelStatus(
            channel_id=r["channel_id"], username=r["username"], title=r["title"], state=r["state"],
            posts=int(r["posts"]), deleted=int(r["deleted"]), newest_post_at=_utc(r["newest_post_at"]),
            last_snapshot_at=_utc(r["last_snapshot_at"]), participants=r["participants"], cursor=int(r["cursor"]),
            last_run_id=r["last_run_id"], last_run_at=_utc(r["last_run_at"]), last_outcome=r["last_outcome"],
            last_error=r["last_error"], failed_passes=int(r["failed_passes"]), flood_until=_utc(r["flood_until"]),
            cleared_ids=cleared, never_seen_ids=never_seen, largest_gaps=largest, last_input=r["last_input"],
        ))
    unresolved = [
        ChannelStatus(channel_id=None, username=None, last_input=r["input"], title=None, state=None,
                      last_run_id=r["run_id"],
                      last_run_at=_utc(r["started_at"]), last_outcome=r["outcome"], last_error=r["error"],
                      failed_passes=int(r["failed_passes"]))
        for r in _rows(con, _UNRESOLVED_SQL)
    ]
    floods = [
        FloodWait(request=r["request"], until=_utc(r["until"]) or as_of, seconds=int(r["seconds"]),
                  channel_id=r["channel_id"], username=r["username"])
        for r in _rows(con, """
            SELECT f.request, f.until, f.seconds, f.channel_id, ch.username
            FROM flood_waits f LEFT JOIN channels ch USING (channel_id)
            WHERE f.until > $as_of
            QUALIFY row_number() OVER (PARTITION BY f.request ORDER BY f.until DESC) = 1
            ORDER BY f.until
        """, {"as_of": as_of})
    ]
    runs = _rows(con, "SELECT run_id, started_at, finished_at, status, requests, error FROM runs "
                      "ORDER BY run_id DESC LIMIT 1")
    last_run = None
    if runs:
        r = runs[0]
        last_run = RunInfo(run_id=int(r["run_id"]), started_at=_utc(r["started_at"]) or as_of,
                           finished_at=_utc(r["finished_at"]), status=r["status"], requests=r["requests"],
                           error=r["error"])
    return ArchiveStatus(as_of=as_of, channels=channels, flood_waits=floods, last_run=last_run,
                         totals=archive_totals(con), unresolved=unresolved)


@dataclass(frozen=True)
class FieldRoute:
    """How many of a channel's posts have one group of fields (``text``, ``counters``, ``reactions``, ``header``)
    from one route (``api``, ``web``, ``export``, a fill such as ``export+web``, or ``unrecorded``: written before
    migration 0011), and the range of that route's observation times."""

    channel_id: int
    group: str
    route: str
    posts: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None


def _routes_sql(recorded: bool) -> str:
    """One scan of the channels' posts: their combinations of routes (a handful), then a row per group and route.
    ``recorded``: the archive has migration 0011's columns (a read-only open of an older file has not)."""
    routes, per_group = [], []
    for i, group in enumerate(provenance.GROUPS):
        has = " OR ".join(f"{c} IS NOT NULL" for c in provenance.LEADERS[group])
        source, seen = (f"{group}_source", f"{group}_seen_at") if recorded else ("NULL", "NULL::TIMESTAMPTZ")
        routes.append(f"coalesce({source}, CASE WHEN {has} THEN 'unrecorded' END) AS r{i}, "
                      f"min({seen}) AS a{i}, max({seen}) AS b{i}")
        per_group.append(f"SELECT channel_id, {i} AS g, '{group}' AS field_group, r{i} AS route, sum(n) AS posts, "
                         f"min(a{i}) AS first_seen_at, max(b{i}) AS last_seen_at FROM combos "
                         f"WHERE r{i} IS NOT NULL GROUP BY channel_id, r{i}")
    keys = ", ".join(f"r{i}" for i in range(len(provenance.GROUPS)))
    return (f"WITH combos AS (SELECT channel_id, {', '.join(routes)}, count(*) AS n FROM posts "
            f"WHERE list_contains($ids, channel_id) GROUP BY channel_id, {keys}) "
            f"SELECT channel_id, field_group, route, posts, first_seen_at, last_seen_at "
            f"FROM ({' UNION ALL '.join(per_group)}) ORDER BY channel_id, g, posts DESC, route")


def field_routes(con: duckdb.DuckDBPyConnection, channel_ids: list[int]) -> list[FieldRoute]:
    """Per channel of ``channel_ids``, group of fields and route: what each route contributed (provenance by
    field, docs/sources.md). Groups no route gave a value are left out. ``analysis.provenance`` is the same
    for notebooks.

    Example: ``[FieldRoute(1, 'text', 'export', 120, ...), FieldRoute(1, 'counters', 'api', 118, ...)]``.
    """
    if not channel_ids:
        return []
    row = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'main' "
                      "AND table_name = 'posts' AND column_name = 'text_source'").fetchone()
    recorded = bool(row and row[0])
    return [FieldRoute(channel_id=int(r["channel_id"]), group=r["field_group"], route=r["route"],
                       posts=int(r["posts"]), first_seen_at=_utc(r["first_seen_at"]),
                       last_seen_at=_utc(r["last_seen_at"]))
            for r in _rows(con, _routes_sql(recorded), {"ids": [int(c) for c in channel_ids]})]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def status_as_json(status: ArchiveStatus) -> dict[str, Any]:
    """A JSON-ready dict (ISO 8601 UTC timestamps) of :func:`archive_status`'s result, for scripts."""
    out: dict[str, Any] = _plain(asdict(status))
    for key in ("channels", "unresolved"):
        for plain, record in zip(out[key], getattr(status, key), strict=True):
            plain["name"] = record.name
            for gap in plain["largest_gaps"]:
                gap["size"] = gap["last_id"] - gap["first_id"] + 1
    return out
