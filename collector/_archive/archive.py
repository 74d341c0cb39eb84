"""``Archive``: the one object that owns the DuckDB file.

Opens or creates the file, applies the ordered migrations once, and offers the idempotent batched writes
the collector needs. Every write that belongs together (a page of posts and the cursor covering it,
a refresh batch and its observations) runs in one transaction, so a crash or a kill loses at most the
batch in flight and a rerun neither duplicates nor skips.

Example::

    with Archive("archive.duckdb") as archive:
        archive.cursor(1234567890)          # newest archived message id of a channel (0 if none)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector._parse.channel_ref import storable_username
from collector._parse.refresh import due_post_sql

from . import migrations, provenance
from .big_alter import add_column, parse_add_column
from .lake_marks import group_flags, mark_batch, mark_group_changes, table_names
from .post_writes import execute_posts
from .rows import CHANNELS_SCHEMA, PEERS_SCHEMA, POSTS_SCHEMA, posts_table

# WAL DuckDB should let grow before checkpointing it into the file: larger batches commit much faster
# (TELEGRAM-NOTES: 34-38k rows/s at the default 16 MB, 63-79k rows/s with 1GB). A crash replays the WAL.
# Not 1GB: the checkpoint of a WAL that large, at the latest when the archive closes, held memory outside
# DuckDB's cap: archiving one channel of 500,000 posts peaked at 510-526 MB with 1GB against 345 MB with 256MB
# (the pass itself at 250-320 MB either way; benchmarks/collector_bench.py, 2026-12-07).
_CHECKPOINT_THRESHOLD = "256MB"


def path_problem(path: Path) -> str | None:
    """Why DuckDB cannot keep an archive at ``path`` (checked before anything is created), or None.

    DuckDB cuts a path at ``?`` when it names the .wal file (``qm?x/a.duckdb`` -> ``qm.wal?x/...``)::

        >>> path_problem(Path("qm?x/a.duckdb")) is not None, path_problem(Path("data/a.duckdb"))
        (True, None)
    """
    if "?" in str(path):
        return (f"{path}: DuckDB cannot keep an archive at a path with '?' in it (its .wal file would go "
                "elsewhere); rename the folder or the file without '?'")
    return None


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The one transaction helper of the archive: ``with transaction(con):`` commits everything inside together,
    or rolls it all back (and re-raises) when anything inside fails. ``Archive.transaction`` is this."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class ArchiveError(Exception):
    """The archive cannot be used as asked; the message says why and what to do."""


class ArchiveBusyError(ArchiveError):
    """Another process holds the archive file (a running collector, or a notebook)."""


@dataclass(frozen=True)
class ChannelKey:
    """What the collector needs to reach a channel without resolving it again."""

    channel_id: int
    access_hash: int
    username: str | None
    status: str | None = None


@dataclass(frozen=True)
class PostsWrite:
    """What one write of posts changed."""

    new_posts: int = 0
    observed: int = 0
    edits: int = 0


def _lock_error(exc: BaseException) -> bool:
    return "lock" in str(exc).lower()


class Archive:
    """The archive file. ``Archive(path)`` opens or creates it and applies pending migrations.

    ``read_only=True`` opens an existing file without changing it (no migrations are applied, but a file
    written by a newer tgspread is still refused). ``wait`` bounds how long to wait, in seconds, for
    another process holding the file before raising :class:`ArchiveBusyError`. ``memory_limit`` (e.g.
    ``'256MB'``, the default; None: DuckDB's own default of 80% of RAM) caps DuckDB's buffer pool; it
    spills to disk beyond it. A collection pass caps it lower while it runs (:meth:`memory_capped`).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, wait: float = 30.0,
                 memory_limit: str | None = "256MB") -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise ArchiveError(f"{self.path}: no such archive; run 'tgspread collect' or 'tgspread demo' first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self.wait = wait
        self.memory_limit = memory_limit
        self.threads: int | None = None   # DuckDB worker threads (None: DuckDB's default); see threads_limited
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: tuple[duckdb.DuckDBPyConnection, frozenset[str]] | None = None   # see has_table
        self._held_since = 0.0
        try:
            self._check_version()
            if not read_only:
                self._migrate()
        except BaseException:
            self.con.close()
            raise

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open connection; reopened (waiting up to ``wait`` seconds) after :meth:`release`."""
        if self._con is None:
            self._con = self._open(self.read_only, self.wait)
            self._con.execute("SET TimeZone = 'UTC'")
            if not self.read_only:
                self._con.execute(f"SET checkpoint_threshold = '{_CHECKPOINT_THRESHOLD}'")
            if self.memory_limit:
                self._con.execute(f"SET memory_limit = '{self.memory_limit}'")
            if self.threads:
                self._con.execute(f"SET threads = {int(self.threads)}")
            self._held_since = time.monotonic()
        return self._con

    def memory_capped(self, limit: str | None) -> contextlib.AbstractContextManager[None]:
        """Within the block, DuckDB's buffer pool is capped at ``limit`` (e.g. ``'64MB'``; None: unchanged), on
        the open connection and on any the block reopens; the previous cap comes back afterwards.

        A collection pass writes a few thousand rows at a time into a file it mostly does not read, so a
        small pool costs it little speed and keeps its memory low (``CollectSettings.memory_limit``).
        """
        return self._setting_within("memory_limit", limit)

    def threads_limited(self, threads: int | None) -> contextlib.AbstractContextManager[None]:
        """Within the block, DuckDB runs ``threads`` worker threads (None: unchanged), on the open connection
        and on any the block reopens; the previous setting comes back afterwards.

        A collection pass's statements carry a few thousand rows, too few for parallel workers to pay for
        waking them (``CollectSettings.threads``).
        """
        return self._setting_within("threads", threads)

    @contextlib.contextmanager
    def _setting_within(self, name: str, value: str | int | None) -> Iterator[None]:
        """Set the DuckDB setting ``name`` (mirrored by the attribute of that name, which every reopen
        applies) to ``value`` for the block; restore the previous value (or DuckDB's default) after it."""
        previous = getattr(self, name)
        if value is None or value == previous:
            yield
            return
        setattr(self, name, value)
        if self._con is not None:
            self._con.execute(f"SET {name} = '{value}'")
        try:
            yield
        finally:
            setattr(self, name, previous)
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute(f"SET {name} = '{previous}'" if previous else f"RESET {name}")

    def release(self, *, held_for: float = 0.0) -> bool:
        """Close the file so other processes (notebooks, ``tgspread status``) can open it in between.

        The collector calls it between channels, and between batches once it has held the file for
        ``held_for`` seconds; the next use reopens it. Returns True when it was released.
        """
        if self._con is None or time.monotonic() - self._held_since < held_for:
            return False
        self.close()
        return True

    # -- lifecycle ---------------------------------------------------------------------------------
    def _open(self, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
        problem = path_problem(self.path)
        if problem is not None:
            raise ArchiveError(problem)
        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "not a valid DuckDB database" in str(exc):
                    raise ArchiveError(
                        f"{self.path} is not a DuckDB archive; point --archive at a tgspread archive "
                        "or at a new file name"
                    ) from None
                if not _lock_error(exc):
                    raise ArchiveError(f"{self.path}: cannot open the archive: {exc}") from None
                if time.monotonic() >= deadline:
                    raise ArchiveBusyError(
                        f"{self.path} is in use by another process (a collector run or an open notebook "
                        f"connection) and stayed busy for {wait:.0f} s; try again when it has finished"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def close(self) -> None:
        """Checkpoint and close the file. Safe to call twice."""
        if self._con is None:
            return
        with contextlib.suppress(duckdb.Error):
            if not self.read_only:
                self._con.execute("CHECKPOINT")
        self._con.close()
        self._con = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        """Whether the file has table ``name`` (a read-only open of an older file may lack newer tables).

        The names are read once per connection: tables come and go only by migrations, which run at open (and
        forget the names they changed); a reopened file, which another process may have migrated, is read again.
        Every run and every pick-up asks a few times, and each catalog query costs a millisecond.
        """
        con = self.con
        cached = self._tables
        if cached is None or cached[0] is not con:
            cached = self._tables = (con, table_names(con))
        return name in cached[1]

    @property
    def schema_version(self) -> int:
        """The newest migration recorded in the file (0 for a new file)."""
        if not self.has_table("schema_migrations"):
            return 0
        row = self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def _check_version(self) -> None:
        found, known = self.schema_version, migrations.latest_version()
        if found > known:
            raise ArchiveError(
                f"{self.path} was written by a newer tgspread (schema {found}, this version knows {known}); "
                "upgrade tgspread (pip install -U tgspread) - the file was not changed"
            )

    def _migrate(self) -> None:
        try:
            self._migrate_all()
        finally:
            self._tables = None         # migrations add and drop tables: has_table reads the names again

    def _migrate_all(self) -> None:
        if not self.has_table("schema_migrations"):
            self._refuse_foreign()
            self.con.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL, tgspread_version VARCHAR)"
            )
        done = {r[0] for r in self.con.execute("SELECT version FROM schema_migrations").fetchall()}
        from collector._version import __version__

        for mig in migrations.available():
            if mig.version in done:
                continue
            if mig.stepwise:        # large tables: each statement committed and checkpointed on its own
                for statement in mig.statements():
                    added = parse_add_column(statement)
                    if added is not None:       # inside the memory cap at any size (collector/_archive/big_alter.py)
                        add_column(self.con, added.table, added.column, added.type_sql, added.default_sql,
                                   memory_limit=self.memory_limit)
                        continue
                    with self.transaction():
                        self.con.execute(statement)
                    self.con.execute("CHECKPOINT")
            with self.transaction():
                if not mig.stepwise:
                    self.con.execute(mig.sql)
                self.con.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at, tgspread_version) VALUES (?, ?, "
                    "now(), ?)", [mig.version, mig.name, __version__]
                )

    def _refuse_foreign(self) -> None:
        """Raise :class:`ArchiveError` for a DuckDB file of someone else's tables (no ``schema_migrations``, and not
        both of tgspread's ``channels`` and ``posts``): migrating it would add tgspread's tables to it, and a publish
        or an export would then hand its tables on as they are."""
        tables = [str(r[0]) for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
        ).fetchall()]
        if tables and not {"channels", "posts"} <= set(tables):
            shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
            raise ArchiveError(
                f"{self.path} is a DuckDB file but not a tgspread archive (its tables: {shown}); point --archive "
                "at a tgspread archive or at a new file name - the file was not changed")

    def applied_migrations(self) -> list[tuple[int, str]]:
        return [(int(v), str(n)) for v, n in self.con.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version").fetchall()]

    # -- transactions ----------------------------------------------------------------------------------
    def transaction(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """``with archive.transaction() as con:``: everything inside commits together or not at all."""
        return transaction(self.con)

    # -- channels ------------------------------------------------------------------------------------
    def lookup_username(self, username: str) -> ChannelKey | None:
        """The archived channel that has (or had) this username, case-insensitively."""
        row = self.con.execute(
            "SELECT c.channel_id, c.access_hash, c.username, c.status FROM channel_usernames u "
            "JOIN channels c USING (channel_id) WHERE u.username = ? AND c.access_hash IS NOT NULL",
            [username.lower()],
        ).fetchone()
        return ChannelKey(int(row[0]), int(row[1]), row[2], row[3]) if row else None

    def archived_channel_id(self, *, username: str | None = None, channel_id: int | None = None) -> int | None:
        """The id of the channel the archive holds under this username or id, however it came in (collected,
        imported from an export or a web preview, with or without an access hash); None when it holds none.

        Example: ``archive.archived_channel_id(username="durov")`` -> ``1006503122``.
        """
        if channel_id is not None:
            row = self.con.execute("SELECT channel_id FROM channels WHERE channel_id = ?", [channel_id]).fetchone()
        else:
            row = self.con.execute(
                "SELECT channel_id FROM channel_usernames WHERE username = ? UNION "
                "SELECT channel_id FROM channels WHERE lower(username) = ? LIMIT 1",
                [(username or "").lower(), (username or "").lower()]).fetchone()
        return int(row[0]) if row else None

    def set_channel_by_name(self, username: str) -> int | None:
        """The channel the active collected set names ``username`` for, when the archive cannot reach it by id (no
        access hash: a channel handed on by another collector, known by id and name only); None when there is no
        such entry, or several. Such an entry is collected by its name, and the name must then mean that channel."""
        rows = self.con.execute(
            "SELECT DISTINCT s.channel_id FROM channel_set s LEFT JOIN channels c USING (channel_id) "
            "WHERE s.removed_at IS NULL AND s.username = ? AND s.channel_id IS NOT NULL AND c.access_hash IS NULL",
            [username.lower()]).fetchall() if self.has_table("channel_set") else []
        return int(rows[0][0]) if len(rows) == 1 else None

    def reachable_ids(self, channel_ids: Sequence[int]) -> set[int]:
        """Those of ``channel_ids`` the archive can reach without resolving (it holds their access hash): one query
        for a list of any length, where :meth:`lookup_id` is one per id."""
        if not channel_ids:
            return set()
        rows = self.con.execute(
            "SELECT channel_id FROM channels WHERE access_hash IS NOT NULL "
            "AND channel_id IN (SELECT unnest($ids::BIGINT[]))", {"ids": list(channel_ids)}).fetchall()
        return {int(r[0]) for r in rows}

    def lookup_id(self, channel_id: int) -> ChannelKey | None:
        row = self.con.execute(
            "SELECT channel_id, access_hash, username, status FROM channels "
            "WHERE channel_id = ? AND access_hash IS NOT NULL",
            [channel_id],
        ).fetchone()
        return ChannelKey(int(row[0]), int(row[1]), row[2], row[3]) if row else None

    def remember_channel(self, row: dict[str, Any], now: datetime, *, snapshot: bool = False,
                         alias: str | None = None) -> None:
        """Upsert a channel's latest state (``row`` has CHANNELS_SCHEMA keys) and its username.

        With ``snapshot=True`` it is a full metadata snapshot: ``channel_observations`` gets a row and
        ``last_snapshot_at`` moves to ``now``. Without, only what a resolve tells is kept (id, hash, name).
        A username that is not letters, digits and underscores (a hostile server's ``..``) is not stored.
        """
        row = {**row, "username": storable_username(row.get("username"))}
        alias = storable_username(alias)
        table = pa.Table.from_pylist([row], schema=CHANNELS_SCHEMA)
        cols = [c for c in CHANNELS_SCHEMA.names if c != "channel_id"]
        if not snapshot:
            cols = [c for c in cols if row.get(c) is not None]
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        sets += ", last_seen_at = excluded.last_seen_at, status = 'active', status_at = CASE WHEN " \
                "channels.status = 'active' THEN channels.status_at ELSE excluded.status_at END"
        if snapshot:
            sets += ", last_snapshot_at = excluded.last_snapshot_at"
        names = ", ".join(CHANNELS_SCHEMA.names)
        with self.transaction() as con:
            groups = group_flags(con, [row["channel_id"]])
            con.register("_channel_row", table)
            con.execute(
                f"INSERT INTO channels ({names}, first_seen_at, last_seen_at, status, status_at, last_snapshot_at) "
                f"SELECT {names}, $now, $now, 'active', $now, {'$now' if snapshot else 'NULL'} FROM _channel_row "
                f"ON CONFLICT (channel_id) DO UPDATE SET {sets}",
                {"now": now},
            )
            con.unregister("_channel_row")
            mark_group_changes(con, groups, [row["channel_id"]])     # a group's authors become pseudonyms
            for name in {str(n).lower() for n in (row.get("username"), alias) if n}:
                con.execute(
                    "INSERT INTO channel_usernames (username, channel_id, first_seen_at, last_seen_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
                    "channel_id = excluded.channel_id, last_seen_at = excluded.last_seen_at",
                    [name, row["channel_id"], now, now],
                )
            if snapshot:
                con.execute(
                    "INSERT INTO channel_observations (channel_id, observed_at, participants_count, title, username, "
                    "about) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [row["channel_id"], now, row.get("participants_count"), row.get("title"),
                     row.get("username"), row.get("about")],
                )

    def add_set_entries(self, entries: Sequence[tuple[str, str | None, int | None]], *, now: datetime,
                        added_by: str = "hand") -> None:
        """Add ``(input, username, channel_id)`` memberships to the collected set as seeds (hop 0), in order,
        in one statement (``channels add`` with 20,000 names stays linear). The caller checked them and holds
        the transaction."""
        if not entries:
            return
        table = pa.table({"ord": list(range(len(entries))), "input": [e[0] for e in entries],
                          "username": pa.array([e[1] for e in entries], pa.string()),
                          "channel_id": pa.array([e[2] for e in entries], pa.int64())})
        self.con.register("_set_rows", table)
        try:
            self.con.execute(
                "INSERT INTO channel_set (entry_id, input, username, channel_id, added_at, added_by, hop) "
                "SELECT nextval('channel_set_entry_seq'), input, username, channel_id, ?, ?, 0 "
                "FROM (SELECT * FROM _set_rows ORDER BY ord)", [now, added_by])
        finally:
            self.con.unregister("_set_rows")

    def set_channel_status(self, channel_id: int, status: str, now: datetime) -> None:
        """Mark a channel 'private', 'gone' (deleted: CHANNEL_INVALID) or 'not_found' (or back to 'active');
        its archived data stays."""
        self.con.execute(
            "UPDATE channels SET status = ?, status_at = ? WHERE channel_id = ? AND status IS DISTINCT FROM ?",
            [status, now, channel_id, status],
        )

    def last_snapshot_at(self, channel_id: int) -> datetime | None:
        row = self.con.execute("SELECT last_snapshot_at FROM channels WHERE channel_id = ?", [channel_id]).fetchone()
        return row[0] if row else None

    def remember_peers(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        """Channels seen in answers (forward origins): ids, usernames and titles for analysis labels."""
        if rows:
            with self.transaction() as con:
                self._upsert_peers(con, rows, now)

    @staticmethod
    def _upsert_peers(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        table = pa.Table.from_pylist(list({r["channel_id"]: r for r in rows}.values()), schema=PEERS_SCHEMA)
        con.register("_peers", table)
        con.execute(
            "INSERT INTO peers (channel_id, username, title, megagroup, first_seen_at, last_seen_at) "
            "SELECT channel_id, username, title, megagroup, $now, $now FROM _peers "
            "ON CONFLICT (channel_id) DO UPDATE SET username = coalesce(excluded.username, peers.username), "
            "title = coalesce(excluded.title, peers.title), megagroup = excluded.megagroup, "
            "last_seen_at = excluded.last_seen_at",
            {"now": now},
        )
        con.unregister("_peers")

    # -- posts ---------------------------------------------------------------------------------------
    def cursor(self, channel_id: int) -> int:
        """Newest message id archived for the channel: every id at or below it has been fetched."""
        row = self.con.execute(
            "SELECT max_message_id FROM channel_cursors WHERE channel_id = ?", [channel_id]
        ).fetchone()
        return int(row[0]) if row else 0

    def write_posts(
        self,
        rows: Sequence[dict[str, Any]] | pa.Table,
        now: datetime,
        *,
        cursor: tuple[int, int] | None = None,
        deleted: Sequence[tuple[int, int]] = (),
        peers: Sequence[dict[str, Any]] = (),
    ) -> PostsWrite:
        """Write one batch of observed posts in one transaction; idempotent.

        For every row (POSTS_SCHEMA keys): an earlier text that differs goes to ``post_versions`` first,
        then the post is inserted or updated, and a ``post_observations`` row is stamped ``now``.
        ``deleted`` (channel_id, message_id) pairs get ``deleted_at = now`` and keep their content.
        ``cursor=(channel_id, max_message_id)`` moves that channel's cursor in the same transaction, and
        ``peers`` (forward-origin channels named by these pages) commit with them too: a rerun after a crash
        never fetches those pages again, so nothing they named may be lost. ``rows`` may also be a table
        with POSTS_SCHEMA already built (the collector builds it from `collector._archive.rows.posts_values_table`).
        """
        if isinstance(rows, pa.Table):
            table = rows if rows.num_rows else None
        else:
            table = posts_table(list(rows)) if rows else None
        try:
            with self.transaction() as con:
                result = self._write_posts(con, table, now) if table is not None else PostsWrite()
                if deleted:
                    self._mark_deleted(con, deleted, now)
                if table is not None or deleted:
                    mark_batch(con, table, deleted, versions=bool(result.edits))   # lake partitions to publish
                if peers:
                    self._upsert_peers(con, peers, now)
                if cursor is not None:
                    con.execute(
                        "INSERT INTO channel_cursors (channel_id, max_message_id, updated_at) VALUES (?, ?, ?) ON "
                        "CONFLICT (channel_id) DO UPDATE SET "
                        "max_message_id = greatest(channel_cursors.max_message_id, excluded.max_message_id), "
                        "updated_at = excluded.updated_at",
                        [cursor[0], cursor[1], now],
                    )
        except duckdb.Error as exc:
            # rolled back by transaction(): the batch is all or nothing, and its cursor did not move
            what = f"{len(rows)} posts" + (f" and {len(deleted)} deletions" if deleted else "")
            raise ArchiveError(
                f"{self.path}: writing {what} failed and was rolled back, nothing of it was written "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check free disk space "
                "and that the file is writable, then run the collection again: it continues from the last commit"
            ) from exc
        return result

    # What an API observation sets on a post besides POSTS_SCHEMA's columns (others are carried over).
    _API_OVERRIDES: dict[str, str] = {  # noqa: RUF012 - a constant table
        "source": "'api'",
        "last_seen_at": "$now",
        "deleted_at": "NULL",
        # exact API counters replace the rounded labels a web preview row may have had
        "views_label": "NULL",
        "views_low": "NULL",
        "views_high": "NULL",
        "edited": "b.edited_at IS NOT NULL",
        # every group of fields from the API, observed now (collector._archive.provenance)
        **provenance.api_values("$now"),
    }

    def _post_columns(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """The columns of ``posts`` in table order; read once per open file (migrations only run at open)."""
        cached = getattr(self, "_posts_columns", None)
        if cached is not None and cached[0] is con:
            return cached[1]
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = 'posts' ORDER BY ordinal_position").fetchall()]
        self._posts_columns = (con, columns)
        return columns

    def _write_posts(self, con: duckdb.DuckDBPyConnection, table: pa.Table, now: datetime) -> PostsWrite:
        """Versions, then posts, then observations. Known posts are deleted and inserted again with their
        carried-over columns (first_seen_at, provenance of other sources): in DuckDB that is several
        times faster than UPDATE or ON CONFLICT DO UPDATE when wide JSON payloads change."""
        con.register("_batch", table)
        try:
            params = {"now": now}
            columns = self._post_columns(con)
            # the id range lets DuckDB skip row groups of other channels and ids (zone maps)
            ch_range = pc.min_max(table["channel_id"])
            id_range = pc.min_max(table["message_id"])
            bounds = {"ch_lo": ch_range["min"].as_py(), "ch_hi": ch_range["max"].as_py(),
                      "id_lo": id_range["min"].as_py(), "id_hi": id_range["max"].as_py()}
            known_posts = ("FROM posts p SEMI JOIN _batch b ON p.channel_id = b.channel_id "
                           "AND p.message_id = b.message_id WHERE p.channel_id BETWEEN $ch_lo AND $ch_hi "
                           "AND p.message_id BETWEEN $id_lo AND $id_hi")
            # a backfill meets no known posts: then a count is all it costs (no temp table, no anti-join)
            row = con.execute(f"SELECT count(*) {known_posts}", bounds).fetchone()
            known = int(row[0]) if row else 0
            if known:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _known AS SELECT p.* {known_posts}", bounds)
            edits = 0
            if known:
                changed = "k.text IS DISTINCT FROM b.text OR k.edited_at IS DISTINCT FROM b.edited_at"
                edits = self._scalar(
                    con, f"SELECT count(*) FROM _known k JOIN _batch b USING (channel_id, message_id) WHERE {changed}")
                if edits:
                    con.execute(
                        "INSERT INTO post_versions (channel_id, message_id, text, edited_at, observed_at, raw) "
                        "SELECT k.channel_id, k.message_id, k.text, k.edited_at, $now, k.raw "
                        f"FROM _known k JOIN _batch b USING (channel_id, message_id) WHERE {changed} "
                        "ON CONFLICT DO NOTHING",
                        params,
                    )
                execute_posts(con, "DELETE FROM posts USING _batch b WHERE posts.channel_id = b.channel_id "
                              "AND posts.message_id = b.message_id", checked=False)
            schema = set(POSTS_SCHEMA.names)
            values = [
                f"b.{c}" if c in schema
                else self._API_OVERRIDES.get(c) or ("$now" if c == "first_seen_at" else "NULL")
                for c in columns
            ]
            anti_join = " ANTI JOIN _known k ON k.channel_id = b.channel_id AND k.message_id = b.message_id"
            execute_posts(
                con,
                f"INSERT INTO posts ({', '.join(columns)}) SELECT {', '.join(values)} FROM _batch b"
                + (anti_join if known else ""),
                params,
                checked=False,
            )
            if known:
                carried = [f"b.{c}" if c in schema else self._API_OVERRIDES.get(c) or f"k.{c}" for c in columns]
                execute_posts(
                    con,
                    f"INSERT INTO posts ({', '.join(columns)}) SELECT {', '.join(carried)} FROM _batch b "
                    "JOIN _known k ON k.channel_id = b.channel_id AND k.message_id = b.message_id",
                    params,
                    checked=False,
                )
            con.execute(
                "INSERT INTO post_observations (channel_id, message_id, observed_at, views, forwards, replies, "
                "reactions) SELECT channel_id, message_id, $now, views, forwards, replies, reactions FROM _batch "
                "ON CONFLICT DO NOTHING",
                params,
            )
            if known:
                con.execute("DROP TABLE _known")
        finally:
            con.unregister("_batch")
        return PostsWrite(new_posts=table.num_rows - known, observed=table.num_rows, edits=edits)

    @staticmethod
    def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _mark_deleted(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[int, int]], now: datetime) -> None:
        ids = pa.table({"channel_id": [k[0] for k in keys], "message_id": [k[1] for k in keys]},
                       schema=pa.schema([("channel_id", pa.int64()), ("message_id", pa.int64())]))
        con.register("_gone", ids)
        execute_posts(
            con,
            # a post copied from the lake at a slot takeover is this collector's own once it saw it deleted
            "UPDATE posts SET deleted_at = $now, source = CASE WHEN posts.source = 'lake' THEN 'api' "
            "ELSE posts.source END FROM _gone WHERE posts.channel_id = _gone.channel_id "
            "AND posts.message_id = _gone.message_id AND posts.deleted_at IS NULL",
            {"now": now},
            checked=False,
        )
        con.unregister("_gone")

    def due_posts(self, channel_id: int, now: datetime, checkpoints: Sequence[timedelta]) -> list[int]:
        """Live posts of a channel whose age crossed a checkpoint since their last observation, oldest first."""
        if not checkpoints:
            return []
        rows = self.con.execute(
            "SELECT message_id FROM posts p WHERE channel_id = $ch AND deleted_at IS NULL "
            f"AND {due_post_sql(checkpoints)} ORDER BY message_id",
            {"ch": channel_id, "now": now},
        ).fetchall()
        return [int(r[0]) for r in rows]

    # -- runs and flood waits ------------------------------------------------------------------------
    def start_run(self, now: datetime, *, telethon_version: str, tl_layer: int, kind: str = "collect") -> int:
        """Record a pass starting at ``now``; ``kind``: 'collect' (it reads channel history and moves cursors) or
        'hydrate' (posts fetched by id; migration 0014). Returns its run id."""
        from collector._version import __version__

        row = self.con.execute(
            "INSERT INTO runs (run_id, started_at, status, tgspread_version, telethon_version, tl_layer, kind) "
            "VALUES (nextval('run_id_seq'), ?, 'running', ?, ?, ?, ?) RETURNING run_id",
            [now, __version__, telethon_version, tl_layer, kind],
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish_run(self, run_id: int, *, status: str, finished_at: datetime, requests: int,
                   error: str | None = None) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, requests = ?, error = ? WHERE run_id = ?",
            [status, finished_at, requests, error, run_id],
        )

    def record_run_channel(self, run_id: int, values: dict[str, Any]) -> None:
        cols = ["input", "channel_id", "outcome", "error", "new_posts", "refreshed_posts", "edits", "deletions",
                "snapshot"]
        self.con.execute(
            f"INSERT INTO run_channels (run_id, {', '.join(cols)}) VALUES (?, {', '.join('?' for _ in cols)}) "
            f"ON CONFLICT (run_id, input) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols[1:])}",
            [run_id, *(values[c] for c in cols)],
        )

    def active_flood_waits(self, now: datetime) -> dict[str, datetime]:
        """Long flood waits still running at ``now``: request name -> end time."""
        rows = self.con.execute(
            "SELECT request, max(until) FROM flood_waits WHERE until > ? GROUP BY request", [now]
        ).fetchall()
        return {str(r[0]): r[1] for r in rows}

    def record_flood_wait(self, request: str, *, started_at: datetime, seconds: int, channel_id: int | None,
                          run_id: int | None) -> datetime:
        until = started_at + timedelta(seconds=seconds)
        self.con.execute(
            "INSERT INTO flood_waits (request, started_at, until, seconds, channel_id, run_id) VALUES (?, ?, ?, ?, "
            "?, ?) ON CONFLICT DO UPDATE SET until = "
            "greatest(flood_waits.until, excluded.until), seconds = excluded.seconds",
            [request, started_at, until, seconds, channel_id, run_id],
        )
        return until
