"""Media download (issue 5, part 4) on the simulated Telegram: bytes, dedup, filters, resume, references.

A small world is collected once (module fixture); each test downloads from a copy of that archive with a
real ``TelegramClient`` whose sender is simulated. The simulated server derives every file's bytes from the
world (``srv_media.expected_bytes``), so a download can be checked byte for byte. The resume test starts
this file as a subprocess (``python -m tests.integration.test_media worker ...``) that SIGKILLs itself when the server
receives its N-th ``upload.GetFile``, then reruns in this process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telethon import TelegramClient, errors
from telethon.tl import functions, types
from typer.testing import CliRunner

from collector import Archive
from collector._config import ConfigError, load_config
from collector._parse.media_files import (
    DEFAULT_KINDS,
    MediaError,
    file_extension,
    layout_path,
    location_from_media,
    location_from_raw,
    parse_size,
)
from collector._parse.normalize import normalize_message
from collector._simulated import Fault, World, generate_world, simulated_client, tl_build
from collector._simulated.model import Media, SimChannel, SimMessage, Version
from collector._simulated.srv_media import MIB, expected_bytes, file_index, reference_status
from collector._simulated.tl_build import file_reference
from collector._telegram.media import MediaReport
from collector._telegram.media import download_media as _download_media
from tests.helpers.simworld import run_pass

ROOT = Path(__file__).resolve().parents[2]
SEED = 5
WORLD = {"channels": 2, "days": 2.0, "posts_per_day": 20.0, "future_days": 1.0}
PART = 16 * 1024          # small parts: several requests per file, so a kill lands inside a file
MAX_SIZE = 220_000


def build_world() -> World:
    """The world of these tests (the same in every process): it has forwards sharing a file and copies
    re-uploading one (new media id, same bytes)."""
    return generate_world(SEED, **WORLD)  # type: ignore[arg-type]


async def _download(world: World, path: Path, root: Path, **options: Any) -> MediaReport:
    client = simulated_client(world, flood_sleep_threshold=options.pop("flood_sleep_threshold", 5))
    options.setdefault("max_size", MAX_SIZE)
    options.setdefault("request_size", PART)
    with Archive(path) as archive:
        return await _download_media(client, archive, root, now=world.now, **options)


def download(world: World, path: Path, root: Path, **options: Any) -> MediaReport:
    return asyncio.run(_download(world, path, root, **options))


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with Archive(path, read_only=True) as archive:
        return [tuple(r) for r in archive.con.execute(sql).fetchall()]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def never_another_data_centre(monkeypatch: pytest.MonkeyPatch) -> None:
    """Borrowing a sender for another data centre would open a network connection: fail loudly instead."""

    async def refuse(self: TelegramClient, dc_id: int) -> None:
        raise AssertionError(f"tried to borrow a sender for data centre {dc_id} (a network connection)")

    monkeypatch.setattr(TelegramClient, "_borrow_exported_sender", refuse)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world collected once, at its clock; tests copy this archive."""
    path = tmp_path_factory.mktemp("media_collected") / "archive.duckdb"
    run_pass(build_world(), path)
    return path


@pytest.fixture
def archive(collected: Path, tmp_path: Path) -> Path:
    path = tmp_path / "archive.duckdb"
    shutil.copy(collected, path)
    return path


@pytest.fixture(scope="module")
def reference(collected: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """An uninterrupted download of everything up to MAX_SIZE: (archive, media root, GetFile requests)."""
    folder = tmp_path_factory.mktemp("media_reference")
    path = folder / "archive.duckdb"
    shutil.copy(collected, path)
    world = build_world()
    report = download(world, path, folder / "media")
    assert report.status == "ok" and not report.failed, report.summary()
    return path, folder / "media", world.requests["upload.GetFile"]


def wanted_posts(world: World, path: Path, kinds: tuple[str, ...] = DEFAULT_KINDS,
                 max_size: int = MAX_SIZE) -> dict[tuple[int, int], Media]:
    """Archived posts whose file the filters select, with the world's media record (the ground truth)."""
    found = {}
    for cid, mid, kind, size in rows(path, "SELECT channel_id, message_id, media_type, media_size FROM posts "
                                           "WHERE media_id IS NOT NULL"):
        msg = world.message(cid, mid)
        assert msg is not None and msg.media is not None
        if kind in kinds and size is not None and size <= max_size:
            found[(cid, mid)] = msg.media
    return found


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts)


