"""What discovery reads from and writes to the archive: set members, evidence, known channels, run records.

The SQL of ``tgspread discover`` lives here; :mod:`collector._parse.discovery_rank` ranks (pure) and
:mod:`collector._telegram.discovery` talks to Telegram. Tables: ``channel_set``, ``peers`` (with the columns
migration 0003 adds), ``discovery_runs``, ``discovery_calls``, ``discovery_candidates``,
``discovery_references``, ``discovery_resolves``.

Example::

    members = set_members(archive)
    evidence = archive_evidence(archive, members, depth=2)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from collector._parse.channel_ref import ChannelRefError, parse_channel_ref
from collector._parse.discovery_rank import Candidate, Evidence, Facts, Member, Thresholds
from collector._scheduling.channel_set import list_channels

from .rows import CHANNELS_SCHEMA

if TYPE_CHECKING:
    from .archive import Archive

#: A username that resolved to nothing (or to a user) is tried again after this long.
RESOLVE_RETRY = timedelta(days=30)
_TS = pa.timestamp("us", tz="UTC")
# t.me / telegram.me / telegram.dog links and tg://resolve: cheap pre-filter, channel_ref parses the rest.
_TG_LINK = r"(?i)((^|//|\.|^www\.)(t\.me|telegram\.me|telegram\.dog)/|^tg://resolve)"


def set_members(archive: Archive) -> list[Member]:
    """The active set: each member's id (when known), username, hop and the seed its path starts from."""
    out = []
    for e in list_channels(archive):
        seed = e.seed_channel_id if e.added_by == "discovery" else e.channel_id
        out.append(Member(channel_id=e.channel_id, username=e.username, hop=e.hop, seed_channel_id=seed))
    return out


# -- evidence from archived posts ---------------------------------------------------------------------------
_POST_KEY = "coalesce(grouped_id, -message_id)"   # an album counts once


def archive_evidence(archive: Archive, members: Sequence[Member], *, depth: int) -> list[Evidence]:
    """Forwards, t.me links, @mentions and linked discussion groups of members with ``hop < depth``."""
    ids = sorted({m.channel_id for m in members if m.channel_id is not None and m.hop < depth})
    if not ids:
        return []
    con = archive.con
    params = {"ids": ids}
    out: list[Evidence] = []
    rows = con.execute(
        f"SELECT channel_id, fwd_channel_id, count(DISTINCT {_POST_KEY}), "
        "first(message_id ORDER BY posted_at, message_id), min(posted_at) FROM posts "
        "WHERE channel_id IN (SELECT unnest($ids)) AND fwd_channel_id IS NOT NULL AND fwd_channel_id <> channel_id "
        "GROUP BY ALL", params).fetchall()
    out += [Evidence("forward", r[0], r[1], None, int(r[2]), r[3], r[4]) for r in rows]
    rows = con.execute(
        f"SELECT channel_id, name, count(DISTINCT {_POST_KEY}), first(message_id ORDER BY posted_at, message_id), "
        "min(posted_at) FROM (SELECT channel_id, message_id, grouped_id, posted_at, unnest(mentions) AS name "
        "FROM posts WHERE channel_id IN (SELECT unnest($ids)) AND len(mentions) > 0) GROUP BY ALL", params).fetchall()
    out += [Evidence("mention", r[0], None, str(r[1]).lower(), int(r[2]), r[3], r[4]) for r in rows if r[1]]
    out += _link_evidence(archive, params)
    rows = con.execute(
        "SELECT channel_id, linked_chat_id, coalesce(last_snapshot_at, last_seen_at) FROM channels "
        "WHERE channel_id IN (SELECT unnest($ids)) AND linked_chat_id IS NOT NULL", params).fetchall()
    out += [Evidence("linked_chat", r[0], r[1], None, 1, None, r[2]) for r in rows]
    return out


