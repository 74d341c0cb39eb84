"""Telegram Desktop export import: both roots, the merge rules, pseudonyms, and every bad input.

Fixtures (tests/fixtures/export) follow result.json field for field; the exporting computer's local time
is UTC+3 there, so a reader of the plain `date` field would be three hours off.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collector._archive.archive import Archive
from collector._parse.json_stream import JsonStream, JsonStreamError
from collector._simulated.desktop_export import write_generated_export
from collector._sources.export_import import SourceError, import_export, message_row
from collector._sources.web import PreviewFetcher, collect_web

FIXTURES = Path(__file__).parents[1] / "fixtures" / "export"
WEB = Path(__file__).parents[1] / "fixtures" / "web"
NOW = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
CHANNEL_ID = 1234567890
TABLES = ("posts", "post_versions", "post_observations", "channels", "channel_observations", "imports",
          "pseudonym_keys", "runs")


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    a = Archive(tmp_path / "archive.duckdb")
    yield a
    a.close()


def rows(archive: Archive, sql: str) -> list[tuple[object, ...]]:
    return archive.con.execute(sql).fetchall()


def snapshot(archive: Archive) -> dict[str, list[tuple[object, ...]]]:
    return {t: sorted(map(repr, archive.con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}


def test_single_channel_export(archive: Archive) -> None:
    report = import_export(archive, FIXTURES / "channel.json", now=NOW)
    (chat,) = report.chats
    assert (report.root, chat.chat_id, chat.outcome, chat.messages, chat.service_messages, chat.new_posts) == (
        "single_chat", CHANNEL_ID, "imported", 13, 2, 11)
    assert rows(archive, "SELECT count(*), min(source), max(source), count(raw) FROM posts") == [
        (11, "export", "export", 0)]
    # date_unixtime, never the local `date`: 09:30 UTC (the file's `date` says 12:30)
    assert rows(archive, "SELECT posted_at, text, hashtags, urls, domains, mentions, reactions, reactions_by "
                         "FROM posts WHERE message_id = 110") == [(
        datetime(2024, 6, 1, 9, 30, tzinfo=UTC),
        "Breaking: report on #Sanctions & #osint by @factcheck_unit\n\nSource: https://www.example.com/report?id=7, "
        "the archived copy 🔑 <b>not bold</b> $BTC",
        ["Sanctions", "osint"], ["https://www.example.com/report?id=7", "https://archive.example.net/x"],
        ["example.com", "archive.example.net"], ["factcheck_unit"], 37,
        [{"reaction": "👍", "count": 31}, {"reaction": "custom:5368324170671202286", "count": 4},
         {"reaction": "paid", "count": 2}])]
    assert rows(archive, "SELECT edited_at, edited, post_author FROM posts WHERE message_id = 111") == [
        (datetime(2024, 6, 1, 10, 40, tzinfo=UTC), True, "Anna K.")]
    assert rows(archive, "SELECT fwd_from_name, fwd_channel_id FROM posts WHERE message_id = 112") == [
        ("Source Channel", None)]
    assert rows(archive, "SELECT reply_to_message_id FROM posts WHERE message_id = 114") == [(110,)]
    assert rows(archive, "SELECT message_id, media_type, media_mime, media_size, media_duration, media_width, "
                         "media_filename FROM posts WHERE media_type IS NOT NULL ORDER BY 1") == [
        (109, "sticker", "image/webp", 23011, None, 512, None),
        (115, "photo", None, 180211, None, 1280, None),
        (118, "video", "video/mp4", 4412010, 62.0, 1280, "footage.mp4"),
        (119, "document", "application/pdf", 2516582, None, None, "report-2024-06.pdf"),
        (122, "voice", "audio/ogg", 80211, 45.0, None, None),
        (123, "poll", None, None, None, None, None)]
    assert rows(archive, "SELECT channel_id, title, source FROM channels") == [(CHANNEL_ID, "OSINT Demo", "export")]
    assert rows(archive, "SELECT root, chats, messages FROM imports") == [("single_chat", 1, 13)]


def test_reimporting_the_same_file_changes_nothing(archive: Archive) -> None:
    import_export(archive, FIXTURES / "channel.json", now=NOW)
    before = snapshot(archive)
    report = import_export(archive, FIXTURES / "channel.json", now=LATER)
    assert report.already_imported
    assert (report.chats[0].new_posts, report.chats[0].versions) == (0, 0)
    assert snapshot(archive) == before


def test_a_later_export_adds_posts_and_keeps_replaced_texts(archive: Archive) -> None:
    import_export(archive, FIXTURES / "channel.json", now=NOW)
    report = import_export(archive, FIXTURES / "channel_later.json", now=LATER)
    assert (report.chats[0].new_posts, report.chats[0].versions) == (1, 1)
    assert rows(archive, "SELECT text, edited_at, observed_at FROM post_versions") == [
        ("Correction: the figure is 12, not 21.", datetime(2024, 6, 1, 10, 40, tzinfo=UTC), LATER)]
    assert rows(archive, "SELECT text, edited_at FROM posts WHERE message_id = 111") == [
        ("Correction: the figure is 12 (confirmed).", datetime(2024, 6, 3, 9, 0, tzinfo=UTC))]


def test_import_over_api_data_fills_gaps_only(archive: Archive) -> None:
    archive.con.execute(
        "INSERT INTO posts (channel_id, message_id, posted_at, text, views, forwards, hashtags, urls, source, "
        "first_seen_at, last_seen_at) VALUES (?, 119, ?, 'Full report attached.', 800, 3, [], [], 'api', ?, ?)",
        [CHANNEL_ID, datetime(2024, 6, 1, 15, 0, tzinfo=UTC), NOW, NOW])
    import_export(archive, FIXTURES / "channel.json", now=LATER)
    assert rows(archive, "SELECT source, views, forwards, media_type, media_filename, last_seen_at, first_seen_at "
                         "FROM posts WHERE message_id = 119") == [
        ("api", 800, 3, "document", "report-2024-06.pdf", NOW, NOW)]
    assert rows(archive, "SELECT count(*) FROM post_versions") == [(0,)]


def _web_then_export(archive: Archive) -> None:
    """The fixture channel's first preview page through the web source, then its export."""
    pages = {"/s/osint_demo": (WEB / "channel_page1.html").read_text(encoding="utf-8")}
    client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text=pages.get(r.url.path, ""))))
    collect_web(archive, ["osint_demo"], now=NOW, max_pages=1,
                fetcher=PreviewFetcher(client, sleep=lambda s: None, min_interval=0))
    import_export(archive, FIXTURES / "channel.json", now=LATER)