# -- pure parts -------------------------------------------------------------------------------------------------
def test_sizes_extensions_and_layout() -> None:
    assert [parse_size(v) for v in ("4096", "500k", "20MB", "1.5GB", "1KiB", "2 MiB", 7)] == [
        4096, 500_000, 20_000_000, 1_500_000_000, 1024, 2 * 1024 * 1024, 7]
    for bad in ("lots", "-5", "5 parsecs", "", True, -1):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert file_extension("audio/ogg", None, "voice") == "ogg"
    assert file_extension(None, None, "photo") == "jpg"
    assert file_extension("application/x-nothing-known", "weird.name.Tar/../x", "document") == "bin"
    assert file_extension("video/mp4", "clip.MOV", "video") == "mov"
    path = layout_path("chan", datetime(2025, 12, 31, 23, 30, tzinfo=UTC), 7, "f" * 64, "pdf")
    assert path.as_posix() == "chan/2025/12/7-ffffffffffff.pdf"
    assert layout_path("../evil", datetime(2025, 1, 1, tzinfo=UTC), 1, "0" * 64, "x").parts[0] == "___evil"


def test_archived_raw_gives_the_same_location_as_the_message() -> None:
    world = build_world()
    ch = world.seed_channels()[0]
    client = simulated_client(world)

    async def fetch() -> list[Any]:
        ids = [m.message_id for m in ch.posts(world.now) if m.media is not None][:30]
        return list(await client.get_messages(types.InputChannel(ch.channel_id, ch.access_hash), ids=ids))

    messages = asyncio.run(fetch())
    kinds: Counter[str] = Counter()
    for msg in messages:
        raw = normalize_message(msg, channel_id=ch.channel_id)
        assert raw is not None
        loc = location_from_media(msg.media)
        assert location_from_raw(raw["raw"]) == loc
        if loc is not None:
            kinds[loc.kind] += 1
            assert loc.dc_id == 2 and loc.size == expected_size(world, loc.media_id)
        else:
            assert raw["media_type"] in ("webpage", "poll")
    assert kinds["photo"] and kinds["document"]


def expected_size(world: World, media_id: int) -> int:
    return len(expected_bytes(world, file_index(world)[media_id].media))