def _link_evidence(archive: Archive, params: dict[str, Any]) -> list[Evidence]:
    """Posts linking to a channel or a channel post on t.me; invite links and non-channel paths are skipped."""
    rows = archive.con.execute(
        "SELECT channel_id, message_id, grouped_id, posted_at, url FROM (SELECT channel_id, message_id, grouped_id, "
        "posted_at, unnest(urls) AS url FROM posts WHERE channel_id IN (SELECT unnest($ids)) AND len(urls) > 0) "
        f"WHERE regexp_matches(url, '{_TG_LINK}') ORDER BY posted_at, message_id", params).fetchall()
    found: dict[tuple[int, int | None, str | None], list[Any]] = {}
    for channel_id, message_id, grouped_id, posted_at, url in rows:
        try:
            ref = parse_channel_ref(url)
        except ChannelRefError:
            continue
        if ref.invite is not None:
            continue
        key = (channel_id, ref.channel_id, ref.username.lower() if ref.username else None)
        post = grouped_id if grouped_id is not None else -message_id
        entry = found.setdefault(key, [set(), message_id, posted_at])
        entry[0].add(post)
    return [Evidence("link", k[0], k[1], k[2], len(v[0]), v[1], v[2]) for k, v in found.items()]


# -- what the archive knows about channels -----------------------------------------------------------------
def known_channels(archive: Archive, now: datetime) -> tuple[dict[int, Facts], dict[str, int], dict[str, str]]:
    """(facts by id, lower-cased username -> id, unresolvable username -> outcome) from the archive."""
    con = archive.con
    facts: dict[int, Facts] = {}
    for cid, username, title, megagroup, broadcast, subs in con.execute(
            "SELECT channel_id, username, title, megagroup, broadcast, participants_count FROM peers").fetchall():
        status = "group" if megagroup and not broadcast else ("channel" if username else "private")
        facts[cid] = Facts(cid, username, title, status, subs)
    for cid, username, title, status, megagroup, subs in con.execute(
            "SELECT channel_id, username, title, status, megagroup, participants_count FROM channels").fetchall():
        peer = facts.get(cid)
        if status == "group" or megagroup:
            kind = "group"
        elif status in ("private", "not_found"):
            kind = status
        else:
            kind = "channel" if username or (peer and peer.username) else "private"
        facts[cid] = Facts(cid, username or (peer.username if peer else None), title or (peer.title if peer else None),
                           kind, subs if subs is not None else (peer.subscribers if peer else None))
    for (cid,) in con.execute("SELECT DISTINCT linked_chat_id FROM channels WHERE linked_chat_id IS NOT NULL"
                              ).fetchall():
        if cid not in facts:   # a channel's discussion group is always a supergroup: a group, not a channel
            facts[cid] = Facts(cid, None, None, "group")
    names: dict[str, int] = {}
    for name, cid in con.execute(
            "SELECT username, channel_id FROM discovery_resolves WHERE channel_id IS NOT NULL UNION ALL "
            "SELECT lower(username), channel_id FROM peers WHERE username IS NOT NULL UNION ALL "
            "SELECT username, channel_id FROM channel_usernames").fetchall():
        names[str(name)] = int(cid)          # later sources win: the collector's own cache last
    failed = {str(n): str(o) for n, o in con.execute(
        "SELECT username, outcome FROM discovery_resolves WHERE channel_id IS NULL AND resolved_at > ?",
        [now - RESOLVE_RETRY]).fetchall()}
    return facts, names, failed


def remember_answer_chats(archive: Archive, chats: Sequence[dict[str, Any]], now: datetime) -> None:
    """Channels met in discovery's answers, with access hash and size, into ``peers`` (never resolved again)."""
    if not chats:
        return
    rows = list({c["channel_id"]: c for c in chats}.values())
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("channel_id", pa.int64()), ("username", pa.string()), ("title", pa.string()), ("megagroup", pa.bool_()),
        ("broadcast", pa.bool_()), ("access_hash", pa.int64()), ("participants_count", pa.int64())]))
    with archive.transaction() as con:
        con.register("_answer_chats", table)
        con.execute(
            "INSERT INTO peers (channel_id, username, title, megagroup, broadcast, access_hash, participants_count, "
            "participants_at, first_seen_at, last_seen_at) SELECT channel_id, username, title, megagroup, broadcast, "
            "access_hash, participants_count, CASE WHEN participants_count IS NULL THEN NULL ELSE $now END, $now, $now "
            "FROM _answer_chats ON CONFLICT (channel_id) DO UPDATE SET username = excluded.username, "
            "title = coalesce(excluded.title, peers.title), megagroup = excluded.megagroup, "
            "broadcast = excluded.broadcast, access_hash = coalesce(excluded.access_hash, peers.access_hash), "
            "participants_count = coalesce(excluded.participants_count, peers.participants_count), "
            "participants_at = coalesce(excluded.participants_at, peers.participants_at), "
            "last_seen_at = excluded.last_seen_at", {"now": now})
        con.unregister("_answer_chats")


