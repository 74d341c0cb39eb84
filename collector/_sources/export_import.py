"""Importing Telegram Desktop exports (``result.json``) into the archive, streamed, never loaded whole.

Two roots exist: one chat (``{name, type, id, messages}``, from "Export chat history") and a whole account
(``{..., chats: {list: [...]}, left_chats: {list: [...]}}``, from "Export Telegram data"). Public channels
are imported; private channels and supergroups only with ``include_non_channels`` (their authors are then
pseudonymised); personal chats, bot chats, saved messages and basic groups never.

Dates come from ``date_unixtime``/``edited_unixtime`` (UTC). The plain ``date`` field is the exporting
computer's local time without an offset and is never used.

A file is read and checked whole in one transaction: a truncated file, a wrong root or a bad message raises
:class:`SourceError` with a message saying what to do, and the archive stays as it was. Re-importing the
same file changes nothing; importing over API data fills gaps only (see ``upsert.py`` for the rules).

Memory stays bounded by the batch. New posts are appended (DuckDB writes an uncommitted append out under its
memory limit), but the rows a merge changes stay in memory until the commit. So only the first
``_MERGE_IN_TRANSACTION`` merged rows go into that transaction; the rest are spooled to Arrow files beside the
archive and merged after it commits, one batch per transaction (:class:`_Spool`). Interrupted there, every post
is either merged or as it was, and the same import run again finishes the merge: the file is recorded as
imported only at the end.

Example::

    report = import_export(archive, "ChatExport_2024-06-01/result.json")
    for chat in report.chats:
        print(chat.name, chat.outcome, chat.new_posts, chat.reason or "")
"""

from __future__ import annotations

import gc
import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from collector._archive import upsert as store
from collector._parse.export_rows import MessageError, PostColumns
from collector._parse.json_stream import MAX_ELEMENT, MAX_VALUE, JsonStream, JsonStreamError

CHANNEL_TYPES = frozenset({"public_channel"})
# Imported only when asked: their ids are channel ids, so they fit the archive's keys.
GROUP_TYPES = frozenset({"private_channel", "public_supergroup", "private_supergroup"})
_NEVER = {
    "personal_chat": "a personal chat", "bot_chat": "a chat with a bot", "saved_messages": "Saved Messages",
    "private_group": "a basic group (its id is not a channel id)",
}
# Rows per write into posts: enough to amortise each statement, few enough to keep memory low (~15 MB);
# measured under load, 5,000 imported ~25% faster than 10,000 (the writer thread keeps pace better).
_BATCH = 5_000
# Merged rows (ids already archived) the file's own transaction may hold: DuckDB keeps the rows an
# ON CONFLICT DO UPDATE changed in memory until the commit (2-4 KB each: 12,000 changed rows ran out of 24 MB
# of headroom). Past this, merges are spooled and committed one batch at a time after the file is checked.
_MERGE_IN_TRANSACTION = _BATCH
# The archive's key behind the pseudonyms of group authors and of forwards from people.
_KEY_NAME = "export_authors"


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
    report = ImportReport(path=str(file), file_sha256="", root="unknown")
    # Two helper threads, both mostly outside the GIL: one hashes the file while the import reads it,
    # one runs each batch's DuckDB statements while the next batch is parsed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tgspread-sha256") as hasher, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tgspread-write") as writer, \
            _Spool(archive) as spool:
        digest = hasher.submit(_sha256, file)
        try:
            with _few_full_collections(), _system_arrow_pool(), store.bulk_settings(archive) as lift_cap:
                with store.transaction(archive):
                    importer = _Importer(archive, file, report, include_non_channels=include_non_channels, now=now,
                                         keep_raw=keep_raw, digest=digest, writer=writer, spool=spool)
                    try:
                        importer.run()
                    except BaseException:
                        importer.wait(quiet=True)              # the first error is the one to report
                        raise
                    importer.wait()
                    imported = [c for c in report.chats if c.outcome == "imported"]
                    if not imported:
                        found = ", ".join(sorted({str(c.type) for c in report.chats})) or "no chats"
                        raise SourceError(f"{file}: nothing to import: the export holds {found}. tgspread imports "
                                          "public channels (and, with --include-non-channels, private channels and "
                                          "supergroups). Nothing was imported.")
                    report.file_sha256 = digest.result()
                    report.already_imported = store.import_recorded(archive, report.file_sha256)
                    if not spool:
                        importer.finish()
                        _record(archive, report, file, now, len(imported))
                    lift_cap()          # the commit needs blocks for every column of posts: more than the headroom
                # The file is read and checked: the rest of the merge, a batch per transaction, under the
                # lifted cap (each holds one batch's changed rows until its commit).
                if spool:
                    for table, versions, rep in spool.batches():
                        with store.transaction(archive):
                            counts = _write_batch(archive, table, rep.chat_id, versions, now=now, known_new=False)
                        _count(rep, counts)
                    with store.transaction(archive):
                        importer.finish()
                        _record(archive, report, file, now, len(imported))
        except JsonStreamError as exc:
            raise SourceError(_json_problem(file, exc)) from None
    return report


