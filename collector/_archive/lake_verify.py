"""``tgspread verify``'s ``lake`` check: does a collector's part of the lake hold what the archive holds?

For every post-level partition (``posts``, ``post_observations``, ``post_versions``, ``post_comments``) it
recomputes the partition digest of the manifest (:func:`collector._archive.lake.partition_digest_sql`: rows and a sum of
row hashes over the rows as published, pseudonyms included) from the archive and from the collector's files, and
compares both with the manifest. Other tables are compared by row counts per partition.

- an error: a partition differs and the archive has no pending mark for it (the lake drifted: files edited,
  deleted or copied in by hand, or a write that did not mark its partition), or a file no longer matches the
  digest its manifest recorded; or there is no manifest for the collector;
- a warning: partitions changed since the last publish (marked, not yet published), and small tables whose
  rows changed since (they carry no marks: the next publish compares their digests).

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        findings = lake_findings(archive.con, Path("lake"), "main")
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .export import PSEUDONYM_KEY
from .lake import _UDF, lake_selects, lake_tables, partition_digest_sql, read_manifest
from .lake_marks import has_marks
from .upsert import pseudonym
from .verify import Finding

_HIVE = {"post": "hive_partitioning = true, hive_types = {'slot': INTEGER, 'month': VARCHAR}",
         "slot": "hive_partitioning = true, hive_types = {'slot': INTEGER}"}


def _name(layout: str, part_slot: object, month: object) -> str:
    if layout == "post":
        return f"slot={int(str(part_slot)):02d}/month={month}"
    return f"slot={int(str(part_slot)):02d}"


def _files(lake: Path, table: str, layout: str, collector: str) -> str | None:
    pattern = {"post": f"slot=*/month=*/{collector}.parquet", "slot": f"slot=*/{collector}.parquet"}[layout]
    if next((lake / table).glob(pattern), None) is None:
        return None
    glob = str(lake / table / pattern).replace("'", "''")
    return f"read_parquet('{glob}', {_HIVE[layout]}, union_by_name = true)"


def _stats(con: duckdb.DuckDBPyConnection, table: str, layout: str, source: str | None) -> dict[str, tuple[int, str]]:
    """Partition -> (rows, digest or '') of ``table`` read from ``source`` (None: no rows)."""
    if source is None:
        return {}
    if layout == "post":
        rows = con.execute(partition_digest_sql(con, table, source)).fetchall()
        return {_name(layout, s, m): (int(str(d).split(":", 1)[0]), str(d)) for s, m, d in rows}
    rows = con.execute(f"SELECT slot, NULL AS month, count(*) FROM {source} GROUP BY slot").fetchall()
    return {_name(layout, s, m): (int(n), "") for s, m, n in rows}


def lake_findings(con: duckdb.DuckDBPyConnection, lake: Path, collector: str) -> list[Finding]:
    """Compare ``collector``'s files in ``lake`` with the archive open on ``con`` (read-only is enough)."""
    manifest = read_manifest(lake, collector)
    if manifest is None:
        return [Finding("lake", "error", "_manifests", f"{lake}: no manifest for collector {collector!r}: nothing "
                        "published there yet, or the manifest was removed; run `tgspread publish --full`")]
    pending: set[tuple[str, str]] = set()
    if has_marks(con):
        pending = {(str(t), _name("post", s, m)) for t, s, m in con.execute(
            "SELECT table_name, slot, month FROM lake_dirty").fetchall()}
    out: list[Finding] = []
    if pending:
        out.append(Finding("lake", "warning", "lake_dirty", f"{len(pending):,} partition(s) changed since the last "
                           "publish and are not in the lake yet; `tgspread publish` writes them"))
    cur = con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    rows = cur.execute("SELECT key FROM pseudonym_keys WHERE name = ?", [PSEUDONYM_KEY]).fetchall()
    key = bytes(rows[0][0]) if rows else b""
    cur.create_function(_UDF, lambda value: pseudonym(key, "name:" + value), [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), side_effects=False)
    try:
        selects = lake_selects(cur)
        listed = manifest.get("tables", {})
        for table, layout in lake_tables(cur).items():
            archive_side = _stats(cur, table, layout, f"({selects[table]})")
            lake_side = _stats(cur, table, layout, _files(lake, table, layout, collector))
            recorded = listed.get(table, {}).get("partitions", {})
            out += _compare(table, layout, archive_side, lake_side, recorded, pending)
    finally:
        cur.remove_function(_UDF)
        cur.close()
    return out


def _compare(table: str, layout: str, archive_side: dict[str, tuple[int, str]], lake_side: dict[str, tuple[int, str]],
             recorded: dict[str, dict[str, object]], pending: set[tuple[str, str]]) -> list[Finding]:
    out = []
    stale = []
    for name in sorted(set(archive_side) | set(lake_side)):
        mine, theirs = archive_side.get(name, (0, "")), lake_side.get(name, (0, ""))
        if layout == "post" and name in lake_side and recorded.get(name, {}).get("digest") not in (None, theirs[1]):
            out.append(Finding("lake", "error", table, f"lake {table} {name}: the file no longer matches the digest "
                               "its manifest recorded (changed outside tgspread); run `tgspread publish --full`"))
        if mine == theirs:
            continue
        where = f"{table}/{name}" if name else table
        what = f"{theirs[0]:,} rows in the lake, {mine[0]:,} in the archive" + (
            " (content differs)" if mine[0] == theirs[0] else "")
        if layout != "post":
            stale.append(where)
        elif (table, name) in pending:
            continue
        else:
            out.append(Finding("lake", "error", table, f"lake {where}: {what}, and no publish is pending for it; "
                               "run `tgspread publish --full`"))
    if stale:
        out.append(Finding("lake", "warning", table, f"lake {table}: {len(stale)} partition(s) changed since the "
                           f"last publish ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}); "
                           "`tgspread publish` writes them"))
    return out