def test_export_over_web_rows_keeps_the_views(archive: Archive) -> None:
    _web_then_export(archive)
    assert rows(archive, "SELECT source, views, views_label, edited_at, text FROM posts WHERE message_id = 111") == [
        ("export", 987, "987", datetime(2024, 6, 1, 10, 40, tzinfo=UTC), "Correction: the figure is 12, not 21.")]
    # the web text of 110 and the export's are the same words: no version row
    assert rows(archive, "SELECT count(*) FROM post_versions") == [(0,)]
    # web-only album members stay web rows
    assert rows(archive, "SELECT source FROM posts WHERE message_id = 116") == [("web",)]


def test_full_account_export_imports_public_channels_only(archive: Archive) -> None:
    report = import_export(archive, FIXTURES / "account.json", now=NOW)
    assert report.root == "full_account"
    assert [(c.type, c.outcome) for c in report.chats] == [
        ("personal_chat", "skipped"), ("public_channel", "imported"), ("private_supergroup", "skipped"),
        ("saved_messages", "skipped"), ("public_channel", "imported")]
    assert "--include-non-channels" in (report.chats[2].reason or "")
    assert rows(archive, "SELECT channel_id, count(*) FROM posts GROUP BY 1 ORDER BY 1") == [
        (CHANNEL_ID, 11), (3333333333, 1)]