def record_resolve(archive: Archive, username: str, outcome: str, channel_id: int | None, now: datetime) -> None:
    archive.con.execute(
        "INSERT INTO discovery_resolves (username, outcome, channel_id, resolved_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (username) DO UPDATE SET outcome = excluded.outcome, channel_id = excluded.channel_id, "
        "resolved_at = excluded.resolved_at", [username.lower(), outcome, channel_id, now])


def make_reachable(archive: Archive, channel_id: int, now: datetime) -> bool:
    """Copy a channel discovery learnt the access hash of into ``channels``, so ``collect`` never resolves it.

    Returns False when only its username is known (then ``collect`` resolves it once, as for any new name).
    """
    row = archive.con.execute(
        "SELECT p.access_hash, p.username, p.title, p.participants_count, p.megagroup FROM peers p "
        "WHERE p.channel_id = ? AND p.access_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM channels c "
        "WHERE c.channel_id = p.channel_id AND c.access_hash IS NOT NULL)", [channel_id]).fetchone()
    if row is None:
        return archive.lookup_id(channel_id) is not None
    values: dict[str, Any] = dict.fromkeys(CHANNELS_SCHEMA.names)
    values.update(channel_id=channel_id, access_hash=row[0], username=row[1], title=row[2], participants_count=row[3],
                  megagroup=bool(row[4]))
    archive.remember_channel(values, now)
    return True


# -- calls --------------------------------------------------------------------------------------------------
def cached_call(archive: Archive, request: str, *, channel_id: int | None, query: str | None,
                since: datetime) -> list[dict[str, Any]] | None:
    """The results of the latest successful call of this kind made after ``since``, or None."""
    row = archive.con.execute(
        "SELECT results FROM discovery_calls WHERE request = ? AND channel_id IS NOT DISTINCT FROM ? "
        "AND query IS NOT DISTINCT FROM ? AND error IS NULL AND called_at > ? ORDER BY called_at DESC LIMIT 1",
        [request, channel_id, query, since]).fetchone()
    if row is None:
        return None
    items = json.loads(row[0]) if row[0] else []
    for item in items:
        if item.get("at"):
            item["at"] = datetime.fromisoformat(item["at"])
    return list(items)


