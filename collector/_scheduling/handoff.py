"""A collector's side of the hand-over through the lake (issue 15): pick up what others left in its slots.

``tgspread run`` and ``tgspread discover`` call :func:`pick_up` before they plan: channels another collector
found in this collector's slots (the lake's ``candidates``) join its collected set as discovered channels,
and channels of a slot moved here bring their history from the lake (collector._archive.lake_handoff). Nothing
happens without an assignment file or a lake.

Cost in proportion to change: a pick-up lists the other collectors' files in this collector's slots (a directory
listing) and opens none when there are none. After a slot moved here, the old owner's posts of it stay in the
lake; reading them again at every run would make every run pay for that slot's whole history. So a process
remembers, per archive, the listing (paths, inodes, sizes, modification times: a publish installs a new file) of
its last pick-up that took everything; while it is unchanged, the next pick-up reads nothing, since the same
handoffs would only be skipped again (already in the set, removed by hand, or its cursor already at the lake's).
:func:`~collector._archive.lake_handoff.lake_handoffs` also keeps what the posts and channels files said, so a
new candidates file is read alone. A `--loop` process (or a test) pays for a moved slot's history once per change
of its posts files; one process per run (a timer) reads it once per run, only for the slots it owns.

Example::

    taken = pick_up(archive, Path("lake"), Ownership("second", assignment), now=now)
    if taken is not None:
        print(taken.line())
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from collector._archive.archive import Archive
from collector._archive.lake_handoff import Taken, file_stats, handoff_files, lake_handoffs, take_handoffs

from .channel_set import list_channels, removed_keys
from .ownership import Ownership

#: (archive, collector, owned slots) -> the listing of the files read by its last pick-up that left nothing to take
_TAKEN_ALL: dict[tuple[str, str, tuple[int, ...]], tuple[tuple[str, int, int, int], ...]] = {}


def pick_up(archive: Archive, lake: Path | None, ownership: Ownership | None, *, now: datetime) -> Taken | None:
    """Take what other collectors handed to this one; None when nothing is enforced or nothing was new."""
    if lake is None or ownership is None or not ownership.enforced:
        return None
    slots = ownership.slots()
    key = (str(archive.path.resolve()), ownership.collector, tuple(slots))
    listing = file_stats(f for group in handoff_files(lake, ownership.collector, slots) for f in group)
    if listing is not None and _TAKEN_ALL.get(key) == listing:
        return None                    # the lake holds nothing new for this collector since it took everything
    _TAKEN_ALL.pop(key, None)
    handoffs = lake_handoffs(lake, ownership.collector, slots)
    if not handoffs:
        if listing is not None:
            _TAKEN_ALL[key] = listing
        return None
    gone_ids, gone_names = removed_keys(archive)
    active = list_channels(archive)
    taken = take_handoffs(archive, lake, handoffs, now=now, removed_ids=gone_ids, removed_names=gone_names,
                          active_ids={e.channel_id for e in active if e.channel_id is not None},
                          active_names={e.username for e in active if e.username})
    if listing is not None:
        _TAKEN_ALL[key] = listing      # taken now: the same files hold nothing more for it
    return taken if taken.added or taken.unreachable or taken.copied_posts else None


def line(taken: Taken) -> str:
    """One line for the log: what was taken over from the lake."""
    moved = sum(1 for h in taken.added if h.kind == "moved")
    found = len(taken.added) - moved
    text = (f"from the lake: {found} channel(s) other collectors found in this collector's slots and {moved} of "
            f"moved slots added to the collected set ({taken.copied_posts:,} posts of history copied)")
    if taken.unreachable:
        text += f"; {len(taken.unreachable)} without a username cannot be reached from this account"
    return text
