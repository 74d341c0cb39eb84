"""Pure parser of Telegram's public channel preview pages (``https://t.me/s/<name>``).

No I/O here: HTML in, typed records out. ``web.py`` fetches the pages; ``store.py`` writes the rows.

What a page holds (checked against saved real pages): a channel header (``.tgme_channel_info``), about
20 posts as ``div.tgme_widget_message[data-post="name/id"]``, oldest first, and a "load more" link
``a.js-messages_more[data-before]`` naming the cursor of the next (older) page. A page of a missing or
private channel, or of a user or a group, answers 200 with neither header nor posts.

Example::

    page = parse_page(html)
    page.channel.title, page.channel.subscribers.label     # 'Durov's Channel', '11.4M'
    [p.message_id for p in page.posts]                     # [101, 102, ...]
    page.before                                            # 101: fetch ?before=101 for older posts
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from selectolax.lexbor import LexborHTMLParser, LexborNode

from analysis._urls import url_domains

# A t.me link to a post or a peer: https://t.me/<name>[/<id>][?single]; also t.me/s/<name>/<id>.
_TME_RE = re.compile(r"^(?:https?:)?//(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?([A-Za-z0-9_]{3,64})(?:/(\d+))?")
_COUNT_RE = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([KMB]?)$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")
_EDITED_RE = re.compile(r"\bedited\b", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}

# Media blocks in the order they are recognised; the first match names the post's media kind.
# (selector, kind): kinds use the API's vocabulary (posts.media_type).
_MEDIA_SELECTORS: tuple[tuple[str, str], ...] = (
    (".tgme_widget_message_photo_wrap", "photo"),
    (".tgme_widget_message_roundvideo_player", "video"),
    (".tgme_widget_message_video_player", "video"),
    (".tgme_widget_message_voice_player", "voice"),
    (".tgme_widget_message_sticker_wrap", "sticker"),
    (".tgme_widget_message_poll", "poll"),
    (".tgme_widget_message_location_wrap", "geo"),
    (".tgme_widget_message_document_wrap", "document"),
    (".tgme_widget_message_link_preview", "webpage"),
)
# All of them in one query (one walk of the block instead of nine); the class names, for telling them apart.
_MEDIA_QUERY = ", ".join(selector for selector, _ in _MEDIA_SELECTORS)
_MEDIA_CLASSES = tuple(selector[1:] for selector, _ in _MEDIA_SELECTORS)
_REPLY = "tgme_widget_message_reply"


@dataclass(frozen=True, slots=True)
class Count:
    """A counter as a preview shows it: the label (``1.5K``), its face value and the range it stands for.

    Labels under 1,000 are exact (``low == value == high``). For a shortened label the range holds
    whether Telegram rounded or truncated: ``1.5K`` -> 1,450..1,599.
    """

    label: str
    value: int
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class WebChannel:
    """The channel header of a preview page."""

    username: str | None
    title: str | None
    description: str | None
    subscribers: Count | None


@dataclass(frozen=True, slots=True)
class WebPost:
    """One message as a preview page shows it. Album members other than the first come as their own
    records with ``album_first_id`` set and no text or views (the page shows those once, on the first)."""

    username: str
    message_id: int
    channel_id: int | None             # from the block's data-view token, when it carries one
    posted_at: datetime | None
    edited: bool
    text: str
    views: Count | None
    post_author: str | None            # the signature shown in the footer
    fwd_username: str | None           # forwarded from t.me/<fwd_username>[/<fwd_message_id>]
    fwd_message_id: int | None
    fwd_from_name: str | None          # hidden sender: only a displayed name
    fwd_post_author: str | None
    reply_to_message_id: int | None    # a reply to a post of this channel
    reply_to_username: str | None      # a reply to t.me/<reply_to_username>/<reply_to_peer_message_id>,
    reply_to_peer_message_id: int | None   # a post of another channel (a cross-chat reply)
    media_type: str | None
    media_duration: float | None
    media_filename: str | None
    webpage_url: str | None
    webpage_title: str | None
    hashtags: tuple[str, ...]
    urls: tuple[str, ...]
    domains: tuple[str, ...]
    mentions: tuple[str, ...]
    album_first_id: int | None         # set on every member of an album, the first included
    # (reaction, count) as the API names them: the emoji, 'custom:<document id>', 'paid'; a count is the
    # face value of its label ('1.2K' -> 1200)
    reactions_by: tuple[tuple[str, int], ...] = ()


@dataclass(slots=True)
class WebPage:
    """A parsed preview page. ``before`` is the cursor of the next older page (None: no older page)."""

    channel: WebChannel | None
    posts: list[WebPost] = field(default_factory=list)
    before: int | None = None
    service_messages: int = 0
    skipped: list[str] = field(default_factory=list)   # blocks that could not be read, and why

    @property
    def has_preview(self) -> bool:
        """False for the page Telegram serves for a missing, private or non-channel name."""
        return self.channel is not None or bool(self.posts) or self.service_messages > 0


def parse_count(label: str | None) -> Count | None:
    """Parse a counter label as shown on a preview (``'987'``, ``'1.5K'``, ``'11.4M'``); None if unreadable.

    >>> parse_count("1.5K")
    Count(label='1.5K', value=1500, low=1450, high=1599)
    """
    if label is None:
        return None
    shown = " ".join(label.split())
    m = _COUNT_RE.match(shown)
    if m is None:
        return None
    number, suffix = m.group(1), m.group(2).upper()
    number = number.replace(",", ".") if suffix else number.replace(",", "")
    try:
        face = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        return None
    mult = _MULTIPLIERS[suffix]
    if len(number) > _MAX_DIGITS:                     # more than a BIGINT column holds
        return None
    value = int(face * mult)
    if value + mult > _MAX_ID:
        return None
    if mult == 1:
        return Count(shown, value, value, value)
    decimals = len(number.partition(".")[2])
    step = mult // (10**decimals) if decimals else mult
    low = max(value - step // 2, 1_000)
    high = value + step - 1
    return Count(shown, value, low, high)


# The largest number a page may give (an id, a view count): 18 digits always fit BIGINT.
_MAX_DIGITS = 18
_MAX_ID = 10**_MAX_DIGITS - 1


# Elements nested deeper than this are refused: lexbor's parse time grows with the square of the depth
# (30,000 nested divs: 2.2 s, 60,000: 11.5 s); saved t.me pages nest about 30 deep. Only pages with more
# tags than MAX_DEPTH can be that deep, so only they are measured (one regular-expression pass).
MAX_DEPTH = 1_000
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                   "wbr"})


class PageError(ValueError):
    """A page the parser refuses to read (see :data:`MAX_DEPTH`)."""


def nesting_depth(html: str) -> int:
    """The deepest element nesting of ``html``, counting unclosed elements as open (an upper bound).

    >>> nesting_depth("<div><p>a<br></p><div><i>b</i></div></div>")
    3
    """
    depth = deepest = 0
    for m in _TAG_RE.finditer(html):
        if m.group(1):
            depth = max(depth - 1, 0)
        elif not m.group(3) and m.group(2).lower() not in _VOID:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def parse_page(html: str) -> WebPage:
    """Parse one ``t.me/s/<name>`` page. Unknown elements are ignored; blocks without an id or a date
    are skipped and listed in ``WebPage.skipped``. Raises :class:`PageError` for a page nested deeper
    than :data:`MAX_DEPTH`."""
    if html.count("<") > MAX_DEPTH:
        depth = nesting_depth(html)
        if depth > MAX_DEPTH:
            raise PageError(f"the page nests elements {depth:,} deep (at most {MAX_DEPTH:,} are read; t.me pages "
                            "nest about 30): not a preview page")
    tree = LexborHTMLParser(html)
    page = WebPage(channel=_channel(tree))
    for block in tree.css("div.tgme_widget_message[data-post]"):
        classes = (block.attributes.get("class") or "").split()
        if "service_message" in classes:
            page.service_messages += 1
            continue
        try:
            page.posts.extend(_posts(block))
        except _Skip as skip:
            page.skipped.append(str(skip))
    more = tree.css_first("a.js-messages_more[data-before], a.tme_messages_more[data-before]")
    if more is not None:
        page.before = _int(more.attributes.get("data-before"))
    return page


class _Skip(Exception):
    """A post block that cannot be read (no id, no date)."""


def _channel(tree: LexborHTMLParser) -> WebChannel | None:
    info = tree.css_first(".tgme_channel_info")
    if info is None:
        return None
    title = _clean(_text_of(info.css_first(".tgme_channel_info_header_title")))
    username = _clean(_text_of(info.css_first(".tgme_channel_info_header_username")))
    if username:
        username = username.lstrip("@")
    description_node = info.css_first(".tgme_channel_info_description")
    description = _rich_text(description_node).text.strip() if description_node is not None else None
    subscribers = None
    for counter in info.css(".tgme_channel_info_counter"):
        kind = _clean(_text_of(counter.css_first(".counter_type"))) or ""
        if kind.lower().startswith(("subscriber", "member")):
            subscribers = parse_count(_text_of(counter.css_first(".counter_value")))
    return WebChannel(username=username or None, title=title or None, description=description or None,
                      subscribers=subscribers)


def _posts(block: LexborNode) -> list[WebPost]:
    """The post(s) of one message block: one, or one per album member."""
    data_post = block.attributes.get("data-post") or ""
    username, _, id_text = data_post.rpartition("/")
    message_id = _int(id_text)
    if not username or not message_id:
        raise _Skip(f"message block with an unreadable data-post {data_post!r}")
    date_node = block.css_first("a.tgme_widget_message_date time[datetime]") or block.css_first(
        ".tgme_widget_message_meta time[datetime]")
    posted_at = _datetime(date_node.attributes.get("datetime") if date_node is not None else None)
    if posted_at is None:
        raise _Skip(f"post {data_post} has no readable date")

    in_reply = block.css_first("." + _REPLY) is not None      # only then can a node sit in a quote
    text_node = _own_text_node(block, in_reply)
    rich = _rich_text(text_node) if text_node is not None else _Rich("", (), (), ())
    if not rich.text.strip():                     # a poll's words are its question (as the API path has it)
        question = _clean(_text_of(block.css_first(".tgme_widget_message_poll_question")))
        if question:
            rich = _Rich(question, (), (), ())
    fwd_username, fwd_message_id, fwd_from_name, fwd_author = _forward(block)
    reply_here, reply_username, reply_there = _reply_to(block, username)
    media_type, duration, filename, webpage_url, webpage_title = _media(block, in_reply)
    urls = rich.urls
    first = WebPost(
        username=username,
        message_id=message_id,
        channel_id=_view_channel_id(block.attributes.get("data-view"), message_id),
        posted_at=posted_at,
        edited=_edited(block),
        text=rich.text,
        views=parse_count(_text_of(block.css_first(".tgme_widget_message_views"))),
        post_author=_clean(_text_of(block.css_first(".tgme_widget_message_from_author"))) or None,
        fwd_username=fwd_username,
        fwd_message_id=fwd_message_id,
        fwd_from_name=fwd_from_name,
        fwd_post_author=fwd_author,
        reply_to_message_id=reply_here,
        reply_to_username=reply_username,
        reply_to_peer_message_id=reply_there,
        media_type=media_type,
        media_duration=duration,
        media_filename=filename,
        webpage_url=webpage_url,
        webpage_title=webpage_title,
        hashtags=rich.hashtags,
        urls=urls,
        domains=tuple(url_domains(urls)),
        mentions=rich.mentions,
        album_first_id=None,
        reactions_by=_reactions(block),
    )
    members = _album_members(block)
    if len(members) <= 1:
        return [first]
    first_id = min(mid for mid, _ in members)
    out = []
    for mid, kind in members:
        if mid == message_id:
            out.append(replace(first, album_first_id=first_id, media_type=kind))
        else:
            out.append(replace(first, message_id=mid, album_first_id=first_id, media_type=kind, text="",
                                views=None, hashtags=(), urls=(), domains=(), mentions=(), reactions_by=(),
                                reply_to_message_id=None, reply_to_username=None, reply_to_peer_message_id=None,
                                media_duration=None, media_filename=None,
                                webpage_url=None, webpage_title=None))
    if all(mid != message_id for mid, _ in members):
        out.insert(0, replace(first, album_first_id=first_id))
    return out


def _own_text_node(block: LexborNode, in_reply: bool = True) -> LexborNode | None:
    """The post's own text: ``.js-message_text`` outside the reply quote (which may reuse the class).

    ``in_reply`` False: the block has no reply quote (nothing to check)."""
    for node in block.css(".js-message_text"):
        if in_reply and _inside(node, _REPLY, block):
            continue
        if "js-message_reply_text" in (node.attributes.get("class") or ""):
            continue
        return node
    return None


def _inside(node: LexborNode, class_name: str, stop: LexborNode) -> bool:
    parent = node.parent
    while parent is not None and parent != stop:
        if class_name in (parent.attributes.get("class") or "").split():
            return True
        parent = parent.parent
    return False


@dataclass(frozen=True, slots=True)
class _Rich:
    text: str
    hashtags: tuple[str, ...]
    urls: tuple[str, ...]
    mentions: tuple[str, ...]


def _rich_text(node: LexborNode) -> _Rich:
    """Text of a message body (``<br>`` as a newline) and the entities its links stand for."""
    parts: list[str] = []
    for child in node.traverse(include_text=True):
        tag = child.tag
        if tag == "-text":
            parts.append(child.text_content or "")
        elif tag == "br":
            parts.append("\n")
    hashtags: list[str] = []
    urls: list[str] = []
    mentions: list[str] = []
    for link in node.css("a[href]"):
        _classify_link(link.attributes.get("href") or "", link.text(deep=True), hashtags, urls, mentions)
    return _Rich("".join(parts).strip(), tuple(hashtags), tuple(urls), tuple(mentions))


def _classify_link(href: str, shown: str, hashtags: list[str], urls: list[str], mentions: list[str]) -> None:
    shown = shown.strip()
    if href.startswith("?q="):
        query = unquote(href[3:])
        if query.startswith("#") and shown.startswith("#"):
            hashtags.append(shown[1:])
        return                                         # cashtags, bot commands: not hashtags, not urls
    if href.startswith(("mailto:", "tel:", "tg:")):
        return
    m = _TME_RE.match(href)
    if m and shown.startswith("@") and shown[1:].lower() == m.group(1).lower() and m.group(2) is None:
        mentions.append(shown[1:])
        return
    # A URL written in the text: the API's url entity is the text itself, so keep the text when the
    # link is just it with a scheme; a text link keeps its target.
    bare = href.split("://", 1)[-1].rstrip("/")
    urls.append(shown if shown and shown.rstrip("/") == bare and "://" not in shown else href)


def _forward(block: LexborNode) -> tuple[str | None, int | None, str | None, str | None]:
    node = block.css_first(".tgme_widget_message_forwarded_from_name")
    if node is None:
        return None, None, None, None
    author = _clean(_text_of(block.css_first(".tgme_widget_message_forwarded_from_author"))) or None
    if author:
        author = author.strip("()") or None
    name = _clean(node.text(deep=True)) or None
    href = node.attributes.get("href")
    m = _TME_RE.match(href) if href else None
    if m is None:
        return None, None, name, author              # hidden sender: a name only
    return m.group(1), _int(m.group(2)), None, author


def _reply_to(block: LexborNode, username: str) -> tuple[int | None, str | None, int | None]:
    """``(id in this channel, other channel's username, id there)`` of the post a block replies to.

    The reply quote links ``https://t.me/<username>/<id>``: this channel's username for an ordinary reply,
    another channel's for a cross-chat reply (the API's ``reply_to_peer_id``). No link, or a link to no
    post (a person, a private chat): no reply is known.
    """
    node = block.css_first("a.tgme_widget_message_reply[href]")
    if node is None:
        return None, None, None
    m = _TME_RE.match(node.attributes.get("href") or "")
    if m is None or _int(m.group(2)) is None:
        return None, None, None
    if m.group(1).lower() == username.lower():
        return _int(m.group(2)), None, None
    return None, m.group(1), _int(m.group(2))


def _media(block: LexborNode, in_reply: bool = True) -> tuple[str | None, float | None, str | None, str | None,
                                                            str | None]:
    """(media_type, duration_s, filename, webpage_url, webpage_title) of a block.

    The first kind of ``_MEDIA_SELECTORS`` whose first node in the block is not in a reply quote wins.
    """
    first: dict[int, LexborNode] = {}                 # selector index -> its first node in the block
    for node in block.css(_MEDIA_QUERY):
        classes = (node.attributes.get("class") or "").split()
        for i, name in enumerate(_MEDIA_CLASSES):
            if i not in first and name in classes:
                first[i] = node
    for i in sorted(first):
        node, kind = first[i], _MEDIA_SELECTORS[i][1]
        if in_reply and _inside(node, _REPLY, block):
            continue
        if kind == "webpage":
            title = _clean(_text_of(node.css_first(".link_preview_title"))) or _clean(
                _text_of(node.css_first(".link_preview_site_name")))
            return kind, None, None, node.attributes.get("href"), title or None
        if kind == "document":
            icon = node.css_first(".tgme_widget_message_document_icon")
            if icon is not None and "audio" in (icon.attributes.get("class") or "").split():
                kind = "audio"
            filename = _clean(_text_of(node.css_first(".tgme_widget_message_document_title"))) or None
            return kind, None, filename, None, None
        duration = _duration(_text_of(node.css_first(
            ".message_video_duration, .tgme_widget_message_voice_duration, .tgme_widget_message_roundvideo_duration")))
        return kind, duration, None, None, None
    if block.css_first(".message_media_not_supported") is not None and block.css_first(
            ".js-message_text") is None:
        return "unsupported", None, None, None, None
    return None, None, None, None, None


def _album_members(block: LexborNode) -> list[tuple[int, str]]:
    """(message_id, kind) of each member of an album block, in page order; [] when not an album."""
    wrap = block.css_first(".js-message_grouped_wrap, .tgme_widget_message_grouped_wrap")
    if wrap is None:
        return []
    members: list[tuple[int, str]] = []
    for node in wrap.css("a[href]"):
        m = _TME_RE.match(node.attributes.get("href") or "")
        mid = _int(m.group(2)) if m else None
        if mid is None or any(mid == seen for seen, _ in members):
            continue
        classes = node.attributes.get("class") or ""
        kind = "video" if "video" in classes else "document" if "document" in classes else "photo"
        members.append((mid, kind))
    return members


def _reactions(block: LexborNode) -> tuple[tuple[str, int], ...]:
    """The reactions a post block shows, as ``(reaction, count)`` in the API's words.

    Markup seen on saved pages: ``<span class="tgme_reaction"><i class="emoji"><b>👍</b></i>31</span>``;
    custom emoji as ``<tg-emoji emoji-id="...">``; paid (star) reactions with ``tgme_reaction_paid`` or an
    ``icon-telegram-stars`` icon. A reaction whose count or kind cannot be read is left out.
    """
    box = block.css_first(".tgme_widget_message_reactions")
    if box is None:
        return ()
    out = []
    for span in box.css(".tgme_reaction"):
        count = parse_count(span.text(deep=False))
        if count is None:
            continue
        classes = (span.attributes.get("class") or "").split()
        custom = span.css_first("tg-emoji[emoji-id]")
        emoji = span.css_first("b")
        if "tgme_reaction_paid" in classes or span.css_first(".icon-telegram-stars") is not None:
            name = "paid"
        elif custom is not None:
            name = f"custom:{custom.attributes.get('emoji-id')}"
        elif emoji is not None and emoji.text(deep=True).strip():
            name = emoji.text(deep=True).strip()
        else:
            continue
        out.append((name, count.value))
    return tuple(out)


def _edited(block: LexborNode) -> bool:
    meta = block.css_first(".tgme_widget_message_meta")
    if meta is None:
        return False
    shown = meta.text(deep=True)
    author = block.css_first(".tgme_widget_message_meta .tgme_widget_message_from_author")
    if author is not None:
        shown = shown.replace(author.text(deep=True), " ")
    return _EDITED_RE.search(shown) is not None


def _view_channel_id(token: str | None, message_id: int) -> int | None:
    """The bare channel id from a block's ``data-view`` token (base64 JSON ``{"c": -<id>, "p": <post>}``).

    Undocumented and checked on saved pages only: used when it is consistent, ignored otherwise.
    """
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    c, p = data.get("c"), data.get("p")
    if not isinstance(c, int) or isinstance(c, bool) or c >= 0 or c < -_MAX_ID:
        return None
    if p is not None and str(p).rstrip("g") != str(message_id):
        return None
    return -c


def _text_of(node: LexborNode | None) -> str | None:
    return node.text(deep=True) if node is not None else None


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _int(text: str | None) -> int | None:
    """A non-negative ASCII integer that fits an archive column (BIGINT), else None.

    Pages are hostile data: ``'²'`` is a digit to ``str.isdigit`` but not to ``int``, 4,300+ digits
    are refused by ``int`` and 20 digits overflow the archive's columns.
    """
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS else None


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
        return value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):              # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def _duration(text: str | None) -> float | None:
    m = _DURATION_RE.match(text.strip()) if text else None
    if m is None:
        return None
    hours = int(m.group(1) or 0)
    return float(hours * 3600 + int(m.group(2)) * 60 + int(m.group(3)))
