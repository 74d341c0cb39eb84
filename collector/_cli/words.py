"""Counted nouns in messages: ``plural(1, "channel")`` is "1 channel", ``plural(3, "deletion")`` "3 deletions".

>>> plural(1, "channel"), plural(0, "channel"), plural(2_000, "entry", "entries")
('1 channel', '0 channels', '2,000 entries')
"""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless ``count`` is 1 (``many`` when it is irregular)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
