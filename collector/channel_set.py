"""The collected channel set kept in the archive: what `tgspread channels add/remove/list` manage (issue 5).

STUB until the discovery work lands: ``tracked_inputs`` is the interface ``tgspread run`` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .archive import Archive

__all__ = ["tracked_inputs"]


def tracked_inputs(archive: Archive) -> list[str]:
    """The channels in the archive's collected set, as inputs ``collect()`` accepts (usernames or ids)."""
    return []
