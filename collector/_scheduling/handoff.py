"""A collector's side of the hand-over through the lake (issue 15): pick up what others left in its slots.

``tgspread run`` and ``tgspread discover`` call :func:`pick_up` before they plan: channels another collector
found in this collector's slots (the lake's ``candidates``) join its collected set as discovered channels,
and channels of a slot moved here bring their history from the lake (collector._archive.lake_handoff). Nothing
happens without an assignment file or a lake.

Example::

    taken = pick_up(archive, Path("lake"), Ownership("second", assignment), now=now)
    if taken is not None:
        print(taken.line())
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from collector._archive.archive import Archive
from collector._archive.lake_handoff import Taken, lake_handoffs, take_handoffs

from .channel_set import list_channels, removed_keys
from .ownership import Ownership


def pick_up(archive: Archive, lake: Path | None, ownership: Ownership | None, *, now: datetime) -> Taken | None:
    """Take what other collectors handed to this one; None when nothing is enforced or nothing was new."""
    if lake is None or ownership is None or not ownership.enforced:
        return None
    handoffs = lake_handoffs(lake, ownership.collector, ownership.slots())
    if not handoffs:
        return None
    gone_ids, gone_names = removed_keys(archive)
    active = list_channels(archive)
    taken = take_handoffs(archive, lake, handoffs, now=now, removed_ids=gone_ids, removed_names=gone_names,
                          active_ids={e.channel_id for e in active if e.channel_id is not None},
                          active_names={e.username for e in active if e.username})
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
