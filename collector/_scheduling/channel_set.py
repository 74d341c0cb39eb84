"""The collected channel set kept in the archive: what ``tgspread channels add/remove/list`` manage (issue 5).

The set says which channels the user collects; ``tgspread collect`` without channel arguments and
``tgspread run`` collect it, and ``tgspread discover`` starts from it. Every membership is a row of
``channel_set`` with when and how it began (by hand, or by discovery with its seed, hop and run) and when it
ended: removing a channel keeps the row for the record (a paper describes its sampling frame from it).

Example::

    with Archive("archive.duckdb") as archive:
        add_channels(archive, ["durov", "https://t.me/other"])     # validated first: all or nothing
        tracked_inputs(archive)          # ['1234567890', 'other']: ids once archived, else usernames
        remove_channels(archive, ["other"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from collector._archive.channel_set import insert_entry, mark_removed_all
from collector._parse.channel_ref import ChannelRef, ChannelRefError, parse_channel_ref

if TYPE_CHECKING:
    from collector._archive.archive import Archive


class ChannelSetError(ValueError):
    """A name cannot go into (or out of) the set; the message says what to write instead."""


@dataclass(frozen=True)
class SetEntry:
    """One membership of the set, with what the archive knows about its channel."""

    entry_id: int
    input: str
    username: str | None
    channel_id: int | None          # as added, or learnt since from the archive (a collected username)
    added_at: datetime
    added_by: str                   # 'hand' or 'discovery'
    hop: int
    seed_channel_id: int | None
    seed_input: str | None
    discovery_run_id: int | None
    removed_at: datetime | None
    title: str | None = None
    status: str | None = None       # channels.status once collected or resolved: active, private, ...
    posts: int | None = None        # archived posts of the channel; counted only when asked (list_channels)

    @property
    def name(self) -> str:
        """How to show it: ``@username``, else the id, else the input."""
        if self.username:
            return "@" + self.username
        return str(self.channel_id) if self.channel_id is not None else self.input

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id, "input": self.input, "username": self.username,
            "channel_id": self.channel_id, "title": self.title, "status": self.status, "posts": self.posts,
            "added_at": _iso(self.added_at), "added_by": self.added_by, "hop": self.hop,
            "seed_channel_id": self.seed_channel_id, "seed_input": self.seed_input,
            "discovery_run_id": self.discovery_run_id, "removed_at": _iso(self.removed_at),
        }


@dataclass(frozen=True)
class SetChange:
    """What ``add``/``remove`` did with one name: ``added``, ``already`` (a no-op), ``removed``, ``absent``."""

    input: str
    outcome: str
    entry: SetEntry | None = None


@dataclass(frozen=True)
class Discovered:
    """A candidate that ``discover --auto`` adds, with its discovery path."""

    channel_id: int | None
    username: str | None
    hop: int
    seed_channel_id: int | None
    discovery_run_id: int | None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# -- reading --------------------------------------------------------------------------------------------
# Each entry with its effective channel id: as added, or the archive's channel for its username.
_ENTRIES_SQL = """
WITH e AS (
    SELECT s.*, coalesce(s.channel_id, u.channel_id) AS known_id
    FROM channel_set s LEFT JOIN channel_usernames u ON u.username = s.username
)
SELECT e.entry_id, e.input, coalesce(e.username, lower(c.username)) AS username, e.known_id, e.added_at,
       e.added_by, e.hop, e.seed_channel_id, e.seed_input, e.discovery_run_id, e.removed_at,
       coalesce(c.title, p.title) AS title, c.status, c.access_hash, {posts} AS posts