def record_call(archive: Archive, run_id: int, request: str, *, channel_id: int | None, query: str | None,
                now: datetime, results: Sequence[dict[str, Any]] = (), total: int | None = None,
                error: str | None = None) -> None:
    payload = json.dumps([{**r, "at": r["at"].isoformat() if r.get("at") else None} for r in results])
    archive.con.execute(
        "INSERT INTO discovery_calls (discovery_run_id, request, channel_id, query, called_at, results, total, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [run_id, request, channel_id, query, now, payload, total, error])


# -- runs ---------------------------------------------------------------------------------------------------
def start_run(archive: Archive, now: datetime, thresholds: Thresholds, *, recommendations: bool,
              search: Sequence[str], auto: bool, limit: int | None, members: int) -> int:
    from collector._version import __version__

    row = archive.con.execute(
        "INSERT INTO discovery_runs (discovery_run_id, started_at, status, depth, min_references, min_referrers, "
        "min_subscribers, recommendations, search_hashtags, auto, add_limit, members, tgspread_version) VALUES "
        "(nextval('discovery_run_id_seq'), ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING discovery_run_id",
        [now, thresholds.depth, thresholds.min_references, thresholds.min_referrers, thresholds.min_subscribers,
         recommendations, list(search), auto, limit, members, __version__]).fetchone()
    assert row is not None
    return int(row[0])


def finish_run(archive: Archive, run_id: int, *, status: str, finished_at: datetime, candidates: int, added: int,
               requests: dict[str, int], notes: Sequence[str], error: str | None = None) -> None:
    archive.con.execute(
        "UPDATE discovery_runs SET status = ?, finished_at = ?, candidates = ?, added = ?, requests = ?, notes = ?, "
        "error = ? WHERE discovery_run_id = ?",
        [status, finished_at, candidates, added, json.dumps(requests), list(notes), error, run_id])


_CANDIDATE_SCHEMA = pa.schema([
    ("candidate", pa.string()), ("channel_id", pa.int64()), ("username", pa.string()), ("title", pa.string()),
    ("status", pa.string()), ("subscribers", pa.int64()), ("rank", pa.int32()), ("referrers", pa.int32()),
    ("ref_count", pa.int64()), ("forwards", pa.int64()), ("links", pa.int64()), ("mentions", pa.int64()),
    ("linked_chats", pa.int64()), ("recommendations", pa.int64()), ("search_hits", pa.int64()), ("hop", pa.int32()),
    ("seed_channel_id", pa.int64()), ("via_source", pa.string()), ("via_channel_id", pa.int64()),
    ("via_message_id", pa.int64()), ("via_query", pa.string()), ("via_at", _TS), ("decision", pa.string()),
])
_REFERENCE_SCHEMA = pa.schema([
    ("candidate", pa.string()), ("source", pa.string()), ("referrer", pa.string()), ("from_channel_id", pa.int64()),
    ("ref_count", pa.int64()), ("hop", pa.int32()), ("first_message_id", pa.int64()), ("first_at", _TS),
])


def write_candidates(archive: Archive, run_id: int, candidates: Sequence[Candidate], now: datetime) -> None:
    """The run's ranked queue and its evidence, in one transaction. ``first_found_at`` carries over from
    earlier runs that listed the same channel (by id or by username)."""
    rows = []
    refs = []
    for c in candidates:
        p = c.path
        s = c.by_source
        rows.append({
            "candidate": c.key, "channel_id": c.channel_id, "username": c.username, "title": c.title,
            "status": c.status, "subscribers": c.subscribers, "rank": c.rank, "referrers": c.referrers,
            "ref_count": c.references, "forwards": s["forward"], "links": s["link"], "mentions": s["mention"],
            "linked_chats": s["linked_chat"], "recommendations": s["recommendation"], "search_hits": s["search"],
            "hop": p.hop, "seed_channel_id": p.seed_channel_id, "via_source": p.via_source,
            "via_channel_id": p.via_channel_id, "via_message_id": p.via_message_id, "via_query": p.via_query,
            "via_at": p.via_at, "decision": c.decision,
        })
        refs += [{"candidate": c.key, "source": r.source, "referrer": r.referrer, "from_channel_id": r.from_channel_id,
                  "ref_count": r.count, "hop": r.hop, "first_message_id": r.message_id, "first_at": r.at}
                 for r in c.refs]
    with archive.transaction() as con:
        con.register("_cands", pa.Table.from_pylist(rows, schema=_CANDIDATE_SCHEMA))
        con.register("_refs", pa.Table.from_pylist(refs, schema=_REFERENCE_SCHEMA))
        names = ", ".join(_CANDIDATE_SCHEMA.names)
        con.execute(
            f"INSERT INTO discovery_candidates (discovery_run_id, {names}, first_found_at) "
            f"SELECT $run, {', '.join('c.' + n for n in _CANDIDATE_SCHEMA.names)}, "
            "coalesce((SELECT min(o.first_found_at) FROM discovery_candidates o WHERE o.channel_id = c.channel_id "
            "OR o.username = c.username), $now) FROM _cands c", {"run": run_id, "now": now})
        con.execute(
            f"INSERT INTO discovery_references (discovery_run_id, {', '.join(_REFERENCE_SCHEMA.names)}) "
            f"SELECT $run, {', '.join(_REFERENCE_SCHEMA.names)} FROM _refs", {"run": run_id})
        con.unregister("_cands")
        con.unregister("_refs")