# -- the simulated server ------------------------------------------------------------------------------------
def test_server_applies_telegrams_getfile_rules() -> None:
    world = build_world()
    media = next(f.media for f in file_index(world).values()
                 if f.media.kind == "document" and (f.media.size or 0) > MIB + 8192 and f.first_posted_at <= world.now)
    client = simulated_client(world)
    good = file_reference(media.media_id, world.now)
    access = tl_build.derived_hash(media.media_id, salt=13)

    def get(offset: int, limit: int, *, ref: bytes = good, access_hash: int = access, precise: bool = False) -> bytes:
        loc = types.InputDocumentFileLocation(media.media_id, access_hash, ref, "")
        request = functions.upload.GetFileRequest(loc, offset=offset, limit=limit, precise=precise or None)
        return bytes(asyncio.run(_call(client, request)).bytes)

    whole = expected_bytes(world, media)
    assert len(whole) == media.size
    assert get(0, 65536) == whole[:65536]
    assert get(MIB - 4096, 4096) == whole[MIB - 4096:MIB]
    assert get(MIB - 1024, 1024, precise=True) == whole[MIB - 1024:MIB]
    last = (len(whole) // 4096) * 4096
    assert get(last, 4096) == whole[last:] and get(last + 4096, 4096) == b""      # a short part, then nothing
    with pytest.raises(errors.LimitInvalidError):
        get(0, 5000)                                  # not a multiple of 4096
    with pytest.raises(errors.LimitInvalidError):
        get(0, 3 * 4096)                              # does not divide 1 MiB
    with pytest.raises(errors.OffsetInvalidError):
        get(MIB - 4096, 8192)                         # crosses a 1 MiB boundary
    with pytest.raises(errors.FileIdInvalidError):
        get(0, 4096, access_hash=access + 1)
    with pytest.raises(errors.FileReferenceExpiredError):
        get(0, 4096, ref=file_reference(media.media_id, world.now - timedelta(hours=4)))
    with pytest.raises(errors.FileReferenceInvalidError):
        get(0, 4096, ref=file_reference(media.media_id + 1, world.now))
    with pytest.raises(errors.FileReferenceEmptyError):
        get(0, 4096, ref=b"")
    assert reference_status(file_reference(1, world.now), 1, world.now + timedelta(hours=2)) == "ok"


async def _call(client: TelegramClient, request: Any) -> Any:
    return await client(request)


# -- downloading ---------------------------------------------------------------------------------------------
def test_downloads_are_the_servers_bytes_laid_out_by_channel_and_date(reference: tuple[Path, Path, int]) -> None:
    path, root, _ = reference
    world = build_world()
    wanted = wanted_posts(world, path)
    linked = rows(path, "SELECT m.channel_id, m.message_id, m.sha256, f.path, f.size, m.how FROM post_media m "
                        "JOIN media_files f USING (sha256)")
    assert {(r[0], r[1]) for r in linked} == set(wanted)          # every selected post, nothing else
    names = dict(rows(path, "SELECT channel_id, lower(username) FROM channels"))
    dates = {(r[0], r[1]): r[2] for r in rows(path, "SELECT channel_id, message_id, posted_at FROM posts")}
    for cid, mid, sha, rel, size, _how in linked:
        want = expected_bytes(world, wanted[(cid, mid)])
        assert hashlib.sha256(want).hexdigest() == sha and size == len(want)
        assert sha256_of(root / rel) == sha
    for sha, rel, cid, mid in rows(path, "SELECT sha256, path, channel_id, message_id FROM media_files"):
        posted = dates[(cid, mid)]
        assert re.fullmatch(rf"{names[cid]}/{posted:%Y}/{posted:%m}/{mid}-{sha[:12]}\.\w+", rel), rel
    files = stored_files(root)
    assert len(files) == len({r[2] for r in linked})                # one file per distinct content
    assert not list((root / ".partial").glob("*"))                  # no part file left behind


def test_forwards_and_identical_bytes_are_stored_once(reference: tuple[Path, Path, int]) -> None:
    path, root, requests = reference
    world = build_world()
    wanted = wanted_posts(world, path)
    by_media: dict[int, set[tuple[int, int]]] = {}
    for key, media in wanted.items():
        by_media.setdefault(media.media_id, set()).add(key)
    shared = [keys for keys in by_media.values() if len(keys) > 1]
    assert shared, "the world must have forwards carrying the same file"
    sha = {(r[0], r[1]): r[2] for r in rows(path, "SELECT channel_id, message_id, sha256 FROM post_media")}
    for keys in shared:
        assert len({sha[k] for k in keys}) == 1
    how = Counter(r[0] for r in rows(path, "SELECT how FROM post_media"))
    assert how["same_media"] == sum(len(keys) - 1 for keys in by_media.values())
    # copies: a re-upload (another media id) with the same bytes is linked, not stored twice
    contents = {hashlib.sha256(expected_bytes(world, m)).hexdigest() for m in wanted.values()}
    assert how["same_content"] == len(by_media) - len(contents) > 0
    assert len(stored_files(root)) == len(contents) == how["downloaded"]
    # requests: the parts of each distinct media id once (a file fetched to the end, plus the empty answer
    # after a file whose size is a whole number of parts); none for the posts linked by media id
    per_file = [size // PART + 1 for size in (len(expected_bytes(world, wanted[next(iter(k))])) for k in
                                               by_media.values())]
    assert requests == sum(per_file)


def test_type_and_size_filters(archive: Path, tmp_path: Path) -> None:
    world = build_world()
    root = tmp_path / "media"
    first = download(world, archive, root, kinds=("photo",), max_size=100_000)
    photos = wanted_posts(world, archive, ("photo",), 100_000)
    assert first.candidates == len(photos) > 0
    linked = {(r[0], r[1]): r[2] for r in rows(archive, "SELECT channel_id, message_id, media_type FROM post_media")}
    assert set(linked) == set(photos) and set(linked.values()) == {"photo"}
    assert max(r[0] for r in rows(archive, "SELECT size FROM media_files")) <= 100_000
    # a later run with other filters adds only what they select
    second = download(world, archive, root, kinds=("voice", "audio"))
    audio = wanted_posts(world, archive, ("voice", "audio"))
    assert second.candidates == len(audio) > 0
    assert len(rows(archive, "SELECT 1 FROM post_media")) == len(photos) + len(audio)
    with pytest.raises(MediaError, match="not a file type"):
        download(world, archive, root, kinds=("webpage",))
    with pytest.raises(MediaError, match="not in the archive"):
        download(world, archive, root, channels=["nobody_here"])
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(MediaError, match="cannot create the media folder"):
        download(world, archive, tmp_path / "a_file" / "media")