FROM e LEFT JOIN channels c ON c.channel_id = e.known_id LEFT JOIN peers p ON p.channel_id = e.known_id
{where}
ORDER BY e.entry_id
"""


#: Each entry's archived posts: a scan of every post's channel id (100M posts: a second), so only for who shows them.
_POSTS_SQL = "(SELECT count(*) FROM posts x WHERE x.channel_id = e.known_id)"


def _entries(archive: Archive, *, active_only: bool, with_posts: bool = False) -> list[tuple[SetEntry, int | None]]:
    """Entries with the access hash of their channel when the archive has it (``with_posts``: and their posts)."""
    if not archive.has_table("channel_set"):
        return []
    sql = _ENTRIES_SQL.format(where="WHERE e.removed_at IS NULL" if active_only else "",
                              posts=_POSTS_SQL if with_posts else "NULL")
    out = []
    for r in archive.con.execute(sql).fetchall():
        entry = SetEntry(entry_id=int(r[0]), input=r[1], username=r[2], channel_id=r[3], added_at=r[4],
                         added_by=r[5], hop=int(r[6]), seed_channel_id=r[7], seed_input=r[8],
                         discovery_run_id=r[9], removed_at=r[10], title=r[11], status=r[12],
                         posts=None if r[14] is None else int(r[14]))
        out.append((entry, r[13]))
    return out


def list_channels(archive: Archive, *, include_removed: bool = False, with_posts: bool = False) -> list[SetEntry]:
    """The set in the order channels were added; with ``include_removed`` also ended memberships. ``with_posts``:
    each entry's archived posts too (``channels list``; it reads every post's channel id, so a run does not)."""
    return [e for e, _ in _entries(archive, active_only=not include_removed, with_posts=with_posts)]


def tracked_inputs(archive: Archive, *, usernames: bool = False) -> list[str]:
    """The channels in the archive's collected set, as inputs ``collect()`` accepts (usernames or ids).

    A channel the archive can reach without resolving (it holds its id and access hash) is given by its
    numeric id, so a renamed channel is still collected; any other by its username. ``usernames=True``
    prefers usernames (for the web preview source, which knows no ids).
    """
    out: list[str] = []
    for entry, access_hash in _entries(archive, active_only=True):
        if usernames and entry.username:
            out.append(entry.username)
        elif entry.channel_id is not None and (access_hash is not None or not entry.username):
            out.append(str(entry.channel_id))
        elif entry.username:
            out.append(entry.username)
    return list(dict.fromkeys(out))


# -- names --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Named:
    input: str
    username: str | None
    channel_id: int | None


def parse_set_names(names: Sequence[str]) -> list[ChannelRef]:
    """Parse every name first, so one bad name changes nothing; raises :class:`ChannelSetError`."""
    if not names:
        raise ChannelSetError("no channel named; give usernames, @names, t.me links or archived ids")
    refs = []
    for name in names:
        try:
            ref = parse_channel_ref(name)
        except ChannelRefError as exc:
            raise ChannelSetError(f"{exc}; nothing was changed") from None
        if ref.invite is not None:
            raise ChannelSetError(f"{name!r} is a private invite link: tgspread collects public channels only; "
                                  "use the channel's @username or t.me/<name> link; nothing was changed")
        refs.append(ref)
    return refs


# -- writing (the SQL is in collector._archive.channel_set) ----------------------------------------------------
def _insert(archive: Archive, named: _Named, now: datetime, *, added_by: str, **where: Any) -> None:
    insert_entry(archive, input=named.input, username=named.username, channel_id=named.channel_id, now=now,
                 added_by=added_by, **where)


def _names_at_once(archive: Archive, refs: Sequence[ChannelRef]) -> tuple[list[_Named], dict[int, bool]]:
    """Each ref with what the archive knows of it (a username's channel id, an id's username), in two queries
    (linear: ``channels add`` with 20,000 names), and for each id whether the archive can reach its channel
    without a username (it holds the access hash)."""
    names = sorted({r.username.lower() for r in refs if r.username is not None})
    ids = sorted({r.channel_id for r in refs if r.channel_id is not None})
    known_ids: dict[str, int] = {}
    if names:
        for name, cid in archive.con.execute(
                "SELECT username, channel_id FROM channel_usernames WHERE list_contains($n, username) UNION ALL "
                "SELECT lower(username), channel_id FROM peers WHERE list_contains($n, lower(username))",
                {"n": names}).fetchall():
            known_ids.setdefault(str(name), int(cid))
    known_names: dict[int, str | None] = {}
    reachable: dict[int, bool] = {}
    if ids:
        for cid, name, in_channels, hashed in archive.con.execute(
                "SELECT q.id, lower(coalesce(c.username, p.username)), c.channel_id IS NOT NULL, "
                "c.access_hash IS NOT NULL FROM (SELECT unnest($i) AS id) q "
                "LEFT JOIN channels c ON c.channel_id = q.id LEFT JOIN peers p ON p.channel_id = q.id",
                {"i": ids}).fetchall():
            known_names[int(cid)] = name or known_names.get(int(cid))
            reachable[int(cid)] = reachable.get(int(cid), False) or bool(hashed)
            if in_channels and int(cid) not in reachable:
                reachable[int(cid)] = bool(hashed)
    named = []
    for ref in refs:
        if ref.username is not None:
            username = ref.username.lower()
            named.append(_Named(ref.raw.strip(), username, known_ids.get(username)))
        else:
            assert ref.channel_id is not None
            named.append(_Named(ref.raw.strip(), known_names.get(ref.channel_id), ref.channel_id))
    return named, reachable


def add_channels(archive: Archive, names: Sequence[str], *, now: datetime | None = None) -> list[SetChange]:
    """Add channels by hand (hop 0: seeds). Every name is checked first; a bad one raises and adds nothing.

    A numeric id must be a channel the archive can reach by id (ids cannot be resolved: it holds its access
    hash) or whose username it knows; a channel already in the set is reported ``already`` and left as it was.
    Linear in the names: two lookups, one insert and one read, however many names.
    """
    now = now or datetime.now(UTC)
    refs = parse_set_names(names)
    named, reachable = _names_at_once(archive, refs)
    for item in named:
        if item.username is None and item.channel_id is not None and not reachable.get(item.channel_id):
            if archive.archived_channel_id(channel_id=item.channel_id) is not None:
                raise ChannelSetError(
                    f"channel id {item.channel_id} is in this archive from an import or a web preview only, so "
                    "Telegram cannot be asked for it by id; add the channel by its @username or t.me link; "
                    "nothing was changed")
            raise ChannelSetError(f"channel id {item.channel_id} is not in this archive; add the channel by its "
                                  "@username or t.me link; nothing was changed")
    with archive.transaction():
        active = list_channels(archive)
        by_id = {e.channel_id: e for e in active if e.channel_id is not None}
        by_name = {e.username: e for e in active if e.username}
        seen_ids: dict[int, int] = {}
        seen_names: dict[str, int] = {}
        plan: list[tuple[_Named, SetEntry | int]] = []    # an entry already in the set, or the new row's index
        new: list[_Named] = []
        for item in named:
            found: SetEntry | int | None = None
            if item.channel_id is not None:
                found = by_id.get(item.channel_id, seen_ids.get(item.channel_id))
            if found is None and item.username is not None:
                found = by_name.get(item.username, seen_names.get(item.username))
            if found is None:
                found = len(new)
                new.append(item)
                if item.channel_id is not None:
                    seen_ids[item.channel_id] = found
                if item.username is not None:
                    seen_names[item.username] = found
            plan.append((item, found))
        archive.add_set_entries([(n.input, n.username, n.channel_id) for n in new], now=now, added_by="hand")
        before = {a.entry_id for a in active}
        added = {e.input: e for e in list_channels(archive) if e.entry_id not in before}
    changes = []
    for item, found in plan:
        if isinstance(found, SetEntry):
            changes.append(SetChange(item.input, "already", found))
        else:     # new inputs are distinct (same username or id: the same new row)
            changes.append(SetChange(item.input, "added" if item is new[found] else "already", added[new[found].input]))
    return changes


def remove_channels(archive: Archive, names: Sequence[str], *, now: datetime | None = None) -> list[SetChange]:
    """End the memberships of these channels (the rows stay, with ``removed_at``); archived posts stay too.

    A name that is not in the set is reported ``absent`` (so is a name given again after its removal). Bad names
    raise before anything changes. Linear in the names: two lookups, one read and one update, however many.
    """
    now = now or datetime.now(UTC)
    named, _ = _names_at_once(archive, parse_set_names(names))
    changes: list[SetChange] = []
    with archive.transaction():
        active = list_channels(archive)
        by_id: dict[int, list[int]] = {}        # key -> positions in ``active``, in set order
        by_name: dict[str, list[int]] = {}
        for i, e in enumerate(active):
            if e.channel_id is not None:
                by_id.setdefault(e.channel_id, []).append(i)
            if e.username:
                by_name.setdefault(e.username, []).append(i)
        removed: set[int] = set()

        def first(positions: list[int] | None) -> int | None:
            while positions and positions[0] in removed:
                positions.pop(0)
            return positions[0] if positions else None

        for item in named:     # the first active entry with the id or the username, as _matching finds it
            hits = [h for h in (first(by_id.get(item.channel_id)) if item.channel_id is not None else None,
                                first(by_name.get(item.username)) if item.username is not None else None)
                    if h is not None]
            if not hits:
                changes.append(SetChange(item.input, "absent"))
                continue
            removed.add(min(hits))
            changes.append(SetChange(item.input, "removed", active[min(hits)]))
        mark_removed_all(archive, [active[i].entry_id for i in sorted(removed)], now)
    return changes


def removed_keys(archive: Archive) -> tuple[set[int], set[str]]:
    """Channel ids and usernames removed by hand and not added again: discovery never adds them back."""
    active = list_channels(archive)
    ids = {e.channel_id for e in active if e.channel_id is not None}
    names = {e.username for e in active if e.username}
    gone_ids: set[int] = set()
    gone_names: set[str] = set()
    for e in list_channels(archive, include_removed=True):
        if e.removed_at is None:
            continue
        if e.channel_id is not None and e.channel_id not in ids:
            gone_ids.add(e.channel_id)
        if e.username and e.username not in names:
            gone_names.add(e.username)
    return gone_ids, gone_names


def add_discovered(archive: Archive, found: Sequence[Discovered], *, now: datetime) -> int:
    """Add candidates chosen by ``discover --auto`` (one transaction); returns how many were added.

    Seeds are named in ``seed_input`` by their set entry; a candidate already in the set is skipped.
    """
    seeds = {e.channel_id: e.input for e in list_channels(archive, include_removed=True) if e.channel_id}
    added = 0
    with archive.transaction():
        active = list_channels(archive)
        ids = {e.channel_id for e in active if e.channel_id is not None}     # in the set: by id or by username
        names = {e.username for e in active if e.username}
        for item in found:
            username = item.username.lower() if item.username else None
            if (item.channel_id is not None and item.channel_id in ids) or (username is not None and username in names):
                continue
            named = _Named(username or str(item.channel_id), username, item.channel_id)
            _insert(archive, named, now, added_by="discovery", hop=item.hop, seed_channel_id=item.seed_channel_id,
                    seed_input=seeds.get(item.seed_channel_id) if item.seed_channel_id else None,
                    discovery_run_id=item.discovery_run_id)
            if item.channel_id is not None:
                ids.add(item.channel_id)
            if username is not None:
                names.add(username)
            added += 1
    return added
