"""``tgspread verify``'s ``lake`` check: does a collector's part of the lake hold what the archive holds?

For every post-level partition (``posts``, ``post_observations``, ``post_versions``, ``post_comments``) it
recomputes the partition digest of the manifest (:func:`collector._archive.lake.partition_digest_sql`: rows and a sum of
row hashes over the rows as published, pseudonyms included) from the archive and from the collector's files, and
compares both with the manifest. Other tables are compared by row counts per partition.

- an error: a partition differs and the archive has no pending mark for it (the lake drifted: files edited,
  deleted or copied in by hand, or a write that did not mark its partition), or a file no longer matches the
  digest its manifest recorded; or there is no manifest for the collector; or a file of the lake (any
  collector's: each footer is read, and every row of this collector's) or a manifest cannot be read, or its
  columns are not publish's: it is named, with who rewrites it, and the rest is still compared (a partition whose
  file cannot be read is not); or an entry is outside publish's layout (a folder or file publish never makes, a
  symbolic link: ``analysis.lake.lake_files``), which no reader of tgspread reads (other readers of the folder
  may): it is named;
- the files compared are those of publish's layout, listed one by one (never a glob under the lake's path, so a
  path holding ``[ ] * ?`` is compared too; a warning says ``analysis.connect`` refuses it);
- a warning: partitions changed since the last publish (marked, not yet published), and small tables whose
  rows changed since (they carry no marks: the next publish compares their digests).

Example::

    with Archive("archive.duckdb", read_only=True) as archive:
        findings = lake_findings(archive.con, Path("lake"), "main")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from analysis.lake import lake_files, pattern_in_path, read_files_sql, read_manifests, unreadable_files

from .export import PSEUDONYM_KEY
from .lake import _UDF, MANIFEST_VERSION, lake_selects, lake_tables, manifest_path, partition_digest_sql, read_manifest
from .lake_marks import has_marks
from .upsert import pseudonym
from .verify import Finding


def _name(layout: str, part_slot: object, month: object) -> str:
    if layout == "post":
        return f"slot={int(str(part_slot)):02d}/month={month}"
    return f"slot={int(str(part_slot)):02d}"


def _files(lake: Path, table: str, layout: str, collector: str, skip: set[Path]) -> str | None:
    """The read_parquet of the collector's files of ``table`` in publish's layout, but those in ``skip``; None when
    there are none."""
    paths = [p for p in lake_files(lake, [table]).files.get(table, {}).get(collector, []) if p not in skip]
    return read_files_sql(paths, layout) if paths else None


def _fix(path: Path, collector: str) -> str:
    """Who rewrites a damaged lake file or manifest (named ``<collector>.parquet``/``.json``), and how."""
    if path.stem == collector:
        return "run `tgspread publish --full` to rewrite it"
    return f"it belongs to collector {path.stem!r}, which must republish it (`tgspread publish --full` there)"


def _unreadable_file(lake: Path, path: Path, why: str, collector: str) -> Finding:
    table = path.relative_to(lake).parts[0]
    return Finding("lake", "error", table, f"lake file {path} cannot be read ({why}); {_fix(path, collector)}")


def _manifest(lake: Path, collector: str) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The collector's manifest ({} when it cannot be read: the files are compared all the same; None when there
    is none), and the findings about the lake's manifests that cannot be read."""
    manifest = read_manifest(lake, collector)
    _, unreadable = read_manifests(lake) if (lake / "_manifests").is_dir() else ({}, {})
    out = [Finding("lake", "error", "_manifests", f"unreadable manifest {path}: {why}; {_fix(path, collector)}")
           for path, why in unreadable.items()]
    own = manifest_path(lake, collector)
    if manifest is None and own.is_file() and own not in unreadable:   # JSON, but not what this tgspread reads
        out.append(Finding("lake", "error", "_manifests", f"unreadable manifest {own}: manifest_version is not "
                           f"{MANIFEST_VERSION} (another tgspread version wrote it); {_fix(own, collector)}"))
    if manifest is None and not own.is_file():
        return None, [Finding("lake", "error", "_manifests", f"{lake}: no manifest for collector {collector!r}: "
                              "nothing published there yet, or the manifest was removed; run `tgspread publish "
                              "--full`")]
    return manifest if manifest is not None else {}, out


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
    manifest, out = _manifest(lake, collector)
    problem = pattern_in_path(lake)
    if problem is not None:
        out.append(Finding("lake", "warning", "lake", f"{problem}: analysis.connect refuses it; rename the folder, or "
                           "open it through a symbolic link whose path has none"))
    if manifest is None:
        return out
    out += [Finding("lake", "error", path.relative_to(lake).parts[0], f"lake entry {path} is outside publish's "
                    f"layout ({why}); tgspread's readers leave it out, other readers of the folder may not: remove it")
            for path, why in lake_files(lake).odd.items()]
    damaged = unreadable_files(lake)
    out += [_unreadable_file(lake, path, why, collector) for path, why in damaged.items()]
    pending: set[tuple[str, str]] = set()
    if has_marks(con):
        pending = {(str(t), _name("post", s, m)) for t, s, m in con.execute(
            "SELECT table_name, slot, month FROM lake_dirty").fetchall()}
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
            mine = {p for p in damaged if p.stem == collector and p.is_relative_to(lake / table)}
            read = _lake_side(cur, lake, table, layout, collector, mine, out)
            if read is None:
                continue
            lake_side, unread = read
            archive_side = {name: stats for name, stats in _stats(cur, table, layout, f"({selects[table]})").items()
                            if name not in unread}    # a partition whose file cannot be read: named above
            recorded = listed.get(table, {}).get("partitions", {})
            out += _compare(table, layout, archive_side, lake_side, recorded, pending)
    finally:
        cur.remove_function(_UDF)
        cur.close()
    return out


def _lake_side(con: duckdb.DuckDBPyConnection, lake: Path, table: str, layout: str, collector: str,
               skip: set[Path], out: list[Finding]) -> tuple[dict[str, tuple[int, str]], set[str]] | None:
    """The collector's partitions of ``table`` as :func:`_stats` gives them, read from its files but those in
    ``skip``, and the partitions of the files left out. A file whose rows cannot be read (damage behind an intact
    footer) is found by reading each file, named in ``out`` and left out too; None when the files still cannot be
    read (an error in ``out``)."""
    for attempt in (1, 2):
        try:
            stats = _stats(con, table, layout, _files(lake, table, layout, collector, skip))
            return stats, {str(p.parent.relative_to(lake / table)) for p in skip}
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.InterruptException | duckdb.OutOfMemoryException | duckdb.IOException):
                raise
            error = " ".join(str(exc).split())
        found = {} if attempt == 2 else {p: why for p, why in unreadable_files(
            lake, [table], collector=collector, deep=True).items() if p not in skip}
        out += [_unreadable_file(lake, path, why, collector) for path, why in found.items()]
        skip = skip | set(found)
        if not found:
            break
    out.append(Finding("lake", "error", table, f"lake {table}: the files of collector {collector!r} cannot be read "
                       f"({error}); run `tgspread publish --full`"))
    return None


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
