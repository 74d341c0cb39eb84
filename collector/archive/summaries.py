"""Storing the results of the heaviest analysis functions in the archive, after posts were written.

The functions and what "current" means are :mod:`analysis.summaries` (read-only); this module is the
writing half: it computes each function with the parameters its stored table answers
(``analysis.summaries.SUMMARIZED``) and stores the rows with the posts generation they were computed from.
``tgspread collect`` / ``run`` / ``import`` / ``demo`` call it through
:func:`collector.cli.summaries.store_summaries`; library users who write posts call it themselves.

Example::

    from .archive import Archive
    from .summaries import refresh_summaries

    with Archive("archive.duckdb") as archive:      # read-write
        refresh_summaries(archive)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from analysis.stored import DEFINITION, posts_generation, summary_status, table_name
from analysis.summaries import SUMMARIZED

from .generation import has_counter
from .upsert import transaction


@dataclass(frozen=True)
class SummaryBuild:
    """One stored result written by :func:`refresh_summaries`."""

    name: str
    rows: int
    seconds: float


@contextmanager
def _analysis_settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within the block, the settings ``analysis.connect`` computes with: DuckDB's default memory limit (an
    ``Archive`` caps it at 256 MB for collecting; the aggregations over a large archive need more, and some
    cannot spill) and insertion order kept (the stored table keeps the function's order). Restored after."""
    old = dict(con.execute("SELECT name, value FROM duckdb_settings() "
                           "WHERE name IN ('memory_limit', 'preserve_insertion_order')").fetchall())
    con.execute("RESET memory_limit")
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{old['memory_limit']}'")
        con.execute(f"SET preserve_insertion_order = {old['preserve_insertion_order']}")


def refresh_summaries(target: Any, *, force: bool = False, names: Sequence[str] | None = None) -> list[SummaryBuild]:
    """Compute and store the results that are not current (all of them with ``force``); returns what it wrote.

    ``target``: an open read-write ``collector.archive.archive.Archive``, its connection, or a path (opened
    read-write for the call). Does nothing on an archive without the posts generation counter. The
    generation is read before computing, so posts written meanwhile by another connection leave the
    stored result stale rather than wrong.
    """
    if isinstance(target, str | Path):
        from .archive import Archive

        with Archive(target) as archive:
            return refresh_summaries(archive, force=force, names=names)
    con: duckdb.DuckDBPyConnection = getattr(target, "con", target)
    if not has_counter(con):
        return []
    current = {s.name for s in summary_status(con) if s.current}
    built: list[SummaryBuild] = []
    for name in names or list(SUMMARIZED):
        table = table_name(name)
        if name in current and not force:
            continue
        generation = posts_generation(con)
        started = time.perf_counter()
        with _analysis_settings(con):
            frame = SUMMARIZED[name](con).to_arrow()
            with transaction(target) as tx:      # the table and its state row commit together
                tx.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM frame")
                seconds = time.perf_counter() - started
                tx.execute(
                    "INSERT OR REPLACE INTO analysis_summaries (name, generation, definition, built_at, seconds, "
                    "rows) VALUES (?, ?, ?, ?, ?, ?)",
                    [name, generation, DEFINITION, datetime.now(UTC), seconds, frame.num_rows],
                )
        built.append(SummaryBuild(name=name, rows=frame.num_rows, seconds=seconds))
    return built
