"""Simulated server handlers: discussion groups and messages.GetReplies (issue 5).

``handlers(sender)`` maps TL request types to methods answering them from ``sender.world``; the
``SimulatedSender`` adds them to its own table when it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import SimulatedSender

__all__ = ["handlers"]


def handlers(sender: SimulatedSender) -> dict[type, Callable[[Any], Any]]:
    """The request types this module answers, each with its handler bound to ``sender``."""
    return {}