def test_request_budget_stops_the_run(archive: Path, tmp_path: Path) -> None:
    from collector._scheduling.budget import RequestBudget

    world = build_world()
    budget = RequestBudget(world.now, max_requests=10)
    report = download(world, archive, tmp_path / "media", budget=budget)
    assert report.status == "partial" and report.stopped is not None and "budget" in report.stopped
    assert world.requests["upload.GetFile"] == budget.total == 10
    assert list((tmp_path / "media" / ".partial").glob("*.part"))


def test_a_second_run_downloads_nothing(archive: Path, tmp_path: Path) -> None:
    world = build_world()
    root = tmp_path / "media"
    first = download(world, archive, root, limit=12)
    assert first.candidates == 12 and first.linked == 12
    rest = download(world, archive, root)
    again = download(world, archive, root)
    assert rest.linked == rest.candidates > 0
    assert again.candidates == 0 and again.requests == Counter() and again.linked == 0
    assert world.requests["upload.GetFile"] == first.requests["upload.GetFile"] + rest.requests["upload.GetFile"]


def date_archived_references(path: Path, issued_at: datetime) -> None:
    """Give every archived post the dated file reference Telegram would have sent at ``issued_at``."""
    with Archive(path) as opened:
        changed = 0
        for cid, mid, raw in opened.con.execute("SELECT channel_id, message_id, raw FROM posts "
                                                "WHERE media_id IS NOT NULL").fetchall():
            message = json.loads(raw)
            inner = message["media"].get("photo") or message["media"].get("document")
            if inner and "file_reference" in inner:
                ref = file_reference(int(inner["id"]), issued_at)
                inner["file_reference"] = base64.b64encode(ref).decode()
                opened.con.execute("UPDATE posts SET raw = ? WHERE channel_id = ? AND message_id = ?",
                                   [json.dumps(message), cid, mid])
                changed += 1
    assert changed


def test_expired_archived_references_are_refreshed(archive: Path, tmp_path: Path) -> None:
    """References archived long ago (dated references, as Telegram issues them) expire: one getMessages per
    channel batch brings fresh ones and the downloads complete."""
    world = build_world()
    date_archived_references(archive, world.now - timedelta(days=3))
    report = download(world, archive, tmp_path / "media")
    channels = {k[0] for k in wanted_posts(world, archive)}
    assert report.status == "ok" and report.linked == report.candidates
    assert report.references_refreshed == world.requests["channels.GetMessages"] == len(channels)
    for cid, mid, sha in rows(archive, "SELECT channel_id, message_id, sha256 FROM post_media"):
        media = world.message(cid, mid).media  # type: ignore[union-attr]
        assert hashlib.sha256(expected_bytes(world, media)).hexdigest() == sha  # type: ignore[arg-type]


def test_reference_expiring_mid_download_continues_from_the_same_offset(
        archive: Path, tmp_path: Path, reference: tuple[Path, Path, int]) -> None:
    world = build_world()
    date_archived_references(archive, world.now)         # fresh when the run starts

    class ClockJump(Counter[str]):
        """Three hours pass on the server while the 60th part is on its way: every reference expires."""

        def __setitem__(self, key: str, value: int) -> None:
            super().__setitem__(key, value)
            if key == "upload.GetFile" and value == 60:
                world.advance(timedelta(hours=3))

    world.requests = ClockJump()
    report = download(world, archive, tmp_path / "media")
    assert report.status == "ok" and report.linked == report.candidates
    assert report.resumed == 1                              # the file in flight went on from its part file
    assert report.references_refreshed == world.requests["channels.GetMessages"] >= 1
    # each refresh cost exactly the one refused request: nothing downloaded twice
    assert world.requests["upload.GetFile"] == reference[2] + report.references_refreshed
    assert sorted(rows(archive, "SELECT sha256, size, path FROM media_files")) == sorted(
        rows(reference[0], "SELECT sha256, size, path FROM media_files"))


def _tl_build_dates_references() -> bool:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    ch = SimChannel(1, 5, "C", "", t, [(t, "chan_a")], 1, 0.0)
    msg = SimMessage(1, 1, t, [Version(t, None, "")], media=Media("photo", 9))
    media = tl_build.message_tl(msg, ch, t).media
    assert isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo)
    return reference_status(media.photo.file_reference, 9, t + timedelta(days=1)) == "expired"


