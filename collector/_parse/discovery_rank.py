"""Pure ranking of snowball-discovery candidates: evidence in, a ranked queue with discovery paths out.

No I/O: :mod:`collector._archive.discovery` reads the evidence from the archive, :mod:`collector._telegram.discovery`
adds what Telegram's calls return, and :func:`rank_candidates` turns it into :class:`Candidate` rows.

Terms (docs/discovery.md explains them for users):

- A *member* is a channel of the collected set. Seeds (added by hand) have hop 0; a channel added by
  discovery keeps the hop it was found at. Only members with ``hop < depth`` are searched for references.
- *Evidence* is one (source, referrer, candidate) triple with a count: the posts of a member that forward,
  link (``t.me``) or ``@mention`` a channel; a member's linked discussion group; Telegram's recommendations for
  a member; posts a hashtag search returned. A candidate's hop is 1 + the hop of the member that named it
  (1 for a search hit), and its *path* is the evidence with the lowest hop (a set channel's before a search
  hit), then the earliest.
- A candidate *passes* when it has at least ``min_references`` references from at least ``min_referrers``
  distinct referrers, is a public broadcast channel, and (with ``min_subscribers``) is big enough.

Example::

    ranked = rank_candidates(evidence, members, facts={}, username_ids={}, resolves={},
                             thresholds=Thresholds(depth=1))
    [(c.key, c.rank, c.decision, c.path.via_source) for c in ranked]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Where evidence comes from, in the order a tie between paths is broken.
SOURCES = ("forward", "link", "mention", "linked_chat", "recommendation", "search")
#: What a run decided about a candidate.
DECISIONS = ("added", "queued", "unresolved", "below_references", "below_subscribers", "not_public", "removed",
             "over_limit")
#: Statuses that are not a public broadcast channel tgspread could collect.
NOT_PUBLIC = frozenset({"group", "private", "not_found", "not_channel", "unknown"})
_ORDER = {s: i for i, s in enumerate(SOURCES)}
_FAR = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Member:
    """A channel of the collected set: its hop, and the seed its own path starts from (itself for a seed)."""

    channel_id: int | None
    username: str | None
    hop: int
    seed_channel_id: int | None


@dataclass(frozen=True)
class Evidence:
    """``count`` references of one source from one referrer to one channel (by id, or by username).

    ``from_channel_id`` is the member (None for a search); ``query`` the search (``'#tag'``);
    ``message_id``/``at`` the first post naming it (the member's post, or the search hit), or the call's time.
    """

    source: str
    from_channel_id: int | None
    target_id: int | None
    target_username: str | None
    count: int
    message_id: int | None = None
    at: datetime | None = None
    query: str | None = None

    @property
    def referrer(self) -> str:
        return f"id:{self.from_channel_id}" if self.from_channel_id is not None else (self.query or "?")


@dataclass(frozen=True)
class Facts:
    """What the archive knows about a channel. ``status``: channel, group, private, not_found, unknown."""

    channel_id: int
    username: str | None
    title: str | None
    status: str
    subscribers: int | None = None


@dataclass(frozen=True)
class Thresholds:
    """The sampling rules of a run (recorded with it in ``discovery_runs``)."""

    depth: int = 2
    min_references: int = 1
    min_referrers: int = 1
    min_subscribers: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError("depth must be at least 1")
        if self.min_references < 1 or self.min_referrers < 1 or self.min_subscribers < 0:
            raise ValueError("min_references and min_referrers must be at least 1, min_subscribers at least 0")


@dataclass(frozen=True)
class Path:
    """How a candidate was found: from which seed, at which hop, through which post or call, and when."""

    hop: int
    seed_channel_id: int | None
    via_source: str
    via_channel_id: int | None
    via_message_id: int | None
    via_query: str | None
    via_at: datetime | None


@dataclass(frozen=True)
class Reference:
    """The evidence of one source and one referrer for a candidate, as stored in ``discovery_references``."""

    source: str
    referrer: str
    from_channel_id: int | None
    count: int
    hop: int
    message_id: int | None
    at: datetime | None


@dataclass
class Candidate:
    """One row of the ranked queue."""

    key: str
    channel_id: int | None
    username: str | None
    title: str | None
    status: str
    subscribers: int | None
    referrers: int
    references: int
    by_source: dict[str, int]
    path: Path
    refs: list[Reference] = field(default_factory=list)
    decision: str = "queued"
    rank: int = 0

    @property
    def name(self) -> str:
        if self.username:
            return "@" + self.username
        return str(self.channel_id) if self.channel_id is not None else self.key

    @property
    def passes(self) -> bool:
        return self.decision in ("queued", "added", "over_limit", "not_owned")


def candidate_key(channel_id: int | None, username: str | None) -> str:
    """``'id:<channel_id>'`` when the id is known, else ``'@<username>'`` (lower-cased).

    >>> candidate_key(None, "Durov"), candidate_key(42, "durov")
    ('@durov', 'id:42')
    """
    if channel_id is not None:
        return f"id:{channel_id}"
    if not username:
        raise ValueError("a candidate needs an id or a username")
    return "@" + username.lower()


def _path_order(hop: int, ev: Evidence) -> tuple[int, bool, datetime, int, int, int]:
    """Lowest hop first; at one hop a set channel's post or call before a search hit; then the earliest."""
    return (hop, ev.from_channel_id is None, ev.at or _FAR, _ORDER.get(ev.source, 99), ev.from_channel_id or 0,
            ev.message_id or 0)


def _decide(c: Candidate, t: Thresholds, removed: bool) -> str:
    if removed:
        return "removed"
    if c.references < t.min_references or c.referrers < t.min_referrers:
        return "below_references"
    if c.status in NOT_PUBLIC:
        return "not_public"
    if c.status == "unresolved":
        return "unresolved"
    if t.min_subscribers > 0:
        if c.subscribers is None:
            return "unresolved"
        if c.subscribers < t.min_subscribers:
            return "below_subscribers"
    return "queued"


def rank_candidates(
    evidence: Iterable[Evidence],
    members: Iterable[Member],
    *,
    facts: Mapping[int, Facts],
    username_ids: Mapping[str, int],
    resolves: Mapping[str, str],
    thresholds: Thresholds,
    removed_ids: frozenset[int] | set[int] = frozenset(),
    removed_names: frozenset[str] | set[str] = frozenset(),
) -> list[Candidate]:
    """The ranked candidate queue.

    ``facts`` by channel id; ``username_ids`` maps lower-cased usernames the archive knows to ids;
    ``resolves`` holds what resolving a still unknown username gave (``not_found``, ``not_channel``).
    Channels of the set are never candidates; those removed from it by hand are listed as ``removed``.
    Ranked by distinct referrers, then references, then subscribers (most first), then key.
    """
    members = list(members)
    by_id = {m.channel_id: m for m in members if m.channel_id is not None}
    member_names = {m.username.lower() for m in members if m.username}
    grouped: dict[str, list[tuple[int, Evidence]]] = {}
    for ev in evidence:
        if ev.from_channel_id is not None:
            member = by_id.get(ev.from_channel_id)
            if member is None:
                continue
            hop = member.hop + 1
        else:
            hop = 1
        if hop > thresholds.depth or ev.count <= 0:
            continue
        name = ev.target_username.lower() if ev.target_username else None
        target = ev.target_id if ev.target_id is not None else (username_ids.get(name) if name else None)
        if target is not None and (target in by_id or target == ev.from_channel_id):
            continue
        if target is None and (name is None or name in member_names):
            continue
        known = facts.get(target) if target is not None else None
        if known is not None and known.username and known.username.lower() in member_names:
            continue
        grouped.setdefault(candidate_key(target, name), []).append((hop, ev))

    out = []
    for key, items in grouped.items():
        out.append(_candidate(key, items, by_id, facts, resolves, thresholds, removed_ids, removed_names))
    out.sort(key=lambda c: (-c.referrers, -c.references, -(c.subscribers if c.subscribers is not None else -1),
                            c.key))
    for i, c in enumerate(out, 1):
        c.rank = i
    return out


def _candidate(key: str, items: list[tuple[int, Evidence]], by_id: Mapping[int, Member], facts: Mapping[int, Facts],
               resolves: Mapping[str, str], thresholds: Thresholds, removed_ids: frozenset[int] | set[int],
               removed_names: frozenset[str] | set[str]) -> Candidate:
    channel_id = int(key[3:]) if key.startswith("id:") else None
    known = facts.get(channel_id) if channel_id is not None else None
    username = known.username.lower() if known is not None and known.username else None
    if username is None:
        username = next((ev.target_username.lower() for _, ev in items if ev.target_username), None)
    if known is not None:
        status, subscribers, title = known.status, known.subscribers, known.title
    elif channel_id is None:
        assert username is not None
        status, subscribers, title = resolves.get(username, "unresolved"), None, None
    else:
        status, subscribers, title = "unknown", None, None
    by_source = dict.fromkeys(SOURCES, 0)
    merged: dict[tuple[str, str], Reference] = {}
    for hop, ev in sorted(items, key=lambda x: _path_order(*x)):
        by_source[ev.source] = by_source.get(ev.source, 0) + ev.count
        k = (ev.source, ev.referrer)
        old = merged.get(k)
        merged[k] = Reference(ev.source, ev.referrer, ev.from_channel_id, ev.count + (old.count if old else 0),
                              old.hop if old else hop, old.message_id if old else ev.message_id,
                              old.at if old else ev.at)
    hop, best = min(items, key=lambda x: _path_order(*x))
    member = by_id.get(best.from_channel_id) if best.from_channel_id is not None else None
    path = Path(hop=hop, seed_channel_id=member.seed_channel_id if member else None, via_source=best.source,
                via_channel_id=best.from_channel_id, via_message_id=best.message_id, via_query=best.query,
                via_at=best.at)
    cand = Candidate(key=key, channel_id=channel_id, username=username, title=title, status=status,
                     subscribers=subscribers, referrers=len({r.referrer for r in merged.values()}),
                     references=sum(by_source.values()), by_source=by_source, path=path,
                     refs=list(merged.values()))
    removed = (channel_id is not None and channel_id in removed_ids) or (username is not None
                                                                          and username in removed_names)
    cand.decision = _decide(cand, thresholds, removed)
    return cand


def to_resolve(candidates: Iterable[Candidate], budget: int) -> list[str]:
    """Usernames worth resolving, best ranked first: candidates that pass the reference thresholds but whose
    kind (or, with a subscriber threshold, size) is not known yet. At most ``budget`` of them."""
    out: list[str] = []
    for c in candidates:
        if len(out) >= budget:
            break
        if c.decision == "unresolved" and c.username and c.username not in out:
            out.append(c.username)
    return out