def _record(archive: Any, report: ImportReport, file: Path, now: datetime, chats: int) -> None:
    store.record_import(archive, file_sha256=report.file_sha256, path=str(file), root=report.root,
                        imported_at=now, chats=chats, messages=report.messages)


_Versions = list[tuple[int, str, int | None]]


class _Spool:
    """Merge batches set aside on disk until the file's transaction commits; then read back in order.

    Arrow IPC files (zstd) in a private folder beside the archive (``.<archive>.import-*``, mode 0700),
    removed on exit. A folder left by a killed import of the same archive is removed when the next import
    spools (the archive's write lock means no other import of it is running). Without an archive file (a bare
    connection) the spool goes to the system's temporary folder and nothing else there is touched.
    """

    def __init__(self, archive: Any) -> None:
        path = getattr(archive, "path", None)
        self._sweep = isinstance(path, Path)          # only an archive's own prefix is known to be stale
        self._parent, self._prefix = ((path.parent, f".{path.name}.import-") if isinstance(path, Path)
                                      else (Path(tempfile.gettempdir()), ".tgspread-import-"))
        self._dir: Path | None = None
        self._count = 0
        self._reports: list[ChatReport] = []

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __bool__(self) -> bool:
        return self._count > 0

    def add(self, table: pa.Table, versions: _Versions, rep: ChatReport) -> None:
        """Set aside one batch of ``rep``'s chat with the texts a repeated id replaced within it."""
        if self._dir is None:
            for stale in self._parent.glob(f"{glob.escape(self._prefix)}*") if self._sweep else ():
                shutil.rmtree(stale, ignore_errors=True)
            self._dir = Path(tempfile.mkdtemp(prefix=self._prefix, dir=self._parent))
        feather.write_feather(table, self._dir / f"{self._count:08d}.arrow", compression="zstd")
        if versions:
            ids, texts, edited = zip(*versions, strict=True)
            side = pa.table({"message_id": pa.array(ids, pa.int64()), "text": pa.array(texts, pa.string()),
                             "edited": pa.array(edited, pa.int64())})
            feather.write_feather(side, self._dir / f"{self._count:08d}.versions.arrow", compression="zstd")
        self._reports.append(rep)
        self._count += 1

    def batches(self) -> Iterator[tuple[pa.Table, _Versions, ChatReport]]:
        """The spooled batches in the order they were added, one at a time."""
        assert self._dir is not None
        for n, rep in enumerate(self._reports):
            table = feather.read_table(self._dir / f"{n:08d}.arrow", memory_map=False)
            side = self._dir / f"{n:08d}.versions.arrow"
            versions: _Versions = []
            if side.exists():
                v = feather.read_table(side, memory_map=False).to_pydict()
                versions = list(zip(v["message_id"], v["text"], v["edited"], strict=True))
            yield table, versions, rep


@contextmanager
def _few_full_collections(threshold: int = 10_000) -> Iterator[None]:
    """Postpone the garbage collector's full collections while an import runs; restored on exit.

    A full collection walks every object of the process (a few hundred thousand after importing
    DuckDB and Arrow) and comes every few thousand messages: ~20% of an import's time. The rows an
    import builds hold no reference cycles; the young generations are still collected as usual.
    """
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], max(before[2], threshold))
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _system_arrow_pool() -> Iterator[None]:
    """Arrow allocates from the C library's allocator while an import runs; the previous pool is restored on exit.

    Arrow's default pool (mimalloc) keeps the pages a batch freed for later, per thread, and an import allocates
    on two (the parser's and the writer's): its peak RSS over 500,000 messages was 301-303 MB with it and
    274-279 MB with the system allocator, at the same speed (``make bench``, "export import: peak RSS").
    A buffer is freed by the pool it came from, so switching pools while others hold buffers is safe.
    """
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


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
    if exc.not_utf8_at is not None:
        return (f"{path} is not UTF-8 text (byte {exc.not_utf8_at}); Telegram Desktop writes UTF-8 JSON. "
                "Nothing was imported.")
    if exc.too_large is not None:
        return (f"{path}: {exc}, the most tgspread reads in one piece (a message: {MAX_ELEMENT:,} bytes; no Telegram "
                f"message comes near it; any other value: {MAX_VALUE:,}): the file is damaged or was made by "
                "something other than Telegram Desktop. Nothing was imported.")
    if exc.truncated:
        return (f"{path} ends before its JSON does ({exc}): the export was cut short or the copy is incomplete. "
                "Export or copy it again. Nothing was imported.")
    return f"{path} is not valid JSON ({exc}). Export it again. Nothing was imported."


