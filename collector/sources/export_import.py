"""Importing Telegram Desktop exports (``result.json``) into the archive, streamed, never loaded whole.

Two roots exist: one chat (``{name, type, id, messages}``, from "Export chat history") and a whole account
(``{..., chats: {list: [...]}, left_chats: {list: [...]}}``, from "Export Telegram data"). Public channels
are imported; private channels and supergroups only with ``include_non_channels`` (their authors are then
pseudonymised); personal chats, bot chats, saved messages and basic groups never.

Dates come from ``date_unixtime``/``edited_unixtime`` (UTC). The plain ``date`` field is the exporting
computer's local time without an offset and is never used.

A file is imported in one transaction: a truncated file, a wrong root or a bad message raises
:class:`SourceError` with a message saying what to do, and the archive stays as it was. Re-importing the
same file changes nothing; importing over API data fills gaps only (see ``store.py`` for the rules).

Example::

    report = import_export(archive, "ChatExport_2024-06-01/result.json")
    for chat in report.chats:
        print(chat.name, chat.outcome, chat.new_posts, chat.reason or "")
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from collector.sources import store
from collector.sources.json_stream import JsonStream, JsonStreamError
from collector.sources.web_parse import domain_of

__all__ = [
    "CHANNEL_TYPES",
    "GROUP_TYPES",
    "ChatReport",
    "ImportReport",
    "SourceError",
    "import_export",
    "message_row",
]

CHANNEL_TYPES = frozenset({"public_channel"})
# Imported only when asked: their ids are channel ids, so they fit the archive's keys.
GROUP_TYPES = frozenset({"private_channel", "public_supergroup", "private_supergroup"})
_NEVER = {
    "personal_chat": "a personal chat", "bot_chat": "a chat with a bot", "saved_messages": "Saved Messages",
    "private_group": "a basic group (its id is not a channel id)",
}
_BATCH = 10_000

# Export media_type -> posts.media_type (the API's vocabulary).
_MEDIA_TYPES = {
    "video_file": "video", "video_message": "video", "animation": "animation", "voice_message": "voice",
    "audio_file": "audio", "sticker": "sticker",
}
# Keys that name people: dropped from the raw JSON kept with each row.
_PERSON_KEYS = ("from", "from_id", "author", "actor", "actor_id", "members", "inviter", "contact_information",
                "contact_vcard", "saved_from", "via_bot")


_HOST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([A-Za-z0-9.-]+)(?:[:/?#]|$)")


class SourceError(Exception):
    """Input a user can fix (wrong file, truncated file, unsupported chat). The message says what to do."""


@dataclass(slots=True)
class ChatReport:
    """One chat of the file: ``outcome`` is ``imported`` or ``skipped`` (``reason`` says why)."""

    chat_id: int | None
    name: str | None
    type: str | None
    outcome: str = "imported"
    reason: str | None = None
    messages: int = 0
    service_messages: int = 0
    new_posts: int = 0
    updated_posts: int = 0
    versions: int = 0


@dataclass(slots=True)
class ImportReport:
    """What ``import_export`` did with one file."""

    path: str
    file_sha256: str
    root: str                                  # 'single_chat' or 'full_account'
    already_imported: bool = False
    chats: list[ChatReport] = field(default_factory=list)

    @property
    def new_posts(self) -> int:
        return sum(c.new_posts for c in self.chats)

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.chats)


def import_export(archive: Any, path: str | Path, *, include_non_channels: bool = False,
                  now: datetime | None = None, keep_raw: bool = False) -> ImportReport:
    """Import a Telegram Desktop ``result.json`` (or the folder holding it) into ``archive``.

    One streamed pass, one transaction. Rows name their file in ``import_sha256`` (see ``imports``): the
    file is their raw payload. ``keep_raw`` also stores each message's JSON in ``posts.raw`` (without the
    fields that name people), at about half the import speed. Raises :class:`SourceError` for input that
    cannot be imported; the archive is then unchanged.
    """
    now = now or datetime.now(UTC)
    file = _locate(Path(path))
    digest = _sha256(file)
    report = ImportReport(path=str(file), file_sha256=digest, root="unknown")
    report.already_imported = store.import_recorded(archive, digest)
    try:
        with store.transaction(archive):
            _Importer(archive, file, report, include_non_channels=include_non_channels, now=now,
                      keep_raw=keep_raw).run()
            imported = [c for c in report.chats if c.outcome == "imported"]
            if not imported:
                found = ", ".join(sorted({str(c.type) for c in report.chats})) or "no chats"
                raise SourceError(f"{file}: nothing to import: the export holds {found}. tgspread imports public "
                                  "channels (and, with --include-non-channels, private channels and supergroups). "
                                  "Nothing was imported.")
            store.record_import(archive, file_sha256=digest, path=str(file), root=report.root, imported_at=now,
                                chats=len(imported), messages=report.messages)
    except JsonStreamError as exc:
        raise SourceError(_json_problem(file, exc)) from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"{file} is not UTF-8 text (byte {exc.start}); Telegram Desktop writes UTF-8 JSON. "
                          "Nothing was imported.") from None
    return report


def _locate(path: Path) -> Path:
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        raise SourceError(f"{path}: no such file. Give the result.json written by Telegram Desktop's "
                          "'Export chat history' or 'Export Telegram data' (JSON format), or its folder.")
    return path


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _json_problem(path: Path, exc: JsonStreamError) -> str:
    if exc.truncated:
        return (f"{path} ends before its JSON does ({exc}): the export was cut short or the copy is incomplete. "
                "Export or copy it again. Nothing was imported.")
    return f"{path} is not valid JSON ({exc}). Export it again. Nothing was imported."


class _Importer:
    """One pass over the file: walks the root, imports or skips each chat as its messages stream by."""

    def __init__(self, archive: Any, path: Path, report: ImportReport, *, include_non_channels: bool,
                 now: datetime, keep_raw: bool) -> None:
        self.keep_raw = keep_raw
        self.archive = archive
        self.path = path
        self.report = report
        self.include_non_channels = include_non_channels
        self.now = now
        self._key: bytes | None = None

    def run(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            reader = JsonStream(f)
            first = reader.peek()
            if first == "<":
                raise SourceError(f"{self.path} is an HTML export; tgspread reads the machine-readable one. Export "
                                  "again in Telegram Desktop with Format: 'Machine-readable JSON'. "
                                  "Nothing was imported.")
            if first != "{":
                raise SourceError(_wrong_root(self.path, None))
            reader.expect("{")
            header: dict[str, Any] = {}
            keys: list[str] = []
            for key in reader.object_keys():
                keys.append(key)
                if key in ("name", "type", "id"):
                    header[key] = reader.value()
                elif key == "messages" and reader.peek() == "[":
                    self.report.root = "single_chat"
                    self._chat(reader, "", header)
                elif key in ("chats", "left_chats") and reader.peek() == "{":
                    self.report.root = "full_account"
                    self._chat_list(reader, key)
                else:
                    reader.value()
            if reader.peek() != "":
                raise JsonStreamError(f"unexpected text after the end of the document (character {reader.offset})")
        if self.report.root == "unknown":
            raise SourceError(_wrong_root(self.path, keys))

    def _chat_list(self, reader: JsonStream, section: str) -> None:
        reader.expect("{")
        for key in reader.object_keys():
            if key != "list" or reader.peek() != "[":
                reader.value()
                continue
            reader.expect("[")
            for _ in reader.elements():
                reader.expect("{")
                header: dict[str, Any] = {}
                for ckey in reader.object_keys():
                    if ckey in ("name", "type", "id"):
                        header[ckey] = reader.value()
                    elif ckey == "messages" and reader.peek() == "[":
                        self._chat(reader, section, header)
                    else:
                        reader.value()

    def _chat(self, reader: JsonStream, section: str, header: dict[str, Any]) -> None:
        chat_id, name, kind = header.get("id"), header.get("name"), header.get("type")
        rep = ChatReport(chat_id=chat_id if isinstance(chat_id, int) else None,
                         name=name if isinstance(name, str) else None, type=kind if isinstance(kind, str) else None)
        self.report.chats.append(rep)
        reason: str | None
        if "type" not in header or "id" not in header:
            reason = ("this chat lists its messages before its 'type' and 'id', which Telegram Desktop never does; "
                      "export it again")
        else:
            reason = _refusal(rep, self.include_non_channels)
        reader.expect("[")
        if reason is not None:
            if not section:
                raise SourceError(f"{self.path}: {reason}. Nothing was imported.")
            rep.outcome, rep.reason = "skipped", reason
            for _ in reader.items():                       # stream past it, one message at a time
                pass
            return
        assert rep.chat_id is not None
        store.upsert_channels(self.archive, [{
            "channel_id": rep.chat_id, "title": rep.name, "megagroup": "supergroup" in (rep.type or ""),
            "source": "export", "first_seen_at": self.now, "last_seen_at": self.now,
        }], now=self.now)
        key = None
        if rep.type not in CHANNEL_TYPES:
            if self._key is None:
                self._key = store.pseudonym_key(self.archive, "export_authors", now=self.now)
            key = self._key
        rows = _Rows(self.now, self.report.file_sha256)
        for position, msg in enumerate(reader.items(), 1):
            rep.messages += 1
            where = f"{self.path}: message #{position} of chat {rep.name!r}"
            row = message_row(msg, rep.chat_id, now=self.now, digest=self.report.file_sha256, key=key, where=where,
                              keep_raw=self.keep_raw)
            if row is None:
                rep.service_messages += 1
                continue
            rows.add(row)
            if len(rows) >= _BATCH:
                self._flush(rows, rep)
        if len(rows):
            self._flush(rows, rep)

    def _flush(self, rows: _Rows, rep: ChatReport) -> None:
        counts = store.upsert_posts(self.archive, rows.table(), now=self.now, observe_web=False)
        rows.clear()
        rep.new_posts += counts.new
        rep.updated_posts += counts.updated
        rep.versions += counts.versions


class _Rows:
    """A batch of post rows kept column by column, turned into one Arrow table (faster than row dicts)."""

    def __init__(self, now: datetime, digest: str) -> None:
        self._now = now
        self._digest = digest
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    def clear(self) -> None:
        self._rows = []

    def table(self) -> pa.Table:
        # One statement may not touch a key twice: the last row of an id wins (exports never repeat one).
        rows = list({(r["channel_id"], r["message_id"]): r for r in self._rows}.values())
        n = len(rows)
        present: set[str] = set()
        for r in rows:
            present.update(r)
        columns = []
        for f in store.POST_SCHEMA:
            if f.name in ("first_seen_at", "last_seen_at"):
                columns.append(pa.array([self._now] * n, type=f.type))
            elif f.name == "import_sha256":
                columns.append(pa.array([self._digest] * n, type=f.type))
            elif f.name not in present:
                columns.append(pa.nulls(n, type=f.type))
            else:
                name = f.name
                columns.append(pa.array([r.get(name) for r in rows], type=f.type))
        return pa.table(columns, schema=store.POST_SCHEMA)


def _wrong_root(path: Path, keys: list[str] | None) -> str:
    found = "not an object" if keys is None else ("keys: " + ", ".join(keys[:8]) if keys else "an empty object")
    return (f"{path} is JSON but not a Telegram Desktop export: expected an object with 'messages' (one chat) or "
            f"'chats' (a whole account), found {found}. Nothing was imported.")


def _refusal(chat: ChatReport, include_non_channels: bool) -> str | None:
    if chat.type in _NEVER:
        return f"this is an export of {_NEVER[chat.type]}; tgspread archives channels and never imports it"
    if chat.chat_id is None or isinstance(chat.chat_id, bool) or chat.chat_id <= 0:
        return f"chat {chat.name!r} has no usable numeric 'id'; export it again"
    if chat.type in CHANNEL_TYPES:
        return None
    if chat.type in GROUP_TYPES:
        if include_non_channels:
            return None
        return (f"chat {chat.name!r} is a {chat.type}; such chats hold people's messages and are imported only with "
                "--include-non-channels (authors are then pseudonymised)")
    return f"chat {chat.name!r} has an unknown type {chat.type!r}; not imported"


def _ts(value: Any, what: str, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError):
        raise SourceError(f"{where}: {what} {value!r} is not a Unix time; the file is damaged. "
                          "Nothing was imported.") from None


def message_row(msg: Any, chat_id: int, *, now: datetime, digest: str | None = None, key: bytes | None = None,
                where: str = "a message", keep_raw: bool = True) -> dict[str, Any] | None:
    """The archive row (``store.POST_SCHEMA`` names) of one export message; None for service messages.

    ``key`` set: the chat is a group, and its author ids become keyed pseudonyms (names are dropped).
    Raises :class:`SourceError` for a message that cannot be read.
    """
    if not isinstance(msg, dict) or not isinstance(msg.get("id"), int):
        raise SourceError(f"{where} has no numeric 'id'; the file is damaged or not a Telegram Desktop export. "
                          "Nothing was imported.")
    if msg.get("type", "message") != "message":
        return None
    if "date_unixtime" not in msg:
        raise SourceError(f"{where} has no 'date_unixtime': this export comes from an old Telegram Desktop whose "
                          "dates are the exporting computer's local time without an offset. Export again with a "
                          "current Telegram Desktop. Nothing was imported.")
    posted_at = _ts(msg["date_unixtime"], "date_unixtime", where)
    edited_at = _ts(msg.get("edited_unixtime"), "edited_unixtime", where)
    text, hashtags, urls, mentions = _text(msg)
    reactions_by, reactions = _reactions(msg.get("reactions"))
    row: dict[str, Any] = {
        "channel_id": chat_id,
        "message_id": msg["id"],
        "posted_at": posted_at,
        "edited_at": edited_at,
        "edited": edited_at is not None,
        "text": text,
        "hashtags": hashtags,
        "urls": urls,
        "domains": _domains(urls),
        "mentions": mentions,
        "reactions": reactions,
        "reactions_by": reactions_by,
        "fwd_from_name": msg.get("forwarded_from"),
        "reply_to_message_id": msg.get("reply_to_message_id") if "reply_to_peer_id" not in msg else None,
        "source": "export",
        "raw": _raw(msg, person_level=key is not None) if keep_raw else None,
        "import_sha256": digest,
        "first_seen_at": now,
        "last_seen_at": now,
    }
    from_id = msg.get("from_id")
    if key is not None:
        if isinstance(from_id, str) and from_id and not from_id.startswith("channel"):
            row["author_pseudonym"] = store.pseudonym(key, from_id)
    else:
        row["post_author"] = msg.get("author")
        if isinstance(from_id, str) and from_id.startswith("user"):
            row["author_pseudonym"] = None                 # never a person's id in a channel row
    _media(msg, row)
    return row


def _text(msg: dict[str, Any]) -> tuple[str, list[str], list[str], list[str]]:
    """The plain text and the hashtags, urls and mentions of its entities."""
    entities = msg.get("text_entities")
    raw_text = msg.get("text", "")
    if not isinstance(entities, list):
        entities = [p if isinstance(p, dict) else {"type": "plain", "text": p}
                    for p in (raw_text if isinstance(raw_text, list) else [raw_text])]
    hashtags: list[str] = []
    urls: list[str] = []
    mentions: list[str] = []
    parts: list[str] = []
    for ent in entities:
        if not isinstance(ent, dict):
            continue
        t = ent.get("text", "")
        if not isinstance(t, str):
            t = str(t)
        parts.append(t)
        kind = ent.get("type")
        if kind == "plain":
            continue
        if kind == "hashtag":
            hashtags.append(t[1:] if t.startswith("#") else t)
        elif kind == "link":
            urls.append(t)
        elif kind == "text_link":
            href = ent.get("href")
            if isinstance(href, str) and href:
                urls.append(href)
        elif kind == "mention":
            mentions.append(t[1:] if t.startswith("@") else t)
    text = "".join(parts) if entities else (raw_text if isinstance(raw_text, str) else "")
    return text, hashtags, urls, mentions


def _domains(urls: list[str]) -> list[str]:
    out: list[str] = []
    for url in urls:
        m = _HOST_RE.match(url)
        host = m.group(1).lower() if m else domain_of(url)
        if host and host.startswith("www."):
            host = host[4:]
        if host and host not in out:
            out.append(host)
    return out


def _reactions(value: Any) -> tuple[list[dict[str, Any]] | None, int | None]:
    if not isinstance(value, list):
        return None, None
    out = []
    for r in value:
        if not isinstance(r, dict) or not isinstance(r.get("count"), int):
            continue
        kind = r.get("type")
        if kind == "emoji":
            name = r.get("emoji")
        elif kind == "custom_emoji":
            name = f"custom:{r.get('document_id')}"
        elif kind == "paid":
            name = "paid"
        else:
            name = str(kind)
        out.append({"reaction": name, "count": r["count"]})
    return out, sum(r["count"] for r in out)


def _media(msg: dict[str, Any], row: dict[str, Any]) -> None:
    if "photo" in msg:
        kind = "photo"
        row["media_size"] = msg.get("photo_file_size", msg.get("file_size"))
    elif "media_type" in msg:
        kind = _MEDIA_TYPES.get(msg["media_type"], str(msg["media_type"]))
    elif "file" in msg:
        kind = "document"
    elif "poll" in msg:
        kind = "poll"
    elif "location_information" in msg or "place_name" in msg:
        kind = "geo"
    elif "contact_information" in msg:
        kind = "contact"
    elif "game_title" in msg:
        kind = "game"
    elif "invoice_information" in msg:
        kind = "invoice"
    else:
        return
    row["media_type"] = kind
    if kind != "photo":
        row["media_size"] = msg.get("file_size")
    row["media_mime"] = msg.get("mime_type")
    duration = msg.get("duration_seconds")
    row["media_duration"] = float(duration) if isinstance(duration, int | float) else None
    row["media_width"] = msg.get("width") if isinstance(msg.get("width"), int) else None
    row["media_height"] = msg.get("height") if isinstance(msg.get("height"), int) else None
    row["media_filename"] = msg.get("file_name")
    if not isinstance(row.get("media_size"), int):
        row["media_size"] = None


def _raw(msg: dict[str, Any], *, person_level: bool) -> str:
    """The message as JSON, without what names people: reactors always; senders in groups."""
    clean = msg
    reactions = msg.get("reactions")
    if isinstance(reactions, list) and any(isinstance(r, dict) and "recent" in r for r in reactions):
        clean = dict(msg)
        clean["reactions"] = [{k: v for k, v in r.items() if k != "recent"} if isinstance(r, dict) else r
                              for r in reactions]
    if person_level or "contact_information" in msg:
        clean = {k: v for k, v in clean.items() if k not in _PERSON_KEYS}
        for name in ("text", "text_entities"):
            parts = clean.get(name)
            if isinstance(parts, list):
                clean[name] = [{k: v for k, v in e.items() if k != "user_id"} if isinstance(e, dict) else e
                               for e in parts]
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