def test_groups_with_the_flag_get_pseudonymous_authors(archive: Archive) -> None:
    report = import_export(archive, FIXTURES / "account.json", now=NOW, include_non_channels=True, keep_raw=True)
    assert [c.outcome for c in report.chats if c.type == "private_supergroup"] == ["imported"]
    authors = rows(archive, "SELECT message_id, author_pseudonym, post_author FROM posts "
                            "WHERE channel_id = 2222222222 ORDER BY 1")
    assert [a[0] for a in authors] == [5, 6, 7, 8, 9]
    assert authors[0][1] == authors[2][1] != authors[1][1]          # same person, same pseudonym
    assert all(a[1] and len(a[1]) == 16 and a[2] is None for a in authors)
    everything = json.dumps([repr(r) for r in archive.con.execute("SELECT * FROM posts").fetchall()])
    for person in ("user1001", "user1002", "Alice Example", "Bob Example", "Some Person", "user777", "1001",
                   "Erin Forwarded", "user1003", "Frank Hidden"):
        assert person not in everything
    assert rows(archive, "SELECT name, octet_length(key) FROM pseudonym_keys") == [("export_authors", 32)]


@pytest.mark.parametrize(("name", "message"), [
    ("truncated.json", "ends before its JSON does"),
    ("wrong_root.json", "not a Telegram Desktop export"),
    ("private_chat.json", "personal chat"),
    ("old_no_unixtime.json", "no 'date_unixtime'"),
    ("bad_message.json", "has no numeric 'id'"),
])
def test_bad_files_are_refused_and_leave_the_archive_as_it_was(archive: Archive, name: str, message: str) -> None:
    import_export(archive, FIXTURES / "account.json", now=NOW)
    before = snapshot(archive)
    with pytest.raises(SourceError, match=message) as exc:
        import_export(archive, FIXTURES / name, now=LATER)
    assert "Nothing was imported" in str(exc.value)
    assert snapshot(archive) == before