class _Importer:
    """One pass over the file: walks the root, imports or skips each chat as its messages stream by."""

    def __init__(self, archive: Any, path: Path, report: ImportReport, *, include_non_channels: bool,
                 now: datetime, keep_raw: bool, digest: Future[str], writer: ThreadPoolExecutor,
                 spool: _Spool) -> None:
        self.keep_raw = keep_raw
        self.spool = spool
        self._merged = 0                               # merged rows written in the file's own transaction
        self._pins: list[tuple[int, list[int]]] = []   # marked once every row of the file is in
        self.digest = digest
        self.writer = writer
        self._pending: tuple[Future[store.UpsertCounts], ChatReport] | None = None
        self.archive = archive
        self.path = path
        self.report = report
        self.include_non_channels = include_non_channels
        self.now = now
        self._key: bytes | None = None
        self._new_key: bytes | None = None
        self._top: int | None = None

    def run(self) -> None:
        with self.path.open("rb") as f:
            head = f.read(4)
            f.seek(0)
            if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
                raise SourceError(f"{self.path} is UTF-16 (or other wide) text; Telegram Desktop writes UTF-8 JSON, so "
                                  "another program converted it. Convert it back (iconv -f UTF-16 -t UTF-8 "
                                  "result.json > result-utf8.json) or export again. Nothing was imported.")
            reader = JsonStream(f)
            first = reader.peek()
            if first == b"<":
                raise SourceError(f"{self.path} is an HTML export; tgspread reads the machine-readable one. Export "
                                  "again in Telegram Desktop with Format: 'Machine-readable JSON'. "
                                  "Nothing was imported.")
            if first != b"{":
                raise SourceError(_wrong_root(self.path, None))
            reader.expect(b"{")
            header: dict[str, Any] = {}
            keys: list[str] = []
            for key in reader.object_keys():
                keys.append(key)
                if key in ("name", "type", "id"):
                    header[key] = reader.value()
                elif key == "messages" and reader.peek() == b"[":
                    self.report.root = "single_chat"
                    self._chat(reader, "", header)
                elif key in ("chats", "left_chats") and reader.peek() == b"{":
                    self.report.root = "full_account"
                    self._chat_list(reader, key)
                else:
                    reader.value()
            if reader.peek() != b"":
                raise JsonStreamError(f"unexpected text after the end of the document (byte {reader.offset})")
        if self.report.root == "unknown":
            raise SourceError(_wrong_root(self.path, keys))

    def _chat_list(self, reader: JsonStream, section: str) -> None:
        reader.expect(b"{")
        for key in reader.object_keys():
            if key != "list" or reader.peek() != b"[":
                reader.value()
                continue
            reader.expect(b"[")
            for _ in reader.elements():
                reader.expect(b"{")
                header: dict[str, Any] = {}
                for ckey in reader.object_keys():
                    if ckey in ("name", "type", "id"):
                        header[ckey] = reader.value()
                    elif ckey == "messages" and reader.peek() == b"[":
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
        reader.expect(b"[")
        if reason is not None:
            if not section:
                raise SourceError(f"{self.path}: {reason}. Nothing was imported.")
            rep.outcome, rep.reason = "skipped", reason
            for _ in reader.batches():                     # stream past it (still checked to be JSON)
                pass
            return
        assert rep.chat_id is not None
        self.wait()                                        # the connection is the writer's until then
        store.upsert_channels(self.archive, [{
            "channel_id": rep.chat_id, "title": rep.name, "megagroup": "supergroup" in (rep.type or ""),
            "source": "export", "first_seen_at": self.now, "last_seen_at": self.now,
        }], now=self.now)
        # Every archived post of the chat has an id at or below this (None: it has none), so a batch
        # entirely above it is new and needs no lookup (a first import, or an export newer than the archive).
        self._top = store.max_message_id(self.archive, rep.chat_id)
        key = None
        if self._key is None:
            self._key = store.stored_pseudonym_key(self.archive, _KEY_NAME)
        if rep.type not in CHANNEL_TYPES:
            if self._key is None:
                self._key = store.pseudonym_key(self.archive, _KEY_NAME, now=self.now)
            key = self._key
        elif self._key is None:
            # a channel's forwards from people need the key too: made now, stored once a pseudonym uses it
            self._new_key = self._new_key or os.urandom(32)
        cols = PostColumns(rep.chat_id, key=key, keep_raw=self.keep_raw, forward_key=self._key or self._new_key)
        add = cols.add
        position = 0
        for batch in reader.batches():
            for msg in batch:
                position += 1
                try:
                    if not add(msg):
                        rep.service_messages += 1
                except MessageError as exc:
                    raise SourceError(f"{self.path}: message #{position} of chat {rep.name!r}{exc}") from None
            if len(cols) >= _BATCH:
                self._flush(cols, rep, position)
        rep.messages = position
        if len(cols):
            self._flush(cols, rep, position)
        if cols.pins:
            self._pins.append((rep.chat_id, cols.pins))

    def _flush(self, cols: PostColumns, rep: ChatReport, position: int) -> None:
        try:
            table = cols.table(now=self.now, digest=self.digest.result())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise SourceError(f"{self.path}: a message of chat {rep.name!r} before message #{position + 1} holds "
                              f"a value of an unexpected type ({exc}); the file is damaged. "
                              "Nothing was imported.") from None
        versions = cols.versions
        cols.clear()
        if cols.forward_key_used and self._key is None and self._new_key is not None:
            self.wait()
            self._key = store.pseudonym_key(self.archive, _KEY_NAME, now=self.now, new=self._new_key)
        ids = pc.min_max(table["message_id"])
        low, high = ids["min"].as_py(), ids["max"].as_py()
        known_new = self._top is None or (low is not None and low > self._top)
        if high is not None:
            self._top = high if self._top is None else max(self._top, high)
        if not known_new and (self.spool or self._merged + table.num_rows > _MERGE_IN_TRANSACTION):
            self.spool.add(table, versions, rep)      # merged after the commit, in order
            return
        if not known_new:
            self._merged += table.num_rows
        self.wait()
        self._pending = (self.writer.submit(_write_batch, self.archive, table, rep.chat_id, versions, now=self.now,
                                            known_new=known_new), rep)

    def finish(self) -> None:
        """Mark the pinned posts the file's pin service messages name (once every row of the file is in)."""
        for chat_id, pins in self._pins:
            store.mark_pinned(self.archive, chat_id, pins)

    def wait(self, *, quiet: bool = False) -> None:
        """Wait for the batch being written (raising what it raised, unless ``quiet``) and count what it did."""
        if self._pending is None:
            return
        future, rep = self._pending
        self._pending = None
        if quiet:
            future.exception()
            return
        _count(rep, future.result())


