"""What ``tgspread verify`` checks: SQL over an open archive (read-only is enough), returned as plain records.

Seven checks, each yielding :class:`Finding` rows naming the table, channel and message id:

- ``unique_keys``: every table's natural key is unique (``GROUP BY key HAVING count(*) > 1``), whether or not
  the table declares it (a merged or hand-edited copy can lose its constraints).
- ``observations``: per post, observations lie between the post's ``posted_at``/``first_seen_at`` and its
  ``last_seen_at``; views and forwards never go down beyond a tolerance (see :data:`COUNTER_RULES`).
- ``versions``: every edit's earlier text is present. Texts form a chain (versions by ``observed_at``, then
  the current post); a text edited at ``E`` cannot have been archived before ``E``, so a link whose
  ``edited_at`` is later than the moment it was archived (more than :data:`CLOCK_SKEW`) means the version
  it replaced is missing.
- ``deletions``: deleted posts are never purged: no observation or version without its post, and no
  channel with fewer posts than its passes added (``run_channels.new_posts``).
- ``cursors``: ``channel_cursors`` agrees with the ids archived by passes that read history (see
  :func:`cursor_findings`; ``hydrate`` fetches by id and moves no cursor: :func:`history_passes_sql`).
- ``gaps``: message ids never archived, each range with what explains it (:data:`GAP_EXPLANATIONS`).
- ``lake`` (when a lake is given): the collector's files in the lake hold what the archive holds
  (:mod:`collector._archive.lake_verify`).

Then a content digest per channel and for the whole archive (:mod:`docs/verify.md` defines it exactly,
with the SQL to recompute it): two copies of an archive have equal digests, a one-field change changes
the digest of exactly the channel it belongs to.

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        report = verify_archive(archive.con)
    print(report.clean, report.archive_digest)
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from .channel_runs import HIGHEST, LOWEST, channel_counts, covering, runs_of
from .run_stage import Stage
from .status import gaps_sql  # the gap definition `tgspread status` reports: one definition for both

CHECKS = ("unique_keys", "observations", "versions", "deletions", "cursors", "gaps", "lake")

#: Natural key of every table tgspread writes, checked whether or not the table declares it.
#: Tables not listed here are checked on their declared primary key (none declared: skipped, reported as info).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "channels": ("channel_id",),
    "channel_observations": ("channel_id", "observed_at"),
    "channel_usernames": ("username",),
    "peers": ("channel_id",),
    "posts": ("channel_id", "message_id"),
    "post_observations": ("channel_id", "message_id", "observed_at"),
    "post_versions": ("channel_id", "message_id", "observed_at"),
    "channel_cursors": ("channel_id",),
    "runs": ("run_id",),
    "run_channels": ("run_id", "input"),
    "flood_waits": ("request", "started_at"),
    "imports": ("file_sha256",),
    "pseudonym_keys": ("name",),
    "schema_migrations": ("version",),
}

#: Telegram stamps edits with its clock, the collector stamps observations with the machine's: this much
#: disagreement is tolerated before an edit "newer than the moment it was archived" counts as a problem.
CLOCK_SKEW = timedelta(minutes=5)

#: Ids above the newest archived post up to the cursor: the cursor is the newest message Telegram returned,
#: so the ids there are service messages (a pin, a title change) or posts deleted before they were fetched.
#: Up to this many is a warning; more is an error (the cursor was moved past what was archived).
CURSOR_SLACK = 10

#: A never-archived id range fetched by a later pass (not the first backfill) longer than this is unexplained.
SHORT_GAP = 5

GAP_EXPLANATIONS: dict[str, str] = {
    "history_cleared": "at or below the channel's available_min_id: Telegram says its history was cleared there",
    "purged": "the archive holds observations or versions of these ids but not the posts: purged rows",
    "deleted_before_archiving": "an archived post forwards or replies to an id here: a real post, deleted "
                                "before a pass reached it",
    "region_hidden": "the channel is restricted in some regions: posts hidden in this account's region are "
                     "never returned",
    "before_first_archive": "fetched by the channel's first pass: service messages, or posts deleted before "
                            "the first collection (the archive cannot tell which)",
    "service_messages": "a few ids fetched by a later pass: service messages (pins, title changes) or a post "
                        "deleted between passes",
    "above_newest_post": "between the newest archived post and the cursor: service messages at the top when "
                         "only a few (see the cursors check), else a moved cursor or purged posts",
    "unexplained": "more ids than service messages explain, fetched after the first pass; posts deleted "
                   "between passes in bulk, or rows lost from the archive",
}


@dataclass(frozen=True)
class CounterRule:
    """A counter that should not go down: a drop up to ``max(absolute, relative * earlier)`` is a warning."""

    column: str
    absolute: int
    relative: float
    why: str


#: Views only grow, except Telegram's occasional corrections (removed bot views): small drops are warnings.
#: Forwards drop when a forwarding post is deleted: a wider tolerance. Replies and reactions are not checked
#: (comments are deleted and reactions withdrawn all the time).
COUNTER_RULES = (
    CounterRule("views", 10, 0.01, "Telegram occasionally corrects view counts down (removed bot views)"),
    CounterRule("forwards", 5, 0.10, "forwards drop when a forwarding post is deleted"),
)

DIGEST_VERSION = 1


@dataclass(frozen=True)
class Finding:
    """One problem (``error``), a doubt (``warning``) or a note (``info``), located as precisely as possible."""

    check: str
    severity: str
    table: str
    message: str
    channel_id: int | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class GapRange:
    """Message ids ``first_id..last_id`` (inclusive) of a channel never archived, and why."""

    channel_id: int
    first_id: int
    last_id: int
    explanation: str

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True)
class ChannelDigest:
    """The content digest of one channel (``docs/verify.md``) and the rows it covers."""

    channel_id: int
    sha256: str
    rows: dict[str, int]


@dataclass
class VerifyReport:
    """Everything ``tgspread verify`` prints. ``clean`` is True when no check found an error."""

    checked_at: datetime
    findings: list[Finding] = field(default_factory=list)
    gaps: list[GapRange] = field(default_factory=list)
    digests: list[ChannelDigest] = field(default_factory=list)
    archive_digest: str | None = None
    digest_version: int = DIGEST_VERSION
    channels: list[int] | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def clean(self) -> bool:
        return not self.errors


# -- helpers -----------------------------------------------------------------------------------------------
def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Base tables of the archive -> their columns, in table order."""
    out: dict[str, list[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE') ORDER BY table_name, ordinal_position").fetchall():
        out.setdefault(str(table), []).append(str(column))
    return out


def _declared_key(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, ...]:
    row = con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? "
                      "AND constraint_type = 'PRIMARY KEY' AND schema_name = 'main'", [table]).fetchone()
    return tuple(row[0]) if row else ()


#: Rows of the post-level tables a check reads at a time: every check whose result for a channel depends on that
#: channel's rows only runs once per range of channels holding about this many rows (``channel_runs``), so its
#: joins, windows and sorts hold a run, not the archive (issue 14: at 30M posts the whole-archive queries ran out
#: of the 256 MB cap).
CHECK_RUN_ROWS = 2_000_000


#: A check's run: channels ``first .. last`` and, of their posts, the message ids ``lo .. hi`` (a channel with more
#: rows than a run is split by message id; other runs take every id).
Run = tuple[int, int, int, int]


def _ranges(con: duckdb.DuckDBPyConnection) -> list[Run]:
    """The runs the checks read, in order, covering every channel id and message id."""
    counts = channel_counts(con)
    size = dict(counts)
    runs = runs_of(counts, CHECK_RUN_ROWS)
    out: list[Run] = []
    for (first, last), (lowest, highest) in zip(runs, covering(runs), strict=True):
        if first == last and size[first] > CHECK_RUN_ROWS:
            out += [(lowest, highest, lo, hi) for lo, hi in _message_runs(con, first)]
        else:
            out.append((lowest, highest, LOWEST, HIGHEST))
    return out or [(LOWEST, HIGHEST, LOWEST, HIGHEST)]


def _message_runs(con: duckdb.DuckDBPyConnection, channel: int) -> list[tuple[int, int]]:
    """Ranges of message ids of one channel holding about :data:`CHECK_RUN_ROWS` rows of its posts, observations
    and versions, covering every id (buckets of ``2**KEY_BUCKET_BITS`` ids)."""
    present = _tables(con)
    counted = " UNION ALL ".join(f"SELECT message_id FROM {t} WHERE channel_id = $ch"
                                 for t in ("posts", "post_observations", "post_versions") if t in present)
    buckets = con.execute(f"SELECT message_id >> {KEY_BUCKET_BITS} AS b, count(*) FROM ({counted}) "
                          "WHERE message_id IS NOT NULL GROUP BY 1 ORDER BY 1", {"ch": channel}).fetchall()
    runs = runs_of(((int(b), int(n)) for b, n in buckets), CHECK_RUN_ROWS)
    return [(LOWEST if lo == LOWEST else lo << KEY_BUCKET_BITS,
             HIGHEST if hi == HIGHEST else ((hi + 1) << KEY_BUCKET_BITS) - 1) for lo, hi in covering(runs)]


def _channel_runs(ranges: Sequence[Run]) -> list[tuple[int, int]]:
    """The channel ranges of ``ranges``, each once (for checks that do not split a channel by message id)."""
    return list(dict.fromkeys((first, last) for first, last, _, _ in ranges))


def _ranged_rows(con: duckdb.DuckDBPyConnection, sql: str, ranges: Sequence[Run],
                 stage: Stage | None = None) -> list[dict[str, Any]]:
    """``sql`` (which filters on ``BETWEEN $first AND $last``, perhaps on message ids ``BETWEEN $lo AND $hi``, and
    orders by channel, then message id) run per range, in order: the rows of one query over the archive. With a
    ``stage`` (:func:`_stage_checks`), the large tables name the range's staged rows only."""
    out: list[dict[str, Any]] = []
    if "$lo" in sql:
        for first, last, lo, hi in ranges:
            with _staged(stage, first, last):
                out += _rows(con, sql, {"first": first, "last": last, "lo": lo, "hi": hi})
    else:
        for first, last in _channel_runs(ranges):
            with _staged(stage, first, last):
                out += _rows(con, sql, {"first": first, "last": last})
    return out


def _staged(stage: Stage | None, first: int, last: int) -> contextlib.AbstractContextManager[None]:
    """The staged views of the channel range ``first .. last`` (nothing without a stage)."""
    return stage.views(stage.index[(first, last)]) if stage is not None else contextlib.nullcontext()


#: What the checks read of the large tables (:func:`_stage_checks`): the columns, those the file has.
STAGED_COLUMNS: dict[str, tuple[str, ...]] = {
    "posts": ("channel_id", "message_id", "posted_at", "edited_at", "first_seen_at", "last_seen_at",
              "reply_to_message_id"),
    "post_observations": ("channel_id", "message_id", "observed_at", "views", "forwards", "views_low",
                          "views_high"),
    "post_versions": ("channel_id", "message_id", "observed_at", "edited_at"),
    "channel_observations": ("channel_id", "observed_at"),
}
#: The staged forwards: ids a post forwards, staged by the forwarded channel (the gaps' evidence).
FORWARDS = "_verify_forwards"


def _stage_checks(con: duckdb.DuckDBPyConnection, stage: Stage) -> None:
    """Write the large tables' checked columns, and the forwarded ids, into ``stage``'s runs: one scan each."""
    present = _tables(con)
    for table, wanted in STAGED_COLUMNS.items():
        if table in present:
            columns = ", ".join(f'"{c}"' for c in wanted if c in present[table])
            stage.put(table, f'SELECT {columns} FROM "{table}"', "channel_id")
    if "posts" in present:
        stage.put(FORWARDS, "SELECT fwd_channel_id, fwd_message_id FROM posts WHERE fwd_channel_id IS NOT NULL "
                            "AND fwd_message_id IS NOT NULL", "fwd_channel_id")


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "null"


# -- unique keys ------------------------------------------------------------------------------------------
def unique_key_findings(con: duckdb.DuckDBPyConnection, ranges: Sequence[Run] | None = None, stage: Stage | None = None
                        ) -> list[Finding]:
    """Every duplicated natural key of every table: one error per key value, with how many rows share it.
    A key starting with ``channel_id`` is grouped per range of channels (``ranges``), then its NULL ids."""
    tables = _tables(con)
    out: list[Finding] = []
    ranged = None
    for table, columns in tables.items():
        key = NATURAL_KEYS.get(table) or _declared_key(con, table)
        if not key:
            out.append(Finding("unique_keys", "info", table, f"{table} has no known or declared key: not checked"))
            continue
        if not set(key) <= set(columns):
            out.append(Finding("unique_keys", "error", table,
                               f"{table} lacks key column(s) {', '.join(sorted(set(key) - set(columns)))}"))
            continue
        cols = ", ".join(f'"{c}"' for c in key)
        grouped = (f'SELECT {cols}, count(*) AS n FROM "{table}" {{where}} GROUP BY ALL HAVING count(*) > 1 '
                   f"ORDER BY {cols}")
        if key[0] == "channel_id":
            ranged = ranged or list(ranges or _ranges(con))
            where = "WHERE channel_id BETWEEN $first AND $last" + (
                " AND message_id BETWEEN $lo AND $hi" if key[1:2] == ("message_id",) else "")
            found = [*_ranged_rows(con, grouped.format(where=where), ranged, stage),
                     *_rows(con, grouped.format(where="WHERE channel_id IS NULL"))]
        else:
            found = _rows(con, grouped.format(where=""))
        for r in found:
            where = ", ".join(f"{c}={r[c]}" for c in key)
            out.append(Finding("unique_keys", "error", table,
                               f"{table}: {r['n']} rows share the key ({where}); a key must name one row",
                               r.get("channel_id"), r.get("message_id")))
    return out


# -- observations -----------------------------------------------------------------------------------------
_OBSERVATIONS_SQL = """
WITH o AS (
    SELECT o.channel_id, o.message_id, o.observed_at, p.posted_at, p.first_seen_at, p.last_seen_at,
           {counters},
           row_number() OVER w AS nth
    FROM post_observations o JOIN posts p USING (channel_id, message_id)
    WHERE o.channel_id BETWEEN $first AND $last AND p.channel_id BETWEEN $first AND $last
      AND o.message_id BETWEEN $lo AND $hi AND p.message_id BETWEEN $lo AND $hi
    WINDOW w AS (PARTITION BY o.channel_id, o.message_id ORDER BY o.observed_at)
)
SELECT * FROM o WHERE {conditions}
ORDER BY channel_id, message_id, observed_at
"""


def _counter_sql(rule: CounterRule, has_range: bool) -> str:
    """``lo_X``/``hi_X``: the range the observed value stands for (web previews round views: "1.5K"),
    and ``prev_lo_X``: the lower end of the previous observation's range."""
    c = rule.column
    lo = f"coalesce(o.{c}_low, o.{c})" if has_range and c == "views" else f"o.{c}"
    hi = f"coalesce(o.{c}_high, o.{c})" if has_range and c == "views" else f"o.{c}"
    return (f"{lo} AS lo_{c}, {hi} AS hi_{c}, "
            f"lag({lo}) OVER w AS prev_lo_{c}")


def observation_findings(con: duckdb.DuckDBPyConnection, ranges: Sequence[Run] | None = None, stage: Stage | None = None
                         ) -> list[Finding]:
    """Observations outside the post's lifetime in the archive (error) and counters going down (COUNTER_RULES);
    per range of channels (``ranges``, default: runs of :data:`CHECK_RUN_ROWS` rows)."""
    has_range = "views_low" in _tables(con).get("post_observations", [])
    counters = ", ".join(_counter_sql(rule, has_range) for rule in COUNTER_RULES)
    conditions = " OR ".join(
        ["observed_at < first_seen_at", "observed_at > last_seen_at",
         f"observed_at < posted_at - INTERVAL {int(CLOCK_SKEW.total_seconds())} SECOND"]
        + [f"hi_{r.column} < prev_lo_{r.column}" for r in COUNTER_RULES])
    out: list[Finding] = []
    sql = _OBSERVATIONS_SQL.format(counters=counters, conditions=conditions)
    for r in _ranged_rows(con, sql, ranges or _ranges(con), stage):
        where = f"post_observations: channel {r['channel_id']} message {r['message_id']} at {_stamp(r['observed_at'])}"
        at = (r["channel_id"], r["message_id"])
        if r["observed_at"] < r["first_seen_at"] or r["observed_at"] > r["last_seen_at"]:
            out.append(Finding("observations", "error", "post_observations",
                               f"{where}: outside the post's first_seen_at {_stamp(r['first_seen_at'])} .. "
                               f"last_seen_at {_stamp(r['last_seen_at'])}", *at))
        if r["posted_at"] is not None and r["observed_at"] < r["posted_at"] - CLOCK_SKEW:
            out.append(Finding("observations", "error", "post_observations",
                               f"{where}: observed before the post was posted ({_stamp(r['posted_at'])})", *at))
        for rule in COUNTER_RULES:
            before, now = r[f"prev_lo_{rule.column}"], r[f"hi_{rule.column}"]
            if before is None or now is None or now >= before:
                continue
            drop = before - now
            allowed = max(rule.absolute, rule.relative * before)
            severity = "warning" if drop <= allowed else "error"
            note = f" ({rule.why})" if severity == "warning" else f"; more than the {allowed:g} tolerated"
            out.append(Finding("observations", severity, "post_observations",
                               f"{where}: {rule.column} went down from {before} to {now}{note}", *at))
    return out


# -- versions -----------------------------------------------------------------------------------------------
# The chain of texts of each post: versions by observed_at, then the current text. Link i arrived when link
# i-1 was replaced (its observed_at); the first arrived at the post's first_seen_at.
_VERSIONS_SQL = """
WITH chain AS (
    SELECT channel_id, message_id, edited_at, observed_at AS replaced_at, 0 AS current FROM post_versions
    WHERE channel_id BETWEEN $first AND $last AND message_id BETWEEN $lo AND $hi
    UNION ALL
    SELECT channel_id, message_id, edited_at, NULL, 1 FROM posts
    WHERE channel_id BETWEEN $first AND $last AND message_id BETWEEN $lo AND $hi
), linked AS (
    SELECT c.*, p.first_seen_at,
           coalesce(lag(c.replaced_at) OVER w, p.first_seen_at) AS arrived_at,
           lag(c.edited_at) OVER w AS previous_edited_at
    FROM chain c JOIN posts p USING (channel_id, message_id)
    WHERE p.channel_id BETWEEN $first AND $last AND p.message_id BETWEEN $lo AND $hi
    WINDOW w AS (PARTITION BY c.channel_id, c.message_id ORDER BY c.current, c.replaced_at)
)
SELECT * FROM linked
WHERE edited_at > arrived_at + INTERVAL {skew} SECOND OR edited_at < previous_edited_at
ORDER BY channel_id, message_id, current, replaced_at
"""


def version_findings(con: duckdb.DuckDBPyConnection, ranges: Sequence[Run] | None = None, stage: Stage | None = None
                     ) -> list[Finding]:
    """Edits whose earlier text is missing from ``post_versions``, and versions out of edit order (per range of
    channels, as :func:`observation_findings`)."""
    out: list[Finding] = []
    sql = _VERSIONS_SQL.format(skew=int(CLOCK_SKEW.total_seconds()))
    for r in _ranged_rows(con, sql, ranges or _ranges(con), stage):
        what = "its current text" if r["current"] else f"the text replaced at {_stamp(r['replaced_at'])}"
        at = (r["channel_id"], r["message_id"])
        if r["previous_edited_at"] is not None and r["edited_at"] < r["previous_edited_at"]:
            out.append(Finding("versions", "error", "post_versions",
                               f"post_versions: channel {at[0]} message {at[1]}: {what} was edited at "
                               f"{_stamp(r['edited_at'])}, before the text it replaced "
                               f"({_stamp(r['previous_edited_at'])}): versions out of order", *at))
        else:
            out.append(Finding("versions", "error", "post_versions",
                               f"post_versions: channel {at[0]} message {at[1]}: {what} (edited "
                               f"{_stamp(r['edited_at'])}) is recorded as archived since {_stamp(r['arrived_at'])}, "
                               "before that edit: the text it replaced, which the archive held, has no "
                               "post_versions row (a dropped version)", *at))
    return out


# -- passes that read history ----------------------------------------------------------------------------
def history_passes_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL giving ``at``: the times (``runs.started_at``, the pass's one clock, which its posts' ``first_seen_at``
    carry) of the passes that read channel history, the passes whose posts the cursors cover: every run but those
    recorded as ``hydrate`` (``runs.kind``, migration 0014: a hydrate pass fetches posts by id and moves no
    cursor). Runs recorded before 0014 have no kind and count as history passes, as every run did before."""
    has_kind = bool(con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = 'runs' "
        "AND column_name = 'kind'").fetchall()[0][0])
    return ("SELECT started_at AS at FROM runs" + (" WHERE kind IS DISTINCT FROM 'hydrate'" if has_kind else "")
            + " EXCEPT SELECT started_at FROM runs WHERE " + ("kind = 'hydrate'" if has_kind else "false"))


# -- deletions ---------------------------------------------------------------------------------------------
_IN_RUN = "channel_id BETWEEN $first AND $last AND message_id BETWEEN $lo AND $hi"
_ORPHANS_SQL = """
SELECT '{table}' AS tbl, t.channel_id, t.message_id, count(*) AS n
FROM (SELECT channel_id, message_id FROM {table} WHERE {where}) t
ANTI JOIN (SELECT channel_id, message_id FROM posts WHERE {where}) p
     ON p.channel_id = t.channel_id AND p.message_id = t.message_id
GROUP BY ALL ORDER BY t.channel_id, t.message_id
"""

_COUNTS_SQL = """
WITH history AS ({history}), added AS (
    SELECT rc.channel_id, sum(rc.new_posts) AS added,
           coalesce(sum(rc.deletions) FILTER (WHERE h.at IS NOT NULL), 0) AS marked
    FROM run_channels rc LEFT JOIN runs r USING (run_id) LEFT JOIN history h ON h.at = r.started_at
    WHERE rc.channel_id IS NOT NULL GROUP BY rc.channel_id
), held AS (
    SELECT channel_id, count(*) AS posts, count(deleted_at) AS deleted FROM posts GROUP BY channel_id
)
SELECT a.channel_id, a.added, a.marked, coalesce(h.posts, 0) AS posts, coalesce(h.deleted, 0) AS deleted
FROM added a LEFT JOIN held h USING (channel_id)
WHERE coalesce(h.posts, 0) < a.added OR coalesce(h.deleted, 0) < a.marked
ORDER BY a.channel_id
"""


def deletion_findings(con: duckdb.DuckDBPyConnection, ranges: Sequence[Run] | None = None, stage: Stage | None = None
                      ) -> list[Finding]:
    """Posts that were archived and are gone: rows that name a missing post, channels short of posts (the rows
    naming a post per range of channels, then those with a NULL channel), and channels with fewer posts marked
    deleted than the passes that read their history marked (:func:`history_passes_sql`: a ``hydrate`` pass also
    counts listed ids it never archived, which no post can hold, so its deletions are not compared)."""
    out: list[Finding] = []
    ranged = list(ranges or _ranges(con))
    for table in ("post_observations", "post_versions"):
        orphans = [*_ranged_rows(con, _ORPHANS_SQL.format(table=table, where=_IN_RUN),
                                 ranged, stage),
                   *_rows(con, _ORPHANS_SQL.format(table=table, where="channel_id IS NULL"))]
        for r in orphans:
            out.append(Finding("deletions", "error", "posts",
                               f"posts: channel {r['channel_id']} message {r['message_id']} is missing but "
                               f"{table} holds {r['n']} row(s) of it: a purged post (deleted posts are kept "
                               "with deleted_at, never removed)", r["channel_id"], r["message_id"]))
    for r in _rows(con, "SELECT p.channel_id, count(*) AS n FROM posts p ANTI JOIN channels c USING (channel_id) "
                        "GROUP BY ALL ORDER BY 1"):
        out.append(Finding("deletions", "error", "channels",
                           f"channels: channel {r['channel_id']} is missing but posts holds {r['n']} of its posts",
                           r["channel_id"]))
    for r in _rows(con, _COUNTS_SQL.format(history=history_passes_sql(con))):
        if r["posts"] < r["added"]:
            out.append(Finding("deletions", "error", "posts",
                               f"posts: channel {r['channel_id']} holds {r['posts']} posts but its passes added "
                               f"{r['added']} (run_channels.new_posts): {r['added'] - r['posts']} purged",
                               r["channel_id"]))
        if r["deleted"] < r["marked"]:
            out.append(Finding("deletions", "warning", "posts",
                               f"posts: channel {r['channel_id']} has {r['deleted']} posts marked deleted but the "
                               f"passes that read its history marked {r['marked']} (run_channels.deletions): "
                               "purged deleted posts, or posts that came back after a deletion", r["channel_id"]))
    return out


# -- cursors ------------------------------------------------------------------------------------------------
_CURSORS_SQL = """
WITH history AS ({history}), ids AS (
    SELECT p.channel_id, max(p.message_id) AS newest,
           max(p.message_id) FILTER (WHERE p.source = 'api') AS newest_api,
           max(p.message_id) FILTER (WHERE p.source = 'api' AND h.at IS NOT NULL) AS newest_read
    FROM posts p LEFT JOIN history h ON h.at = p.first_seen_at GROUP BY p.channel_id
)
SELECT coalesce(c.channel_id, i.channel_id) AS channel_id, c.max_message_id AS cursor,
       coalesce(i.newest, 0) AS newest, i.newest_api, i.newest_read
FROM channel_cursors c FULL JOIN ids i USING (channel_id)
ORDER BY 1
"""


def cursor_findings(con: duckdb.DuckDBPyConnection) -> list[Finding]:
    """``channel_cursors`` against the archived ids.

    Error: API posts archived by a pass that read history (:func:`history_passes_sql`; ``first_seen_at`` is that
    pass's time) above the cursor (the cursor moves in the same transaction as the page it covers, so it can never
    be behind), or such posts and no cursor at all; more than :data:`CURSOR_SLACK` ids between the newest archived
    post and the cursor. Warning: up to that many (the newest message Telegram returned was a service message).
    Info: other posts above the cursor, or API posts and no cursor: fetched by id (``tgspread hydrate``, which
    never moves a cursor), from web previews or from Desktop exports; the next API pass reads them again.
    """
    out: list[Finding] = []
    for r in _rows(con, _CURSORS_SQL.format(history=history_passes_sql(con))):
        ch, cursor, newest, newest_api, read = (r["channel_id"], r["cursor"], int(r["newest"]), r["newest_api"],
                                                r["newest_read"])
        if cursor is None:
            if read is not None:
                out.append(Finding("cursors", "error", "channel_cursors",
                                   f"channel_cursors: channel {ch} has API posts up to message {read} archived by a "
                                   "pass that read its history, but no cursor; that pass wrote the cursor with "
                                   "them, so the cursor row was lost", ch, read))
            elif newest_api is not None:
                out.append(Finding("cursors", "info", "channel_cursors",
                                   f"channel_cursors: channel {ch} has API posts up to message {newest_api} and no "
                                   "cursor: they were fetched by id (tgspread hydrate) and its history was never "
                                   "read; the next collect reads it whole", ch, newest_api))
            continue
        if read is not None and read > cursor:
            out.append(Finding("cursors", "error", "channel_cursors",
                               f"channel_cursors: channel {ch}: cursor {cursor} is below archived message "
                               f"{read}; the cursor moves with the pages it covers, so it was set back",
                               ch, read))
        elif newest > cursor:
            out.append(Finding("cursors", "info", "channel_cursors",
                               f"channel_cursors: channel {ch}: posts up to {newest} fetched by id (tgspread "
                               f"hydrate), from web previews or from exports lie above the cursor {cursor}; the "
                               "next API pass reads them again", ch, newest))
        if cursor > newest:
            beyond = cursor - newest
            severity = "warning" if beyond <= CURSOR_SLACK else "error"
            why = ("the newest message Telegram returned was a service message, or the cursor was moved"
                   if severity == "warning" else f"more than the {CURSOR_SLACK} service messages tolerated: the "
                   "cursor was moved past what was archived, or archived posts were purged")
            out.append(Finding("cursors", severity, "channel_cursors",
                               f"channel_cursors: channel {ch}: cursor {cursor} is {beyond} id(s) beyond the newest "
                               f"archived message {newest}: {why}", ch, cursor))
    return out


# -- gaps ---------------------------------------------------------------------------------------------------
# Per range of channels ($first .. $last): a channel's gaps and their evidence depend on its own ids only.
_RANGE_POSTS = "(SELECT * FROM posts WHERE channel_id BETWEEN $first AND $last)"
_GAP_RANGES_SQL = f"""
WITH g AS (SELECT channel_id, first_id, last_id, cleared FROM ({gaps_sql(ranged=True)}) gaps),
firsts AS (SELECT channel_id, min(first_seen_at) AS first_pass FROM {_RANGE_POSTS} p GROUP BY channel_id)
SELECT g.channel_id, g.first_id, g.last_id, g.cleared, n.message_id AS next_id,
       n.first_seen_at > f.first_pass AS later_pass,
       coalesce(len(ch.restriction_reason), 0) > 0 OR coalesce(ch.restricted, false) AS restricted
FROM g
-- a gap ends right below an archived post, or at the cursor (then there is none above it)
LEFT JOIN {_RANGE_POSTS} n ON n.channel_id = g.channel_id AND n.message_id = g.last_id + 1
LEFT JOIN firsts f ON f.channel_id = g.channel_id
LEFT JOIN channels ch ON ch.channel_id = g.channel_id
ORDER BY g.channel_id, g.first_id
"""

# Evidence about the ids of the channels $first .. $last (a forward names its origin channel's id).
_EVIDENCE_SQL = """
SELECT channel_id, message_id, 'purged' AS kind FROM post_observations WHERE channel_id BETWEEN $first AND $last
UNION SELECT channel_id, message_id, 'purged' FROM post_versions WHERE channel_id BETWEEN $first AND $last
UNION SELECT fwd_channel_id, fwd_message_id, 'deleted_before_archiving' FROM {forwards}
      WHERE fwd_channel_id IS NOT NULL AND fwd_message_id IS NOT NULL AND fwd_channel_id BETWEEN $first AND $last
UNION SELECT channel_id, reply_to_message_id, 'deleted_before_archiving' FROM posts
      WHERE reply_to_message_id IS NOT NULL AND channel_id BETWEEN $first AND $last
"""


def _explain(r: dict[str, Any], evidence: set[str]) -> str:
    if "purged" in evidence:
        return "purged"
    if "deleted_before_archiving" in evidence:
        return "deleted_before_archiving"
    if r["restricted"]:
        return "region_hidden"
    if r["next_id"] is None:
        return "above_newest_post"
    if not r["later_pass"]:
        return "before_first_archive"
    return "service_messages" if r["last_id"] - r["first_id"] + 1 <= SHORT_GAP else "unexplained"


def gap_ranges(con: duckdb.DuckDBPyConnection, runs: Sequence[Run] | None = None, stage: Stage | None = None
               ) -> list[GapRange]:
    """Every never-archived id range (the ranges ``tgspread status`` counts), split where the explanation
    changes: the cleared part first, then the rest with the strongest evidence found (GAP_EXPLANATIONS).
    Computed per range of channels (``runs``, default: runs of :data:`CHECK_RUN_ROWS` rows)."""
    out: list[GapRange] = []
    for first, last in _channel_runs(runs or _ranges(con)):
        with _staged(stage, first, last):
            out += _gap_ranges_in(con, {"first": first, "last": last}, FORWARDS if stage is not None else "posts")
    return out


def _gap_ranges_in(con: duckdb.DuckDBPyConnection, bounds: dict[str, int], forwards: str = "posts"
                   ) -> list[GapRange]:
    """:func:`gap_ranges` of the channels ``bounds["first"] .. bounds["last"]``; ``forwards``: the table holding
    the forwarded ids (``posts``, or the staged forwards of these channels)."""
    ranges = _rows(con, _GAP_RANGES_SQL, bounds)
    if not ranges:
        return []
    known: dict[tuple[int, int], set[str]] = {}
    for ch, msg, kind in con.execute(
            f"SELECT e.* FROM ({_EVIDENCE_SQL.format(forwards=forwards)}) e SEMI JOIN ({gaps_sql(ranged=True)}) g "
            "ON g.channel_id = e.channel_id AND e.message_id BETWEEN g.first_id AND g.last_id", bounds).fetchall():
        known.setdefault((int(ch), int(msg)), set()).add(str(kind))
    by_channel: dict[int, list[int]] = {}
    for c, m in sorted(known):
        by_channel.setdefault(c, []).append(m)
    out: list[GapRange] = []
    for r in ranges:
        ch, first, last = int(r["channel_id"]), int(r["first_id"]), int(r["last_id"])
        if r["cleared"]:
            out.append(GapRange(ch, first, first + int(r["cleared"]) - 1, "history_cleared"))
            first += int(r["cleared"])
        # ids with their own evidence stand alone; the ids between them share the range's explanation
        start = first
        ids = by_channel.get(ch, [])
        for msg in ids[bisect.bisect_left(ids, first):bisect.bisect_right(ids, last)]:
            if msg > start:
                out.append(GapRange(ch, start, msg - 1, _explain({**r, "first_id": start, "last_id": msg - 1},
                                                                   set())))
            out.append(GapRange(ch, msg, msg, _explain(r, known[(ch, msg)])))
            start = msg + 1
        if start <= last:
            out.append(GapRange(ch, start, last, _explain({**r, "first_id": start, "last_id": last}, set())))
    return out


def _gap_findings(gaps: Iterable[GapRange]) -> list[Finding]:
    out = []
    for g in gaps:
        if g.explanation not in ("unexplained", "purged"):
            continue
        ids = f"messages {g.first_id}-{g.last_id}" if g.size > 1 else f"message {g.first_id}"
        severity = "error" if g.explanation == "purged" else "warning"
        out.append(Finding("gaps", severity, "posts", f"posts: channel {g.channel_id} {ids} never archived: "
                           f"{GAP_EXPLANATIONS[g.explanation]}", g.channel_id, g.first_id))
    return out


# -- digests ------------------------------------------------------------------------------------------------
#: What the digest covers, table by table, in this order; rows by the key columns listed first.
DIGEST_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "posts": (("message_id",), (
        "channel_id", "message_id", "posted_at", "edited_at", "text", "grouped_id", "views", "forwards",
        "replies", "reactions", "fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name",
        "reply_to_message_id", "post_author", "media_type", "media_id", "source", "first_seen_at",
        "last_seen_at", "deleted_at", "raw")),
    "post_versions": (("message_id", "observed_at"), (
        "channel_id", "message_id", "observed_at", "edited_at", "text", "raw")),
    "post_observations": (("message_id", "observed_at"), (
        "channel_id", "message_id", "observed_at", "views", "forwards", "replies", "reactions")),
    "channel_observations": (("observed_at",), (
        "channel_id", "observed_at", "participants_count", "title", "username", "about")),
}


def _field_sql(column: str, timestamp: bool) -> str:
    """One field: ``N`` for NULL, else ``S<byte length>:<text>`` (no escaping needed, no ambiguity)."""
    text = f"epoch_us({column})::VARCHAR" if timestamp else f"{column}::VARCHAR"
    return f"CASE WHEN {column} IS NULL THEN 'N' ELSE 'S' || strlen({text})::VARCHAR || ':' || {text} END"


def digest_sql(con: duckdb.DuckDBPyConnection | None = None, *, channel_range: bool = False,
               key_range: bool = False) -> str:
    """The SQL giving ``(channel_id, part, row_sha256)`` for every covered row, in the order the digest hashes
    them. ``docs/verify.md`` prints it; :func:`channel_digests` runs it (``channel_range``: only the channels
    ``BETWEEN $first AND $last``; ``key_range`` too: only the rows of part ``$part`` whose first key is ``BETWEEN
    $lo AND $hi``, or NULL when ``$nulls``). Tables a file lacks are left out."""
    where = "\nWHERE channel_id BETWEEN $first AND $last" if channel_range or key_range else ""
    if key_range:
        where += f" AND {_KEY_PIECE}"
    return f"SELECT channel_id, part, row_sha256 FROM (\n{_digest_rows_sql(con)}\n){where} {_DIGEST_ORDER}"


#: The order the digest hashes rows in, and a piece of a large channel's rows (:func:`_key_runs`).
_DIGEST_ORDER = "ORDER BY channel_id, part, k1, k2, row_sha256"
_KEY_PIECE = "part = $part AND (k1 BETWEEN $lo AND $hi OR ($nulls AND k1 IS NULL))"


def _digest_rows_sql(con: duckdb.DuckDBPyConnection | None) -> str:
    """``(channel_id, part, k1, k2, row_sha256)`` of every covered row (of the tables ``con`` has), unordered."""
    present = _tables(con) if con is not None else None
    parts = []
    for part, (table, (key, columns)) in enumerate(DIGEST_TABLES.items(), 1):
        if present is not None and table not in present:
            continue
        fields = " || ".join(_field_sql(c, c.endswith("_at")) for c in columns)
        k1, k2 = [f"epoch_us({k})" if k.endswith("_at") else k for k in key] + ["NULL"] * (2 - len(key))
        parts.append(f"SELECT channel_id, {part} AS part, {k1} AS k1, {k2} AS k2,\n"
                     f"       sha256('{table}' || {fields}) AS row_sha256\nFROM {table}")
    return "\nUNION ALL\n".join(parts)


#: Rows the digest sorts at a time: channels are digested in runs of about this many rows (one channel with more
#: is a run of its own). The whole archive in one ORDER BY ran out of the 256 MB cap at 1M posts (issue 14).
DIGEST_RUN_ROWS = 400_000


def digest_runs(con: duckdb.DuckDBPyConnection, channels: Sequence[int] | None = None,
                run_rows: int | None = None) -> list[tuple[int, int]]:
    """Ranges ``(first, last)`` of channel ids, in order, that together cover every digested row (or those of
    ``channels``), each holding about ``run_rows`` rows (default :data:`DIGEST_RUN_ROWS`): the digest's ORDER BY
    is run per range, so its memory is bounded by a run, not by the archive. A channel-counting aggregate finds
    them."""
    counts = channel_counts(con, DIGEST_TABLES)
    return runs_of(counts, run_rows or DIGEST_RUN_ROWS, set(channels) if channels is not None else None)


def channel_digests(con: duckdb.DuckDBPyConnection, channels: Sequence[int] | None = None
                    ) -> tuple[list[ChannelDigest], str]:
    """Per channel: sha256 of its row hashes concatenated in digest order (hex); and the archive digest:
    sha256 of ``"<channel_id>:<digest>\\n"`` lines in channel id order (over every channel, or ``channels``).

    The rows are read in runs of channels (:func:`digest_runs`), in the order :func:`digest_sql` gives: the
    same digests as one query over the archive, inside the memory cap at any size."""
    wanted = set(channels) if channels is not None else None
    names = list(DIGEST_TABLES)
    hashes: dict[int, Any] = {}
    rows: dict[int, dict[str, int]] = {}
    sql, keyed = digest_sql(con, channel_range=True), digest_sql(con, key_range=True)
    counts = channel_counts(con, DIGEST_TABLES)
    size = dict(counts)
    runs = runs_of(counts, DIGEST_RUN_ROWS, wanted)
    with contextlib.ExitStack() as stack:
        stage = None
        if len(runs) > 1:       # the row hashes written into one file per run in one scan: each run reads its own
            stage = stack.enter_context(Stage.open(con, runs))
            stage.put(_DIGEST_ROWS, _digest_rows_sql(con), "channel_id")
        for i, (first, last) in enumerate(runs):
            if stage is not None:
                source = stage.source(_DIGEST_ROWS, i)
                sql = f"SELECT channel_id, part, row_sha256 FROM {source} {_DIGEST_ORDER}"
                keyed = f"SELECT channel_id, part, row_sha256 FROM {source} WHERE {_KEY_PIECE} {_DIGEST_ORDER}"
            pieces = [(sql, {"first": first, "last": last})]
            if first == last and size[first] > DIGEST_RUN_ROWS:     # one channel larger than a run: in key ranges
                pieces = [(keyed, {"first": first, "last": last, **piece}) for piece in _key_runs(con, first)]
            for query, params in pieces:
                if stage is not None:
                    params = {k: v for k, v in params.items() if f"${k}" in query}
                _hash_rows(con.execute(query, params), wanted, names, hashes, rows)
    digests = [ChannelDigest(ch, hashes[ch].hexdigest(), rows[ch]) for ch in sorted(hashes)]
    whole = hashlib.sha256("".join(f"{d.channel_id}:{d.sha256}\n" for d in digests).encode("ascii"))
    return digests, whole.hexdigest()


#: The staged row hashes of :func:`channel_digests`.
_DIGEST_ROWS = "_digest_rows"

#: Key buckets of a large channel's digest: first keys (message ids, or microseconds) ``>> KEY_BUCKET_BITS``.
KEY_BUCKET_BITS = 13


def _key_runs(con: duckdb.DuckDBPyConnection, channel: int) -> list[dict[str, Any]]:
    """A channel with more rows than a digest run, in pieces of about :data:`DIGEST_RUN_ROWS` rows, in digest order:
    per part (table), ranges of its first key (``$part``, ``$lo``, ``$hi``, ``$nulls`` of :func:`digest_sql`)."""
    present = _tables(con)
    out: list[dict[str, Any]] = []
    for part, (table, (key, _)) in enumerate(DIGEST_TABLES.items(), 1):
        if table not in present:
            continue
        k1 = f"epoch_us({key[0]})" if key[0].endswith("_at") else key[0]
        buckets = con.execute(f"SELECT {k1} >> {KEY_BUCKET_BITS} AS b, count(*) FROM {table} "
                              "WHERE channel_id = $ch GROUP BY 1 ORDER BY 1 NULLS LAST", {"ch": channel}).fetchall()
        known = [(int(b), int(n)) for b, n in buckets if b is not None]
        ranges = runs_of(known, DIGEST_RUN_ROWS) or [(0, 0)]
        for i, (lo, hi) in enumerate(ranges):
            out.append({"part": part, "lo": lo << KEY_BUCKET_BITS, "hi": ((hi + 1) << KEY_BUCKET_BITS) - 1,
                        "nulls": i == len(ranges) - 1})
    return out


def _hash_rows(cur: duckdb.DuckDBPyConnection, wanted: set[int] | None, names: list[str], hashes: dict[int, Any],
               rows: dict[int, dict[str, int]]) -> None:
    """Feed the digest query's rows on ``cur`` into the per-channel hashes and row counts."""
    while batch := cur.fetchmany(10_000):
        for ch, part, row_hash in batch:
            if wanted is not None and ch not in wanted:
                continue
            if ch not in hashes:
                hashes[ch] = hashlib.sha256()
                rows[ch] = dict.fromkeys(names, 0)
            hashes[ch].update(row_hash.encode("ascii"))
            rows[ch][names[part - 1]] += 1


# -- the report ---------------------------------------------------------------------------------------------
def verify_archive(con: duckdb.DuckDBPyConnection, *, channels: Sequence[int] | None = None,
                   digests: bool = True, now: datetime | None = None) -> VerifyReport:
    """Run every check (and the digests) on ``con``; ``channels`` limits findings, gaps and digests to those ids
    (findings not tied to a channel, e.g. a duplicated run id, are always kept; no archive digest then).
    The ``lake`` check needs a lake: ``tgspread verify`` adds :func:`collector._archive.lake_verify.lake_findings`."""
    wanted = set(channels) if channels is not None else None
    ranges = _ranges(con)
    with contextlib.ExitStack() as stack:
        stage = None
        if len(_channel_runs(ranges)) > 1:     # the large tables written per run in one scan: each run reads its own
            stage = stack.enter_context(Stage.open(con, _channel_runs(ranges)))
            _stage_checks(con, stage)
        gaps = gap_ranges(con, ranges, stage)
        findings = [*unique_key_findings(con, ranges, stage), *observation_findings(con, ranges, stage),
                    *version_findings(con, ranges, stage), *deletion_findings(con, ranges, stage),
                    *cursor_findings(con), *_gap_findings(gaps)]
    if wanted is not None:
        findings = [f for f in findings if f.channel_id is None or f.channel_id in wanted]
        gaps = [g for g in gaps if g.channel_id in wanted]
    report = VerifyReport(checked_at=now or datetime.now(UTC), findings=findings, gaps=gaps,
                          channels=sorted(wanted) if wanted is not None else None)
    if digests:
        report.digests, whole = channel_digests(con, channels)
        report.archive_digest = whole if wanted is None else None    # a part is not the archive
    return report


def report_as_json(report: VerifyReport) -> dict[str, Any]:
    """A JSON-ready dict of the report (ISO 8601 UTC times), with counts per severity and gap explanation."""
    gaps: dict[str, int] = {}
    for g in report.gaps:
        gaps[g.explanation] = gaps.get(g.explanation, 0) + g.size
    return {
        "clean": report.clean,
        "checked_at": report.checked_at.astimezone(UTC).isoformat(),
        "checks": list(CHECKS),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [asdict(f) for f in report.findings],
        "gap_ids_by_explanation": gaps,
        "gaps": [{**asdict(g), "size": g.size} for g in report.gaps],
        "digest_version": report.digest_version,
        "archive_digest": report.archive_digest,
        "channels": report.channels,
        "digests": [asdict(d) for d in report.digests],
    }
