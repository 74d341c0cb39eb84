"""Text that came from Telegram or a file, made safe to print on a terminal (issue 17, item 16).

A channel title, a chat name in a Desktop export, a username a server sent, an error text quoting them: any of
them may hold terminal escapes (``\\x1b]0;title\\x07`` retitles the window, ``\\x1b[2J`` clears the screen) or
rich markup (``[red]``, ``[/]``). Every such string goes through :func:`safe` (plain text) or :func:`cell`
(a rich ``Text``, for tables and styled lines) before the CLI prints it; nothing else escapes it.

Control characters (C0, DEL, C1), bidirectional overrides and isolates and the line and paragraph separators
are shown as Python escapes, so a hostile name stays visible and cannot move the cursor or reorder the line::

    >>> safe("Chan\\x1b]0;PWNED\\x07")
    'Chan\\\\x1b]0;PWNED\\\\x07'
    >>> safe("naïve ✓ канал")
    'naïve ✓ канал'
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls (tab and newline too: a name is one line), DEL, C1 controls, bidi embeddings/overrides/isolates,
# the line/paragraph separators and the Arabic letter mark.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(value: object) -> str:
    """``value`` as text with every character that could drive a terminal shown as an escape."""
    return _UNSAFE.sub(_escape, str(value))


def cell(value: object, style: str = "") -> Text:
    """``value`` made :func:`safe`, as a rich ``Text`` (so ``[red]`` in a title is shown, not obeyed)."""
    return Text(safe(value), style=style)
