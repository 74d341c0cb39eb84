"""Parse what a user calls a channel: ``durov``, ``@durov``, ``https://t.me/durov``, ``t.me/s/durov``,
``https://t.me/durov/123`` (a post link), ``tg://resolve?domain=durov``, or a numeric id (``1234567890`` or the
``-1001234567890`` form Bot API tools print).

Pure: no I/O. Private invite links (``t.me/+AbC``, ``t.me/joinchat/AbC``, ``tg://join?invite=AbC``) parse to an
invite that the collector refuses (:data:`INVITE_REFUSED`), since tgspread archives public channels only. Links to
other hosts are refused; errors name the exact problem (too short, a Cyrillic look-alike letter, ...).

Example::

    >>> parse_channel_ref("https://t.me/s/Durov/42")
    ChannelRef(raw='https://t.me/s/Durov/42', username='Durov', channel_id=None, invite=None)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# Telegram usernames: 5-32 characters of letters, digits and underscores, starting with a letter
# (a few legacy names are 4 long), no trailing underscore.
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_HOSTS = {"t.me", "telegram.me", "telegram.dog", "www.t.me", "www.telegram.me"}
_RESERVED_PATHS = {"s", "c", "share", "addstickers", "addemoji", "proxy", "socks", "login", "iv"}


#: Why an invite link is refused (the collector's error text and the CLI's, after the link itself).
INVITE_REFUSED = ("invite links are private chats; tgspread archives public channels only: name the channel by "
                  "its public @username or https://t.me/<name> link")


class ChannelRefError(ValueError):
    """The text names no channel tgspread can collect; the message says what to write instead."""


@dataclass(frozen=True)
class ChannelRef:
    """A parsed channel name: exactly one of ``username``, ``channel_id`` or ``invite`` is set."""

    raw: str
    username: str | None = None
    channel_id: int | None = None
    invite: str | None = None


def username_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a username, in words; None when it is fine. Pure."""
    if not name:
        return "the name is empty"
    for ch in name:
        if not ch.isascii():
            what = unicodedata.name(ch, "an unnamed character")
            return (f"it contains {ch!r} (U+{ord(ch):04X} {what}); usernames use only the Latin letters a-z, "
                    "digits and underscores (a look-alike letter? retype the name)")
        if not (ch.isalnum() or ch == "_"):
            return f"it contains {ch!r}; usernames have only letters, digits and underscores"
    if not name[0].isalpha():
        return "it must start with a letter"
    if len(name) < 4:
        return f"it is too short ({len(name)} characters; usernames have 5-32)"
    if len(name) > 32:
        return f"it is too long ({len(name)} characters; usernames have 5-32)"
    if name.endswith("_") or "__" in name:
        return "usernames never end with '_' nor contain '__'"
    return None if _USERNAME.match(name) else "it is not a username"


_STORABLE_USERNAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def storable_username(name: object) -> str | None:
    """``name`` when it can be kept as a channel's username, else None (a server or a page is hostile input).

    Looser than what a user may type (old and collectible usernames break the 5-32 rule), but never more than
    letters, digits and underscores, so a stored username is safe as a folder name and in a URL::

        >>> storable_username("durov"), storable_username(".."), storable_username("a/b"), storable_username(None)
        ('durov', None, None, None)
    """
    return name if isinstance(name, str) and _STORABLE_USERNAME.fullmatch(name) else None


def _check_username(name: str, raw: str) -> str:
    problem = username_problem(name)
    if problem is not None:
        raise ChannelRefError(f"{raw!r} is not a valid channel username: {problem}; write it as 'name', '@name' "
                              "or 'https://t.me/name'")
    return name


def _from_url(raw: str, text: str) -> ChannelRef:
    parts = urlsplit(text if "://" in text else "https://" + text)
    if parts.scheme == "tg":
        query = parse_qs(parts.query)
        if parts.netloc == "join" or "invite" in query:
            return ChannelRef(raw, invite=query.get("invite", [""])[0])
        if parts.netloc != "resolve" or "domain" not in query:
            raise ChannelRefError(f"{raw!r} is not a channel link; use tg://resolve?domain=<name> or "
                                  "https://t.me/<name>")
        return ChannelRef(raw, username=_check_username(query["domain"][0], raw))
    if (parts.hostname or "").lower() not in _HOSTS:
        raise ChannelRefError(f"{raw!r} is not a Telegram link; use https://t.me/<name> (or t.me/s/<name>)")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise ChannelRefError(f"{raw!r} is a Telegram link without a channel name; use https://t.me/<name>")
    first = segments[0]
    if first.startswith("+") or first == "joinchat":
        code = first[1:] if first.startswith("+") else (segments[1] if len(segments) > 1 else "")
        return ChannelRef(raw, invite=code)
    if first == "c" and len(segments) > 1 and segments[1].isdigit():
        return ChannelRef(raw, channel_id=int(segments[1]))      # t.me/c/<id>/<post>: a private-link form
    if first == "s" and len(segments) > 1:
        first = segments[1]
    elif first in _RESERVED_PATHS:
        raise ChannelRefError(f"{raw!r} is not a channel link; use https://t.me/<name>")
    return ChannelRef(raw, username=_check_username(first, raw))


def parse_channel_ref(text: str) -> ChannelRef:
    """Parse one channel name as a user wrote it; raises :class:`ChannelRefError` with advice if invalid."""
    raw = text
    text = text.strip()
    if not text:
        raise ChannelRefError("an empty channel name; give a username, @name, t.me link or archived id")
    if re.fullmatch(r"-?\d+", text):
        value = int(text)
        if value < 0:
            digits = str(-value)
            value = int(digits[3:]) if digits.startswith("100") and len(digits) > 3 else -value
        if value <= 0:
            raise ChannelRefError(f"{raw!r} is not a channel id; give a username, @name, t.me link or the id of "
                                  "a channel already in the archive")
        return ChannelRef(raw, channel_id=value)
    lowered = text.lower()
    if lowered.startswith(("http://", "https://", "tg://")) or lowered.split("/", 1)[0] in _HOSTS:
        return _from_url(raw, text)
    if text.startswith("@"):
        text = text[1:]
    return ChannelRef(raw, username=_check_username(text, raw))


def distinct_channels(inputs: Iterable[str]) -> list[str]:
    """``inputs`` without repeats of one channel, first spelling kept, in order. Pure.

    ``durov``, ``@Durov``, ``https://t.me/durov``, ``t.me/s/durov/5`` and ``tg://resolve?domain=durov`` name one
    channel (usernames are case-insensitive), so it is collected once. A text that names no channel is
    kept as it is (the pass reports it).

    >>> distinct_channels(["durov", "@Durov", "https://t.me/s/durov/5", "1234567890", "-1001234567890"])
    ['durov', '1234567890']
    """
    seen: set[tuple[str, object]] = set()
    out = []
    for raw in inputs:
        try:
            ref = parse_channel_ref(raw)
        except ChannelRefError:
            key: tuple[str, object] = ("raw", raw)
        else:
            key = (("name", ref.username.lower()) if ref.username is not None
                   else ("id", ref.channel_id) if ref.channel_id is not None else ("invite", ref.invite))
        if key not in seen:
            seen.add(key)
            out.append(raw)
    return out