def _count(rep: ChatReport, counts: store.UpsertCounts) -> None:
    """Add what one batch did to its chat's report."""
    rep.new_posts += counts.new
    rep.updated_posts += counts.updated
    rep.versions += counts.versions


def _write_batch(archive: Any, table: pa.Table, chat_id: int | None, versions: _Versions, *,
                 now: datetime, known_new: bool) -> store.UpsertCounts:
    """One batch into posts, then the texts a repeated id replaced within it into post_versions."""
    counts = store.upsert_posts(archive, table, now=now, observe_web=False, known_new=known_new)
    if versions and chat_id is not None:
        counts = counts + store.UpsertCounts(versions=store.add_versions(archive, chat_id, versions, now=now))
    return counts


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


def message_row(msg: Any, chat_id: int, *, now: datetime, digest: str | None = None, key: bytes | None = None,
                where: str = "a message", keep_raw: bool = True) -> dict[str, Any] | None:
    """The archive row (``store.POST_SCHEMA`` names) of one export message; None for service messages.

    ``key`` set: the chat is a group, and its author ids become keyed pseudonyms (names are dropped).
    Raises :class:`SourceError` for a message that cannot be read. The importer builds the same rows
    column by column (``export_rows.PostColumns``); this is that, for one message.
    """
    cols = PostColumns(chat_id, key=key, keep_raw=keep_raw)
    try:
        if not cols.add(msg):
            return None
    except MessageError as exc:
        raise SourceError(f"{where}{exc}") from None
    row: dict[str, Any] = cols.table(now=now, digest=digest).to_pylist()[0]
    return row