def test_other_bad_paths(archive: Archive, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        import_export(archive, tmp_path / "missing.json")
    html = tmp_path / "messages.html"
    html.write_text("<!DOCTYPE html><html><body>export</body></html>", encoding="utf-8")
    with pytest.raises(SourceError, match="HTML export"):
        import_export(archive, html)
    folder = tmp_path / "ChatExport"
    folder.mkdir()
    shutil.copy(FIXTURES / "channel.json", folder / "result.json")
    assert import_export(archive, folder, now=NOW).new_posts == 11
    with pytest.raises(SourceError, match="nothing to import"):
        only_private = tmp_path / "only_private.json"
        data = json.loads((FIXTURES / "account.json").read_text(encoding="utf-8"))
        data["chats"]["list"] = [c for c in data["chats"]["list"] if c["type"] != "public_channel"]
        data["left_chats"]["list"] = []
        only_private.write_text(json.dumps(data), encoding="utf-8")
        import_export(archive, only_private, now=NOW)


def test_a_large_export_streams_in_batches(archive: Archive, tmp_path: Path) -> None:
    path = write_generated_export(tmp_path / "result.json", 12_000)
    report = import_export(archive, path, now=NOW)
    (chat,) = report.chats
    services = 12_000 // 97
    assert (chat.messages, chat.service_messages, chat.new_posts) == (12_000, services, 12_000 - services)
    assert rows(archive, "SELECT count(*), count(DISTINCT message_id) FROM posts") == [(12_000 - services,) * 2]
    assert rows(archive, "SELECT count(*) FROM posts WHERE edited_at IS NOT NULL") == [
        (sum(1 for i in range(1, 12_001) if i % 11 == 0 and i % 97 != 0),)]


def test_message_row_is_a_pure_function() -> None:
    msg = {"id": 7, "type": "message", "date": "2024-01-01T03:00:00", "date_unixtime": "1704067200",
           "text": "plain", "text_entities": [{"type": "plain", "text": "plain"}]}
    row = message_row(msg, 1, now=NOW)
    assert row is not None
    assert (row["posted_at"], row["text"], row["source"], row["edited"]) == (
        datetime(2024, 1, 1, tzinfo=UTC), "plain", "export", False)
    assert message_row({**msg, "type": "service"}, 1, now=NOW) is None


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_json_stream_reads_values_across_chunk_edges(chunk: int) -> None:
    import io

    text = '{"a": [1, 22, 333, {"b": "x y ]}\\"}"}, true, null, -4.5e2], "c": "é\\u00e9", "d": 1234567}'
    r = JsonStream(io.BytesIO(text.encode()), chunk=chunk)
    r.expect(b"{")
    out = {}
    for key in r.object_keys():
        if key == "a":
            r.expect(b"[")
            out[key] = list(r.items())
        else:
            out[key] = r.value()
    assert out == json.loads(text)
    assert r.peek() == b""
    bad = JsonStream(io.BytesIO(b'{"a": [1, 2'), chunk=chunk)
    bad.expect(b"{")
    with pytest.raises(JsonStreamError) as exc:
        for _ in bad.object_keys():
            bad.expect(b"[")
            list(bad.items())
    assert exc.value.truncated


def _messages(n: int) -> list[dict[str, object]]:
    # nested objects that start with "id" too, and strings that look like a boundary
    return [{"id": i, "text": 'x },{"id": 1} ]' * (i % 3), "nested": [{"id": -i, "k": [{"id": 0}]}],
             "é": "日本" * (i % 5)} for i in range(1, n + 1)]


@pytest.mark.parametrize("indent", [None, 1])
@pytest.mark.parametrize(("chunk", "batch_bytes"), [(7, 5), (64, 300), (4096, 1000), (1 << 20, 1 << 16)])
def test_json_stream_batches_cut_only_between_elements(indent: int | None, chunk: int, batch_bytes: int) -> None:
    import io

    msgs = _messages(300)
    doc = {"name": "x", "messages": msgs, "after": {"messages": [{"id": 1}]}}
    r = JsonStream(io.BytesIO(json.dumps(doc, indent=indent, ensure_ascii=False).encode()), chunk=chunk,
                   batch_bytes=batch_bytes)
    r.expect(b"{")
    got: dict[str, object] = {}
    sizes = []
    for key in r.object_keys():
        if key == "messages":
            r.expect(b"[")
            batches = list(r.batches())
            sizes = [len(b) for b in batches]
            got[key] = [m for b in batches for m in b]
        else:
            got[key] = r.value()
    assert got == doc
    assert r.peek() == b""
    if batch_bytes >= 1000:
        assert max(sizes) > 1                           # the fast path was taken


def test_json_stream_batches_name_the_damaged_place() -> None:
    import io

    good = json.dumps(_messages(200), indent=1).encode()
    damaged = good.replace(b'"id": 150,', b'"id": 150,,', 1)
    r = JsonStream(io.BytesIO(b'{"messages": ' + damaged + b"}"), batch_bytes=2000)
    r.expect(b"{")
    next(r.object_keys())
    r.expect(b"[")
    read = []
    with pytest.raises(JsonStreamError, match="at byte") as exc:
        for batch in r.batches():
            read.extend(m["id"] for m in batch)
    assert not exc.value.truncated
    assert read == list(range(1, 150))                 # everything before the damaged message, in order
    cut = JsonStream(io.BytesIO(b'{"messages": ' + good[: len(good) // 2]), batch_bytes=2000)
    cut.expect(b"{")
    next(cut.object_keys())
    cut.expect(b"[")
    with pytest.raises(JsonStreamError) as exc:
        for _ in cut.batches():
            pass
    assert exc.value.truncated
    not_utf8 = JsonStream(io.BytesIO(b'["ok", "bad \xff"]'))
    not_utf8.expect(b"[")
    with pytest.raises(JsonStreamError) as exc:
        list(not_utf8.batches())
    assert exc.value.not_utf8_at == 12


def test_a_damaged_message_after_many_written_batches_leaves_the_archive_as_it_was(
        archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collector._sources import export_import

    monkeypatch.setattr(export_import, "_BATCH", 500)          # many batches written before the damage
    import_export(archive, FIXTURES / "account.json", now=NOW)
    before = snapshot(archive)
    path = write_generated_export(tmp_path / "result.json", 6_000)
    text = path.read_text(encoding="utf-8")
    damaged = tmp_path / "damaged.json"
    damaged.write_text(text.replace('"date_unixtime": "1700185000"', '"date_unixtime": "soon"', 1), encoding="utf-8")
    with pytest.raises(SourceError, match=r"message #5000 of chat 'Generated Channel': date_unixtime 'soon'"):
        import_export(archive, damaged, now=LATER)
    assert snapshot(archive) == before
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(text.encode()[: len(text) * 9 // 10])
    with pytest.raises(SourceError, match="ends before its JSON does"):
        import_export(archive, truncated, now=LATER)
    assert snapshot(archive) == before
    assert archive.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)


def test_bulk_settings_are_restored(archive: Archive) -> None:
    from collector._archive import upsert as store

    con = archive.con
    settings = "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order')"
    default = con.execute(settings).fetchone()
    with store.bulk_settings(archive, headroom=64 * 2**20):
        limit, order = con.execute(settings).fetchone() or (None, None)
        assert order is False and store.size_bytes(str(limit)) is not None
        assert (store.size_bytes(str(limit)) or 0) < (store.size_bytes(str(default[0])) or 0)  # type: ignore[index]
    assert con.execute(settings).fetchone() == default


def test_message_row_matches_the_imported_rows(archive: Archive, tmp_path: Path) -> None:
    path = write_generated_export(tmp_path / "result.json", 300)
    import_export(archive, path, now=NOW)
    doc = json.loads(path.read_text(encoding="utf-8"))
    cols = [d[0] for d in archive.con.execute("SELECT * FROM posts LIMIT 0").description]
    stored = {r[1]: dict(zip(cols, r, strict=True))
              for r in archive.con.execute("SELECT * FROM posts ORDER BY message_id").fetchall()}
    checked = 0
    for msg in doc["messages"]:
        row = message_row(msg, 1_500_000_001, now=NOW, digest=stored[1]["import_sha256"], keep_raw=False)
        if row is None:
            assert msg["id"] not in stored
            continue
        got = stored[msg["id"]]
        assert {k: got[k] for k in row} == row
        checked += 1
    assert checked == 300 - 3


def test_canonical_urls_stay_aligned_with_urls_across_sources(archive: Archive) -> None:
    """Web and export rows carry canonical URLs like API rows, from the same row as their urls."""
    from analysis._urls import canonical_urls

    _web_then_export(archive)
    found = rows(archive, "SELECT source, urls, canonical_urls FROM posts")
    assert {r[0] for r in found} == {"web", "export"}
    assert any(r[1] for r in found), "the fixtures have links"
    for _source, urls, canonical in found:
        assert canonical == canonical_urls(list(urls or []))


def test_cross_chat_replies_are_kept(tmp_path: Path) -> None:
    """Issue 17, item 6: a reply to a message in another chat (`reply_to_peer_id` beside `reply_to_message_id`)
    lost the reply entirely. Now the other channel and its message are kept, in the archive and in an export;
    a person's or a basic group's chat keeps the message id only (its id is not stored, not even in raw)."""
    import duckdb

    from collector._archive.export import ensure_pseudonym_key, export_archive

    path = tmp_path / "a.duckdb"
    with Archive(path) as archive:
        import_export(archive, FIXTURES / "cross_chat_replies.json", now=NOW, keep_raw=True)
        got = rows(archive, "SELECT message_id, reply_to_message_id, reply_to_peer_id, reply_to_peer_message_id "
                            "FROM posts ORDER BY message_id")
        assert got == [(20, None, None, None), (21, 20, None, None), (22, None, 1006503122, 4411),
                       (23, 20, None, None), (24, None, None, 77), (25, None, None, 78), (26, None, None, None)]
        raws = " ".join(r[0] for r in rows(archive, "SELECT raw FROM posts"))
        assert "user100000009" not in raws and "chat4000001" not in raws and "channel1006503122" in raws
    ensure_pseudonym_key(path, wait=5)
    with Archive(path, read_only=True) as archive:
        export_archive(archive, tmp_path / "out", now=NOW)
    exported = duckdb.sql(
        f"SELECT message_id, reply_to_peer_id, reply_to_peer_message_id FROM read_parquet('{tmp_path}/out/posts/**/"
        "*.parquet') WHERE reply_to_peer_message_id IS NOT NULL ORDER BY message_id").fetchall()
    assert exported == [(22, 1006503122, 4411), (24, None, 77), (25, None, 78)]


def test_message_row_of_a_cross_chat_reply() -> None:
    """The one-message path (``message_row``) gives what the importer's columns give."""
    row = message_row({"id": 5, "type": "message", "date_unixtime": "1717243200", "text": "x",
                       "reply_to_message_id": 9, "reply_to_peer_id": "channel55"}, 1300000001, now=NOW)
    assert row is not None
    assert (row["reply_to_message_id"], row["reply_to_peer_id"], row["reply_to_peer_message_id"]) == (None, 55, 9)
