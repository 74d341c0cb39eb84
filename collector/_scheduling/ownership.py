"""Which channels this collector may act on: the slots the assignment gives it (issue 15).

Pure. ``collect``, ``run``, ``discover``, ``comments`` and ``media`` ask :meth:`Ownership.owns` before they send
anything about a channel; a channel asked for but not owned ends with the outcome ``not_owned`` and is handed on
to its owner through the lake (:mod:`collector._archive.lake_handoff`). Without an assignment file a collector
owns every channel, as before.

Example::

    >>> o = Ownership("main", {s: "main" if s < 32 else "second" for s in range(64)})
    >>> o.owns(1234567890), o.owner(1234567890)
    (False, 'second')
    >>> o.refusal(1234567890)
    "slot 60 belongs to collector 'second' (the assignment file); handed on to it through the lake"
    >>> Ownership("main", None).owns(1234567890)
    True

A channel known to be a group or private (``channels.status``) cannot be collected by any collector (tgspread
archives public channels): it is still refused, without a request, but never handed on (the text says so)::

    >>> o.refusal(1234567890, "group")
    "slot 60 belongs to collector 'second' (the assignment file); not handed on: it is a group, not a channel"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from collector._archive.slots import slot

#: The run_channels outcome of a channel whose slot another collector (or nobody) owns.
NOT_OWNED = "not_owned"
#: ``channels.status`` values of a channel no collector can collect, and what each is in a refusal's text: never
#: handed on through the lake (``collector._archive.lake_handoff.NOT_HANDED_ON`` leaves them out).
UNCOLLECTABLE = {"group": "it is a group, not a channel",
                 "private": "it is private or banned for this account",
                 "gone": "Telegram no longer knows it (most likely deleted)"}


@dataclass(frozen=True)
class Ownership:
    """``collector``'s view of the assignment (slot -> collector); ``assignment`` None: it owns everything."""

    collector: str
    assignment: Mapping[int, str] | None

    @property
    def enforced(self) -> bool:
        return self.assignment is not None

    def owner(self, channel_id: int) -> str | None:
        """The collector owning ``channel_id``'s slot (this one when nothing is enforced; None: nobody)."""
        if self.assignment is None:
            return self.collector
        return self.assignment.get(slot(channel_id))

    def owns(self, channel_id: int) -> bool:
        return self.owner(channel_id) == self.collector

    def slots(self) -> list[int]:
        """The slots this collector owns (all 64 when nothing is enforced)."""
        if self.assignment is None:
            return list(range(64))
        return sorted(s for s, n in self.assignment.items() if n == self.collector)

    def refusal(self, channel_id: int, status: str | None = None) -> str:
        """The ``error`` text of a ``not_owned`` outcome: whose slot it is and what happens to the channel.

        ``status``: the channel's ``channels.status`` when known; a group, a private or a deleted channel
        (:data:`UNCOLLECTABLE`) is not handed on, and the text says what it is instead."""
        s, who = slot(channel_id), self.owner(channel_id)
        whose = f"slot {s} belongs to collector {who!r}" if who else f"slot {s} is owned by no collector"
        if status in UNCOLLECTABLE:
            return f"{whose} (the assignment file); not handed on: {UNCOLLECTABLE[status]}"
        if who is None:
            return (f"{whose} (the assignment file); add the slot to one, whose next run picks the channel up "
                    "from the lake")
        return f"{whose} (the assignment file); handed on to it through the lake"