@pytest.mark.skipif(not _tl_build_dates_references(), reason="tl_build does not date file references yet")
def test_references_archived_by_collect_expire_and_are_refreshed(archive: Path, tmp_path: Path) -> None:
    world = build_world()
    world.advance(timedelta(days=1))           # what collect archived yesterday has expired by now
    report = download(world, archive, tmp_path / "media")
    assert report.status == "ok" and report.linked == report.candidates > 0
    assert report.references_refreshed >= 1 and world.requests["channels.GetMessages"] >= 1


def test_flood_wait_stops_the_run_and_a_later_run_resumes(archive: Path, tmp_path: Path,
                                                          reference: tuple[Path, Path, int]) -> None:
    world = build_world()
    root = tmp_path / "media"
    world.inject(Fault("FLOOD_WAIT", request="upload.GetFile", seconds=3600, at=40))
    first = download(world, archive, root)
    assert first.status == "partial" and first.flood_until == world.now + timedelta(seconds=3600)
    assert rows(archive, "SELECT request, seconds FROM flood_waits") == [("upload.GetFile", 3600)]
    parts = list((root / ".partial").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size % PART == 0
    sent = world.requests["upload.GetFile"]
    blocked = download(world, archive, root)          # still within the wait: nothing is asked
    assert blocked.status == "partial" and world.requests["upload.GetFile"] == sent
    world.advance(timedelta(hours=2))
    later = download(world, archive, root)
    assert later.status == "ok" and later.resumed == 1
    assert sorted(rows(archive, "SELECT sha256, size FROM media_files")) == sorted(
        rows(reference[0], "SELECT sha256, size FROM media_files"))
    # resumed, not restarted: the two runs asked for each part once (the refused request excepted)
    assert world.requests["upload.GetFile"] == reference[2] + 1


# -- a real kill -------------------------------------------------------------------------------------------------
KILL_AT = 150


def test_sigkill_mid_download_then_rerun_completes_with_one_copy(archive: Path, tmp_path: Path,
                                                                  reference: tuple[Path, Path, int]) -> None:
    root = tmp_path / "media"
    worker = [sys.executable, "-m", "tests.integration.test_media", "worker", str(archive), str(root), str(KILL_AT)]
    proc = subprocess.run(worker, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    parts = list((root / ".partial").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size > 0 and parts[0].stat().st_size % PART == 0
    done_before = len(rows(archive, "SELECT 1 FROM media_files"))
    ref_path, ref_root, ref_requests = reference
    assert 0 < done_before < len(rows(ref_path, "SELECT 1 FROM media_files"))

    world = build_world()
    report = download(world, archive, root)
    assert report.status == "ok" and report.resumed == 1
    rerun = world.requests["upload.GetFile"]
    assert rerun < ref_requests
    assert KILL_AT + rerun == ref_requests + 1          # only the request the kill interrupted is asked twice
    assert sorted(rows(archive, "SELECT sha256, size, path FROM media_files")) == sorted(
        rows(ref_path, "SELECT sha256, size, path FROM media_files"))
    assert sorted(rows(archive, "SELECT channel_id, message_id, sha256 FROM post_media")) == sorted(
        rows(ref_path, "SELECT channel_id, message_id, sha256 FROM post_media"))
    assert [p.relative_to(root) for p in stored_files(root)] == [p.relative_to(ref_root) for p in
                                                                stored_files(ref_root)]
    for file in stored_files(root):
        assert file.read_bytes() == (ref_root / file.relative_to(root)).read_bytes()
    assert not list((root / ".partial").glob("*"))


def _worker(argv: list[str]) -> int:
    """``python -m tests.integration.test_media worker ARCHIVE ROOT N``: download, SIGKILL at the N-th
    upload.GetFile."""
    archive, root, kill_at = Path(argv[0]), Path(argv[1]), int(argv[2])

    class KillAt(Counter[str]):
        def __setitem__(self, key: str, value: int) -> None:
            super().__setitem__(key, value)
            if key == "upload.GetFile" and value == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)       # no cleanup, no flush, no close

    world = build_world()
    world.requests = KillAt()
    download(world, archive, root)
    return 0


# -- command line and config ------------------------------------------------------------------------------------
def test_cli_media_on_the_simulated_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collector._cli.app import app
    from collector._cli.common import Exit
    from collector._telegram.client import SIMULATED_ENV

    for name, value in ((SIMULATED_ENV, "5"), ("TGSPREAD_SIMULATED_CHANNELS", "1"), ("TGSPREAD_SIMULATED_DAYS", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    archive = tmp_path / "a.duckdb"
    assert runner.invoke(app, ["collect", "--archive", str(archive)]).exit_code in (Exit.OK, Exit.PARTIAL)
    before = rows(archive, "SELECT count(*) FROM post_media")

    def fails(*args: str) -> str:
        result = runner.invoke(app, ["media", "--archive", str(archive), *args])
        assert result.exit_code == Exit.USAGE, result.output
        lines = [x for x in result.stderr.splitlines() if x.strip() and not x.startswith("TESTING ONLY")]
        assert len(lines) == 1 and lines[0].startswith("tgspread: error: ")
        return lines[0]

    assert "webpage" in fails("--kinds", "photo,webpage")
    assert "--max-size" in fails("--max-size", "lots")
    assert "not in the archive" in fails("nobody_here")
    assert rows(archive, "SELECT count(*) FROM post_media") == before == [(0,)]

    result = runner.invoke(app, ["media", "--archive", str(archive), "--dir", "files", "--kinds", "photo",
                                 "--max-size", "150k", "--limit", "5"])
    assert result.exit_code == Exit.OK, result.output
    assert "file downloaded and stored" in result.stdout
    linked = rows(archive, "SELECT m.media_type, f.size, f.path FROM post_media m JOIN media_files f USING (sha256)")
    assert len(linked) == 5 and all(kind == "photo" and size <= 150_000 for kind, size, _ in linked)
    assert all((tmp_path / "files" / rel).is_file() for _, _, rel in linked)


def test_media_config_table(tmp_path: Path) -> None:
    conf = tmp_path / "tgspread.toml"
    conf.write_text('[media]\ndownload = true\ndir = "files"\nkinds = ["photo", "Video"]\nmax_size = "20MB"\n')
    media = load_config(conf, env={}, cwd=tmp_path).media
    assert (media.download, media.dir, media.kinds, media.max_size) == (
        True, tmp_path / "files", ("photo", "video"), 20_000_000)
    assert load_config(None, env={}, cwd=tmp_path / "nowhere").media.root(tmp_path / "a.duckdb") == tmp_path / "media"
    for body, words in (('kinds = ["poll"]', "[media] kinds"), ('max_size = "huge"', "[media] max_size"),
                        ("download = 1", "[media] download"), ('colour = "red"', "unknown key 'colour'"),
                        ('kinds = "photo"', "expected a list")):
        conf.write_text(f"[media]\n{body}\n")
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_config(conf, env={}, cwd=tmp_path)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    sys.exit(_worker(sys.argv[2:]))


# -- hostile names (issue 17, item 18) ----------------------------------------------------------------------
def test_a_hostile_username_is_not_stored_and_never_leads_outside_the_media_folder(archive: Path,
                                                                                    tmp_path: Path) -> None:
    """A server that calls a channel ``..``: the archive keeps no such username, and an archive that holds one
    anyway (written before this check, or by hand) still gets every file under ``--dir``."""
    from collector._archive.upsert import upsert_channels
    from collector._parse.media_files import UnsafeMediaPath, under_root

    now = datetime(2024, 1, 1, tzinfo=UTC)
    with Archive(archive) as store:
        store.remember_channel({"channel_id": 77, "access_hash": 1, "username": ".."}, now, alias="a/b")
        with store.transaction() as con:
            upsert_channels(con, [{"channel_id": 78, "username": "../../etc", "source": "web", "first_seen_at": now,
                                   "last_seen_at": now}], now=now)
        stored = store.con.execute("SELECT channel_id, username FROM channels WHERE channel_id IN (77, 78) "
                                   "ORDER BY 1").fetchall()
        aliases = store.con.execute("SELECT count(*) FROM channel_usernames WHERE channel_id = 77").fetchone()
        assert stored == [(77, None), (78, None)] and aliases == (0,)
        cid = store.con.execute("SELECT channel_id FROM posts WHERE media_id IS NOT NULL LIMIT 1").fetchone()[0]
        store.con.execute("UPDATE channels SET username = '..' WHERE channel_id = ?", [cid])   # a hostile copy
    root = tmp_path / "m" / "inner"
    report = download(build_world(), archive, root)
    assert report.stored > 0
    outside = [p for p in (tmp_path / "m").rglob("*") if p.is_file() and root not in p.parents]
    assert outside == []
    assert all(".." not in r[0].split("/") for r in rows(archive, "SELECT path FROM media_files"))
    with pytest.raises(UnsafeMediaPath):
        under_root(root, "../x.jpg")
    with pytest.raises(UnsafeMediaPath):
        under_root(root, "/etc/x.jpg")
