"""A simulated world as a small archive file, straight from the world's records (no collection pass).

For tests that need many worlds (the null model over seeds): the rows are what a collection at
``world.now`` would archive of the collected broadcast channels' posts (text, URLs, forward header,
album id, deletion), written with the real schema. Tests of the collector path use ``simworld``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analysis._urls import canonical_urls
from collector._simulated import World
from collector._simulated.generate import collected_channels, utf16_slice

MIGRATION = Path(__file__).resolve().parents[2] / "collector" / "_archive" / "migrations" / "0001_initial.sql"


def world_rows(world: World) -> list[dict[str, Any]]:
    """One row per post of the collected channels visible at ``world.now`` (service messages left out)."""
    rows: list[dict[str, Any]] = []
    now = world.now
    for ch in collected_channels(world):
        for m in ch.messages:
            if m.is_service or m.posted_at > now:
                continue
            v = m.version_at(now)
            urls: list[str] = []
            for e in v.entities:
                if e.kind == "url":
                    urls.append(utf16_slice(v.text, e.offset, e.length))
                elif e.kind == "text_url" and e.url:
                    urls.append(e.url)
            urls = list(dict.fromkeys(urls))
            fwd = m.fwd
            rows.append({
                "channel_id": m.channel_id, "message_id": m.message_id, "posted_at": m.posted_at,
                "text": v.text, "grouped_id": m.grouped_id, "urls": urls, "canonical_urls": canonical_urls(urls),
                "fwd_channel_id": fwd.channel_id if fwd else None, "fwd_message_id": fwd.message_id if fwd else None,
                "fwd_posted_at": fwd.posted_at if fwd else None, "fwd_from_name": fwd.from_name if fwd else None,
                "deleted_at": m.deleted_at if m.deleted_at is not None and m.deleted_at <= now else None,
                "views": m.state_at(now).views,
            })
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A DuckDB file with the real schema (migration 0001) holding exactly ``rows`` in ``posts``."""
    con = duckdb.connect(str(path))
    try:
        con.execute(MIGRATION.read_text())
        cols = sorted({k for r in rows for k in r})
        types = {"urls": pa.list_(pa.string()), "canonical_urls": pa.list_(pa.string())}
        data = pa.table({c: pa.array([r.get(c) for r in rows], type=types.get(c)) for c in cols})
        con.register("_rows", data)
        con.execute(f"INSERT INTO posts ({', '.join(cols)}, first_seen_at, last_seen_at) "
                    f"SELECT {', '.join(cols)}, now(), now() FROM _rows")
        con.unregister("_rows")
    finally:
        con.close()
    return path


def world_archive(world: World, path: Path) -> Path:
    """``world`` as an archive file at ``path`` (see the module docstring)."""
    return write_rows(path, world_rows(world))
