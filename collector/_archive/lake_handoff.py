"""Handing channels between collectors through the lake (issue 15): the candidates table and slot takeovers.

A collector that meets a channel in another collector's slot (named to ``collect``/``run``: outcome
``not_owned``; found by ``discover``: decision ``not_owned``) never collects it. :func:`publish_candidates`, part
of every publish, writes those channels to ``candidates/slot=NN/<collector>.parquet`` (one file per slot per
finder, replaced atomically like every lake file; the rows come from the finder's ``run_channels`` and
``discovery_candidates``, so no table is added to the archive).

The owner reads them with :func:`lake_handoffs` (the lake only, never another archive), together with the
channels another collector has *published posts of* in a slot it now owns (a slot moved to it). Its next
``run``/``discover`` takes them with :func:`take_handoffs`: into its collected set as discovered channels
(a channel it removed by hand stays removed; one without a username cannot be reached by another account and is
only reported), and for a moved channel the lake's history: its posts are copied into the owner's archive
(``source = 'lake'``, person-level fields left empty: the lake holds pseudonyms) and its cursor set to the
old owner's published cursor (``channel_cursors``: every message up to it was fetched; never merely the newest
post, which a post fetched by id or imported from an export may be, with gaps below it), so the owner neither
fetches a post again nor misses one, and re-observes the copied posts at their remaining checkpoints. A copied
post is not published again by the owner until it observed it itself
(:func:`collector._archive.lake.lake_selects` leaves ``source = 'lake'`` rows out).

Example::

    handoffs = lake_handoffs("lake", "second", owned_slots=[32, 33])
    with Archive("archive-second.duckdb") as archive:
        taken = take_handoffs(archive, "lake", handoffs, now=now, removed_ids=set(), removed_names=set())
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.lake import UNCOLLECTABLE

from .archive import Archive
from .export import PERSON_FIELDS
from .lake_files import install, make_dirs, partition_name, remove
from .post_writes import execute_posts
from .slots import SLOTS, slot, slot_sql

#: The lake directory of the handed-on channels.
CANDIDATES = "candidates"
#: ``channels.status`` of the channels never handed on: no collector can collect a group, a private or a deleted
#: channel (``collector._scheduling.ownership.UNCOLLECTABLE`` says what each is in a refusal).
NOT_HANDED_ON = UNCOLLECTABLE
#: Source of post rows copied from the lake when a collector takes a slot over (never published as its own).
LAKE_SOURCE = "lake"

# Channels this collector met in another's slot: named (run_channels) or found by discovery (discovery_candidates);
# never one known to be a group, private or deleted (channels.status): no collector can collect it, and its owner
# would fail on it at every run.
_FOUND_SQL = f"""
WITH found AS (
    SELECT c.channel_id, 'named' AS found_by, r.started_at AS found_at, NULL::INTEGER AS hop,
           NULL::BIGINT AS seed_channel_id, NULL::VARCHAR AS username, NULL::VARCHAR AS title
    FROM run_channels c JOIN runs r USING (run_id)
    WHERE c.outcome = 'not_owned' AND c.channel_id IS NOT NULL
    UNION ALL
    SELECT d.channel_id, 'discovery', d.first_found_at, d.hop, d.seed_channel_id, d.username, d.title
    FROM discovery_candidates d WHERE d.decision = 'not_owned' AND d.channel_id IS NOT NULL
)
-- the username the owner resolves: the channel's as this archive knows it (collected or resolved), else what
-- discovery saw (a forward's header names a channel never resolved), else what a forward named (peers)
SELECT f.channel_id,
       coalesce(any_value(ch.username), arg_max(f.username, f.found_at), any_value(p.username)) AS username,
       coalesce(any_value(ch.title), arg_max(f.title, f.found_at), any_value(p.title)) AS title,
       arg_min(f.found_by, f.found_at) AS found_by, min(f.found_at) AS first_found_at,
       max(f.found_at) AS last_found_at, min(f.hop) AS hop, arg_min(f.seed_channel_id, f.found_at) AS seed_channel_id,
       {slot_sql('f.channel_id')} AS slot
FROM found f LEFT JOIN channels ch USING (channel_id) LEFT JOIN peers p USING (channel_id)
WHERE ch.status IS NULL OR ch.status NOT IN ({", ".join(f"'{s}'" for s in NOT_HANDED_ON)})
GROUP BY f.channel_id ORDER BY slot, f.channel_id
"""


def publish_candidates(con: duckdb.DuckDBPyConnection, root: Path, collector: str,
                       previous: dict[str, str], *, full: bool = False) -> tuple[dict[str, str], list[str]]:
    """Write this collector's handed-on channels, one file per slot, rewriting only the slots that changed.

    ``previous``: partition -> digest from the last manifest (``full``: rewrite every slot anyway). Returns
    (the new partition -> digest, the partitions written or removed).
    """
    table = con.sql(_FOUND_SQL).to_arrow_table()
    assert table is not None
    digests: dict[str, str] = {}
    by_slot: dict[int, list[int]] = {}
    for i, s in enumerate(table.column("slot").to_pylist()):
        by_slot.setdefault(int(s), []).append(i)
    body = table.drop_columns(["slot"])
    body = body.append_column("collector", pa.array([collector] * body.num_rows, pa.string()))   # the finder
    changed: list[str] = []
    for s, rows in sorted(by_slot.items()):
        part = body.take(rows)
        name = partition_name(s, None)
        digest = f"{part.num_rows}:" + _stable(part.to_pylist())
        digests[name] = digest
        if not full and previous.get(name) == digest and (root / CANDIDATES / name / f"{collector}.parquet").exists():
            continue
        directory = root / CANDIDATES / name
        make_dirs(directory, root)
        tmp = directory / f".{collector}.parquet.{os.getpid()}.tmp"
        pq.write_table(part, tmp, compression="zstd")
        install(tmp, directory / f"{collector}.parquet")
        changed.append(name)
    for name in sorted(set(previous) - set(digests)):
        if remove(root / CANDIDATES / name / f"{collector}.parquet"):
            changed.append(name)
    return digests, changed


def _stable(rows: list[dict[str, object]]) -> str:
    return hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Handoff:
    """A channel in one of this collector's slots that another collector met (``found``) or collected
    (``moved``: the slot was that collector's). ``cursor``: the lake holds every message up to
    this id (another collector's published cursor); None: not known."""

    channel_id: int
    username: str | None
    title: str | None
    by: str
    kind: str
    hop: int
    cursor: int | None = None


def _lake_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads = 1; SET memory_limit = '256MB'")
    return con


@dataclass(frozen=True)
class HandoffFiles:
    """Other collectors' files in a collector's slots (:func:`handoff_files`)."""

    posts: list[str]
    channels: list[str]
    cursors: list[str]          # channel_cursors: how far each of them fetched each channel
    found: list[str]            # candidates: the channels met in these slots (by this collector too)

    @property
    def history(self) -> list[str]:
        """The files of a moved slot's history (read again only when their listing changed)."""
        return [*self.posts, *self.channels, *self.cursors]


def handoff_files(lake: str | os.PathLike[str], collector: str, owned_slots: Iterable[int]) -> HandoffFiles:
    """The files :func:`lake_handoffs` reads: other collectors' ``posts``, ``channels``, ``channel_cursors`` and
    ``candidates`` files of ``owned_slots``, and this collector's own ``candidates`` there (what it handed on from
    a slot that has since moved to it) (a listing of the directories that exist, nothing opened). Their paths,
    inodes, sizes and modification times tell whether anything another collector handed on can have changed since
    they were read."""
    root = Path(lake)
    owned = {f"slot={int(s):02d}" for s in owned_slots if 0 <= int(s) < SLOTS}
    if not owned or not root.is_dir():
        return HandoffFiles([], [], [], [])
    return HandoffFiles(_others(root / "posts", owned, collector, months=True),
                        _others(root / "channels", owned, collector),
                        _others(root / "channel_cursors", owned, collector),
                        # its own too: a channel it handed on from a slot that has since moved to it waits there
                        _others(root / CANDIDATES, owned, collector, own=True))


def _subdirs(directory: Path | str, keep: Callable[[str], bool]) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.path for e in entries if keep(e.name) and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _others(table: Path, owned: set[str], collector: str, *, months: bool = False, own: bool = False) -> list[str]:
    """Other collectors' Parquet files of ``table`` in the ``owned`` slot directories (``months``: in their
    ``month=`` subdirectories; ``own``: this collector's too), slot by slot, each directory's files in name order."""
    out: list[str] = []
    for slot_dir in _subdirs(table, owned.__contains__):
        for directory in _subdirs(slot_dir, lambda n: n.startswith("month=")) if months else [slot_dir]:
            with os.scandir(directory) as entries:
                out += sorted(e.path for e in entries if e.name.endswith(".parquet") and not e.name.startswith(".")
                              and (own or e.name[:-len(".parquet")] != collector) and e.is_file())
    return out


def file_stats(files: Iterable[str]) -> tuple[tuple[str, int, int, int], ...] | None:
    """(path, inode, size, mtime) of each file: a lake file is replaced by a new one, so equal stats are the same
    content. None when one vanished meanwhile (a publish replaced it)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
        except FileNotFoundError:
            return None
        out.append((f, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def listing_digest(files: Iterable[str]) -> str | None:
    """A digest of :func:`file_stats` of ``files``: equal digests, the same files. None when one vanished."""
    stats = file_stats(files)
    return None if stats is None else hashlib.sha256(repr(stats).encode("utf-8")).hexdigest()


def _slots_key(slots: Iterable[int]) -> str:
    return ",".join(str(int(s)) for s in sorted(set(slots)))


def last_pickup(archive: Archive, lake: str | os.PathLike[str], collector: str,
                slots: Iterable[int]) -> tuple[str, str] | None:
    """(history digest, found digest) of the listing at this collector's last pick-up from ``lake`` while it owned
    ``slots`` (table ``lake_pickups``, migration 0012); None when there was none."""
    if not archive.has_table("lake_pickups"):
        return None
    rows = archive.con.execute(
        "SELECT history_sha256, found_sha256 FROM lake_pickups WHERE lake = ? AND collector = ? AND slots = ?",
        [str(Path(lake).resolve()), collector, _slots_key(slots)]).fetchall()
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def remember_pickup(archive: Archive, lake: str | os.PathLike[str], collector: str, slots: Iterable[int],
                    history: str, found: str, *, now: datetime) -> None:
    """Record that a pick-up took everything the files of these digests held (see :func:`last_pickup`)."""
    if not archive.has_table("lake_pickups"):
        return
    with archive.transaction() as con:
        con.execute("INSERT OR REPLACE INTO lake_pickups (lake, collector, slots, history_sha256, found_sha256, "
                    "taken_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [str(Path(lake).resolve()), collector, _slots_key(slots), history, found, now])


def lake_handoffs(lake: str | os.PathLike[str], collector: str, owned_slots: Iterable[int], *,
                  history: bool = True) -> list[Handoff]:
    """What other collectors left in ``collector``'s slots: channels they found (``candidates``) and channels
    they published posts of (a slot moved here). Reads the lake only; one entry per channel (a moved one first).
    Opens nothing when no other collector has a file in these slots (the usual case without moves).
    ``history=False``: leave the ``posts`` and ``channels`` files (a moved slot's whole history) unread, when the
    caller knows it took everything they hold (:func:`last_pickup`)."""
    files = handoff_files(lake, collector, owned_slots)
    posts, found = (files.posts if history else []), files.found
    out: dict[int, Handoff] = {}
    if not posts and not found:
        return []
    con = _lake_con()
    try:
        if posts:
            names: dict[int, tuple[str | None, str | None]] = {}
            if files.channels:
                for cid, username, title in con.execute(
                        "SELECT channel_id, any_value(username), any_value(title) "
                        "FROM read_parquet(?, union_by_name = true) GROUP BY channel_id", [files.channels]).fetchall():
                    names[int(cid)] = (username, title)
            params = {"posts": posts, **({"cursors": files.cursors} if files.cursors else {})}
            for cid, cursor, by in con.execute(_moved_sql(bool(files.cursors)), params).fetchall():
                username, title = names.get(int(cid), (None, None))
                out[int(cid)] = Handoff(int(cid), username, title, str(by), "moved", 0,
                                        None if cursor is None else int(cursor))
        if found:
            for cid, username, title, hop, by in con.execute(
                    "SELECT channel_id, any_value(username), any_value(title), min(hop), "
                    "min(parse_filename(filename, true)) FROM read_parquet(?, filename = true, union_by_name = true) "
                    "GROUP BY channel_id ORDER BY channel_id", [found]).fetchall():
                if int(cid) not in out:
                    out[int(cid)] = Handoff(int(cid), username, title, str(by), "found", int(hop or 1))
    finally:
        con.close()
    return [out[c] for c in sorted(out)]


def _moved_sql(cursors: bool) -> str:
    """SQL: per channel of other collectors' ``$posts`` files, how far the lake holds it without a gap, and whose.

    A collector's cursor (``channel_cursors``) says it fetched every message up to it; its posts above the cursor
    are strays (fetched by id by ``hydrate``, imported from an export, read from a web preview) with gaps below
    them, so the newest post is no cursor. Each collector counts up to the lower of its cursor and its newest
    post here (a publish cut short may have installed the cursor's file and not yet the posts'); the channel's
    cursor is the highest over the collectors, None when none of them has a cursor for it (nothing may be skipped).
    """
    tops = ("SELECT channel_id, parse_filename(filename, true) AS who, max(message_id) AS top "
            "FROM read_parquet($posts, filename = true, union_by_name = true) GROUP BY ALL")
    if not cursors:
        return f"SELECT channel_id, NULL::BIGINT AS cursor, min(who) FROM ({tops}) GROUP BY channel_id ORDER BY 1"
    return f"""
    WITH p AS ({tops}),
    c AS (SELECT channel_id, parse_filename(filename, true) AS who, max(max_message_id) AS cursor
          FROM read_parquet($cursors, filename = true, union_by_name = true) GROUP BY ALL),
    each AS (SELECT p.channel_id, p.who,
                    CASE WHEN c.cursor IS NOT NULL THEN least(c.cursor, p.top) END AS cursor  -- least() skips NULLs
             FROM p LEFT JOIN c USING (channel_id, who))
    SELECT channel_id, max(cursor) AS cursor, coalesce(arg_max(who, cursor), min(who))
    FROM each GROUP BY channel_id ORDER BY channel_id
    """


@dataclass
class Taken:
    """What :func:`take_handoffs` did: channels added to the set, posts copied from the lake, channels it could
    not take (no username: another account cannot reach them), and the ones it already had or removed."""

    added: list[Handoff]
    copied_posts: int
    unreachable: list[Handoff]
    skipped: int


def _copy_history(archive: Archive, files: Sequence[str], moved: Sequence[Handoff]) -> int:
    """Copy the lake's posts of ``moved`` channels (the newest row of each post over the files) into the archive,
    without overwriting any post it holds; set each channel's cursor to the lake's newest message."""
    if not moved or not files:
        return 0
    con = archive.con
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = 'posts' "
        "ORDER BY ordinal_position").fetchall()]
    lake_cols = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)",
                                            [list(files)]).fetchall()}
    person = {col: cond for (table, col), cond in PERSON_FIELDS.items() if table == "posts"}
    values = []
    for c in columns:
        if c == "source":
            values.append(f"'{LAKE_SOURCE}'")
        elif c in person:
            values.append(f"CASE WHEN {person[c].replace('channel_id IN', 'x.channel_id IN')} THEN NULL ELSE x.{c} END"
                          if "channel_id IN" in person[c] else f"CASE WHEN {person[c]} THEN NULL ELSE x.{c} END")
        elif c in lake_cols:
            values.append(f"x.{c}")
        else:
            values.append("NULL")
    ids = ", ".join(str(int(h.channel_id)) for h in moved)
    with archive.transaction():
        before = int(con.execute("SELECT count(*) FROM posts").fetchone()[0])  # type: ignore[index]
        execute_posts(
            con,
            f"INSERT INTO posts ({', '.join(columns)}) SELECT {', '.join(values)} FROM ("
            f"SELECT * FROM read_parquet($files, union_by_name = true) WHERE channel_id IN ({ids}) "
            "QUALIFY row_number() OVER (PARTITION BY channel_id, message_id ORDER BY last_seen_at DESC) = 1) x "
            "ON CONFLICT DO NOTHING", {"files": list(files)})
        copied = int(con.execute("SELECT count(*) FROM posts").fetchone()[0]) - before  # type: ignore[index]
        for h in moved:
            if h.cursor is not None:
                con.execute(
                    "INSERT INTO channel_cursors (channel_id, max_message_id, updated_at) VALUES (?, ?, now()) "
                    "ON CONFLICT (channel_id) DO UPDATE SET max_message_id = greatest(channel_cursors.max_message_id, "
                    "excluded.max_message_id)", [h.channel_id, h.cursor])
    return copied


def take_handoffs(archive: Archive, lake: str | os.PathLike[str], handoffs: Sequence[Handoff], *, now: datetime,
                  removed_ids: set[int], removed_names: set[str], active_ids: set[int],
                  active_names: set[str]) -> Taken:
    """Take ``handoffs`` into this collector's archive (see the module doc). ``removed_*``: what its set removed
    by hand (never added back); ``active_*``: what its set holds already (left alone, except that a channel of a
    slot moved back takes the history another collector published since: its cursor is behind the lake's)."""
    from .channel_set import insert_entry

    new: list[Handoff] = []
    unreachable: list[Handoff] = []
    behind: list[Handoff] = []      # a slot moved back: the set holds the channel, the lake is further on
    skipped = 0
    for h in handoffs:
        name = (h.username or "").lower() or None
        known = h.channel_id in active_ids or bool(name and name in active_names)
        if known and h.kind == "moved" and h.cursor is not None and archive.cursor(h.channel_id) < h.cursor:
            behind.append(h)
        elif known or h.channel_id in removed_ids or (name and name in removed_names):
            skipped += 1
        elif name is None:
            unreachable.append(h)
        else:
            new.append(h)
    moved = [h for h in new if h.kind == "moved"] + behind
    root = Path(lake)
    files = [f for s in sorted({slot(h.channel_id) for h in moved})
             for f in sorted(str(p) for p in root.glob(f"posts/slot={s:02d}/month=*/*.parquet"))]
    copied = _copy_history(archive, files, moved)
    if new:
        with archive.transaction():
            for h in new:
                insert_entry(archive, input=str(h.username).lower(), username=str(h.username).lower(),
                             channel_id=h.channel_id, now=now, added_by="discovery", hop=max(h.hop, 0))
    return Taken(new, copied, unreachable, skipped)
