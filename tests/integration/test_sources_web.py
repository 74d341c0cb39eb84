"""The web preview source: the pure parser, the polite fetcher, and collection into the archive.

No network: pages are the fixture files in tests/fixtures/web, served through httpx.MockTransport.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collector._archive.archive import Archive
from collector._parse.web_page import Count, parse_count, parse_page
from collector._sources.web import FetchError, PreviewFetcher, collect_web, normalize_channel

FIXTURES = Path(__file__).parents[1] / "fixtures" / "web"
NOW = datetime(2024, 6, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
CHANNEL_ID = 1234567890


def page(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    a = Archive(tmp_path / "archive.duckdb")
    yield a
    a.close()


def serve(pages: dict[tuple[str, str | None], str | httpx.Response], log: list[httpx.Request] | None = None
          ) -> httpx.Client:
    """A client answering /s/<name>[?before=N] from ``pages``; anything else is an empty t.me page."""
    def handler(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append(request)
        name = request.url.path.removeprefix("/s/")
        answer = pages.get((name, request.url.params.get("before")))
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, text=answer if answer is not None else page("no_preview.html"))
    return httpx.Client(transport=httpx.MockTransport(handler), base_url="https://t.me")


def fetcher(client: httpx.Client, sleeps: list[float] | None = None, **kw: object) -> PreviewFetcher:
    clock = [0.0]

    def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)
        clock[0] += s

    return PreviewFetcher(client, sleep=sleep, clock=lambda: clock[0], **kw)  # type: ignore[arg-type]


# -- parser -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "expected"), [
    ("987", Count("987", 987, 987, 987)),
    ("1.5K", Count("1.5K", 1500, 1450, 1599)),
    ("1K", Count("1K", 1000, 1000, 1999)),
    ("27.4K", Count("27.4K", 27400, 27350, 27499)),
    ("208K", Count("208K", 208000, 207500, 208999)),
    ("2.04M", Count("2.04M", 2040000, 2035000, 2049999)),
    (" 11.4M ", Count("11.4M", 11400000, 11350000, 11499999)),
    ("1,234", Count("1,234", 1234, 1234, 1234)),
])
def test_counter_labels_keep_the_label_and_bracket_the_count(label: str, expected: Count) -> None:
    got = parse_count(label)
    assert got == expected
    assert got is not None and got.low <= got.value <= got.high


@pytest.mark.parametrize("label", ["", "n/a", "1.2.3K", "K", None])
def test_unreadable_counter_labels_give_none(label: str | None) -> None:
    assert parse_count(label) is None


def test_channel_header() -> None:
    p = parse_page(page("channel_page1.html"))
    assert p.channel is not None
    assert p.channel.title == "OSINT Demo & Friends"
    assert p.channel.username == "osint_demo"
    assert p.channel.description == "Open-source investigations, daily.\nTips: example.org/tips"
    assert p.channel.subscribers == Count("27.4K", 27400, 27350, 27499)
    assert p.before == 110
    assert p.service_messages == 1
    assert p.skipped == []


def test_posts_of_the_newest_page() -> None:
    posts = {p.message_id: p for p in parse_page(page("channel_page1.html")).posts}
    assert sorted(posts) == [110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 122, 123]   # 121: service
    assert {p.channel_id for p in posts.values()} == {CHANNEL_ID}

    first = posts[110]
    assert first.posted_at == datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
    assert first.text == ("Breaking: report on #Sanctions & #osint by @factcheck_unit\n\nSource: "
                          "https://www.example.com/report?id=7, the archived copy 🔑 <b>not bold</b> $BTC")
    assert first.hashtags == ("Sanctions", "osint")                     # the cashtag is not a hashtag
    assert first.urls == ("https://www.example.com/report?id=7", "https://archive.example.net/x")
    assert first.domains == ("example.com", "archive.example.net")
    assert first.mentions == ("factcheck_unit",)
    assert first.views == Count("1.5K", 1500, 1450, 1599)
    assert not first.edited and first.media_type is None

    assert posts[111].edited and posts[111].post_author == "Anna K."
    assert posts[111].views == Count("987", 987, 987, 987)

    fwd = posts[112]
    assert (fwd.fwd_username, fwd.fwd_message_id, fwd.fwd_from_name, fwd.fwd_post_author) == (
        "Source_Channel", 4521, None, "Ivan P.")
    hidden = posts[113]
    assert (hidden.fwd_username, hidden.fwd_message_id, hidden.fwd_from_name) == (None, None, "Hidden Person")

    reply = posts[114]
    assert reply.reply_to_message_id == 110
    assert reply.text == "Update: the report was withdrawn."                # not the quoted text

    assert [posts[i].album_first_id for i in (115, 116, 117)] == [115, 115, 115]
    assert posts[115].text.startswith("Three photos") and posts[115].hashtags == ("geolocation",)
    assert posts[116].text == "" and posts[116].views is None
    assert {posts[i].media_type for i in (115, 116, 117)} == {"photo"}

    assert (posts[118].media_type, posts[118].media_duration) == ("video", 62.0)
    assert (posts[119].media_type, posts[119].media_filename) == ("document", "report-2024-06.pdf")
    assert (posts[120].media_type, posts[120].webpage_url, posts[120].webpage_title) == (
        "webpage", "https://news.example.org/story/1", "How a rumour spread")
    assert (posts[122].media_type, posts[122].media_duration) == ("voice", 45.0)
    assert posts[123].media_type == "poll"


def test_oldest_page_has_no_older_cursor() -> None:
    p = parse_page(page("channel_page2.html"))
    assert p.before is None
    assert [(x.message_id, x.media_type) for x in p.posts] == [(108, None), (109, "sticker")]


def test_a_page_without_preview() -> None:
    p = parse_page(page("no_preview.html"))
    assert not p.has_preview and p.posts == [] and p.channel is None


def test_unknown_markup_keeps_what_it_can_read() -> None:
    p = parse_page(page("unknown_markup.html"))
    assert [x.message_id for x in p.posts] == [201, 204]
    assert p.posts[0].text == "Still readable inline hidden part"
    assert p.posts[0].views == Count("1.2M", 1200000, 1150000, 1299999)
    assert p.posts[1].views is None                  # 'n/a' is not a count
    assert p.posts[1].channel_id is None             # an undecodable data-view token is ignored
    assert any("202" in s and "date" in s for s in p.skipped)
    assert any("abc" in s for s in p.skipped)


@pytest.mark.parametrize(("value", "expected"), [
    ("durov", "durov"), ("@durov", "durov"), ("https://t.me/durov", "durov"), ("t.me/s/Durov/42", "Durov"),
    ("https://telegram.me/durov/", "durov"), ("not a name", None), ("https://example.com/durov", None),
])
def test_channel_inputs(value: str, expected: str | None) -> None:
    assert normalize_channel(value) == expected


# -- fetcher ------------------------------------------------------------------------------------------------------

def test_fetcher_waits_for_retry_after_and_retries_server_errors() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(502), httpx.Response(503),
               httpx.Response(200, text="ok")]
    client = httpx.Client(transport=httpx.MockTransport(lambda r: answers.pop(0)))
    sleeps: list[float] = []
    f = fetcher(client, sleeps, min_interval=0.0, backoff=2.0)
    assert f.fetch("osint_demo") == "ok"
    assert f.requests == 4
    assert sleeps[0] == 7.0                              # Retry-After honoured exactly
    assert 2.0 <= sleeps[1] <= 4.0 and 4.0 <= sleeps[2] <= 8.0     # attempts 2, 3: doubling, with jitter


def test_fetcher_gives_up_on_long_rate_limits_and_persistent_errors() -> None:
    client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(429, headers={"Retry-After": "3600"})))
    with pytest.raises(FetchError) as exc:
        fetcher(client).fetch("osint_demo")
    assert exc.value.rate_limited and exc.value.retry_after == 3600
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    f = fetcher(client, max_attempts=3)
    with pytest.raises(FetchError, match="giving up after 3 attempts"):
        f.fetch("osint_demo")
    assert f.requests == 3


def test_fetcher_retries_network_errors() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, text="ok")

    assert fetcher(httpx.Client(transport=httpx.MockTransport(handler))).fetch("x_channel") == "ok"
    assert len(calls) == 3


def test_fetcher_spaces_requests() -> None:
    sleeps: list[float] = []
    f = fetcher(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text=""))), sleeps,
                min_interval=1.5)
    for _ in range(3):
        f.fetch("osint_demo")
    assert sleeps == [1.5, 1.5]


# -- collection into the archive ----------------------------------------------------------------------------------

def pages_v1() -> dict[tuple[str, str | None], str | httpx.Response]:
    return {("osint_demo", None): page("channel_page1.html"), ("osint_demo", "110"): page("channel_page2.html")}


def rows(archive: Archive, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return archive.con.execute(sql, params or []).fetchall()


def test_collect_reads_every_page_into_the_archive(archive: Archive) -> None:
    log: list[httpx.Request] = []
    report = collect_web(archive, ["https://t.me/osint_demo", "nosuchchannel"],
                         fetcher=fetcher(serve(pages_v1(), log)), now=NOW)
    ok, missing = report.channels
    assert (ok.outcome, ok.channel_id, ok.pages, ok.new_posts) == ("ok", CHANNEL_ID, 2, 15)
    assert missing.outcome == "not_found" and "no public preview" in (missing.error or "")
    assert [str(r.url) for r in log] == ["https://t.me/s/osint_demo", "https://t.me/s/osint_demo?before=110",
                                         "https://t.me/s/nosuchchannel"]
    assert rows(archive, "SELECT count(*), min(source), max(source) FROM posts") == [(15, "web", "web")]
    assert rows(archive, "SELECT views, views_label, views_low, views_high, edited, post_author FROM posts "
                         "WHERE message_id = 111") == [(987, "987", 987, 987, True, "Anna K.")]
    assert rows(archive, "SELECT message_id, grouped_id FROM posts WHERE grouped_id IS NOT NULL ORDER BY 1") == [
        (115, -115), (116, -115), (117, -115)]
    assert rows(archive, "SELECT fwd_channel_id, fwd_message_id, fwd_username FROM posts WHERE message_id = 112"
                ) == [(None, 4521, "Source_Channel")]
    assert rows(archive, "SELECT username, title, participants_count, participants_label, source FROM channels") == [
        ("osint_demo", "OSINT Demo & Friends", 27400, "27.4K", "web")]
    assert rows(archive, "SELECT count(*) FROM channel_observations WHERE source = 'web'") == [(1,)]
    assert rows(archive, "SELECT count(*) FROM post_observations WHERE source = 'web'") == [(13,)]
    assert rows(archive, "SELECT status FROM runs") == [("partial",)]
    assert rows(archive, "SELECT input, outcome, new_posts FROM run_channels ORDER BY input") == [
        ("https://t.me/osint_demo", "ok", 15), ("nosuchchannel", "not_found", 0)]


def test_second_pass_stops_at_archived_posts_and_keeps_edits(archive: Archive) -> None:
    collect_web(archive, ["osint_demo"], fetcher=fetcher(serve(pages_v1())), now=NOW)
    newer = page("channel_page1.html").replace(">1.5K<", ">1.6K<").replace(
        "Correction: the figure is 12, not 21.", "Correction: the figure is 12 (confirmed).")
    log: list[httpx.Request] = []
    report = collect_web(archive, ["osint_demo"], fetcher=fetcher(serve({("osint_demo", None): newer}, log)),
                         now=LATER)
    assert len(log) == 1                              # the newest page reached archived posts: no paging
    assert (report.channels[0].new_posts, report.channels[0].refreshed_posts) == (0, 13)
    assert rows(archive, "SELECT views, views_label, last_seen_at FROM posts WHERE message_id = 110") == [
        (1600, "1.6K", LATER)]
    assert rows(archive, "SELECT text, observed_at FROM post_versions") == [
        ("Correction: the figure is 12, not 21.", LATER)]
    assert rows(archive, "SELECT count(*) FROM post_observations WHERE message_id = 110") == [(2,)]


def test_api_posts_are_not_downgraded(archive: Archive) -> None:
    archive.con.execute(
        "INSERT INTO posts (channel_id, message_id, posted_at, text, views, forwards, source, first_seen_at, "
        "last_seen_at) VALUES (?, 110, ?, 'exact API text', 1523, 40, 'api', ?, ?)",
        [CHANNEL_ID, datetime(2024, 6, 1, 9, 30, tzinfo=UTC), NOW, NOW])
    before = rows(archive, "SELECT * FROM posts WHERE message_id = 110")
    collect_web(archive, ["osint_demo"], fetcher=fetcher(serve(pages_v1())), now=LATER)
    assert rows(archive, "SELECT * FROM posts WHERE message_id = 110") == before
    assert rows(archive, "SELECT count(*) FROM post_observations WHERE message_id = 110") == [(0,)]
    assert rows(archive, "SELECT count(*) FROM post_versions") == [(0,)]


def test_forward_origins_map_to_known_channels(archive: Archive) -> None:
    collect_web(archive, ["osint_demo"], fetcher=fetcher(serve(pages_v1())), now=NOW)
    archive.con.execute("INSERT INTO channels (channel_id, username, title, first_seen_at, last_seen_at) "
                        "VALUES (555, 'source_channel', 'Source Channel', ?, ?)", [NOW, NOW])
    collect_web(archive, ["osint_demo"], fetcher=fetcher(serve(pages_v1())), now=LATER)
    assert rows(archive, "SELECT fwd_channel_id, fwd_message_id FROM posts WHERE message_id = 112") == [(555, 4521)]


def test_channel_id_comes_from_the_archive_when_the_page_hides_it(archive: Archive) -> None:
    stripped = re.sub(r' data-view="[^"]*"', "", page("channel_page1.html"))
    report = collect_web(archive, ["osint_demo"], fetcher=fetcher(serve({("osint_demo", None): stripped})),
                         now=NOW, max_pages=1)
    assert report.channels[0].outcome == "error"
    assert "tgspread collect osint_demo" in (report.channels[0].error or "")
    assert rows(archive, "SELECT count(*) FROM posts") == [(0,)]
    archive.con.execute("INSERT INTO channels (channel_id, username, first_seen_at, last_seen_at) "
                        "VALUES (?, 'osint_demo', ?, ?)", [CHANNEL_ID, NOW, NOW])
    report = collect_web(archive, ["osint_demo"], fetcher=fetcher(serve({("osint_demo", None): stripped})),
                         now=NOW, max_pages=1)
    assert (report.channels[0].outcome, report.channels[0].new_posts) == ("ok", 13)


def test_rate_limited_channel_is_reported_and_the_pass_goes_on(archive: Archive) -> None:
    pages = pages_v1()
    pages[("osint_demo", "110")] = httpx.Response(429, headers={"Retry-After": "86400"})
    report = collect_web(archive, ["osint_demo"], fetcher=fetcher(serve(pages)), now=NOW)
    ch = report.channels[0]
    assert ch.outcome == "flood_wait" and "try again later" in (ch.error or "")
    assert ch.new_posts == 13                          # the first page was written before the limit
    assert rows(archive, "SELECT count(*) FROM posts") == [(13,)]


def test_bad_inputs_are_reported_not_raised(archive: Archive) -> None:
    report = collect_web(archive, ["not a channel!", "12345"], fetcher=fetcher(serve({})), now=NOW)
    assert [c.outcome for c in report.channels] == ["not_found", "not_found"]
    assert report.requests == 0


def test_a_bare_connection_works_too(tmp_path: Path) -> None:
    import duckdb

    from collector._archive import migrations

    con = duckdb.connect(str(tmp_path / "bare.duckdb"))
    for mig in migrations.available():
        con.execute(mig.sql)
    report = collect_web(con, ["osint_demo"], fetcher=fetcher(serve(pages_v1())), now=NOW)
    assert report.channels[0].new_posts == 15
    con.close()
