"""Reading stored analysis results, and knowing whether they are current (see :mod:`analysis.summaries`).

The query modules (``spread``, ``network``, ``links``) ask :func:`stored` first and compute from ``posts`` when
it returns None; :mod:`analysis.summaries` computes what is stored and checks it. This module is below both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from .frames import Params, conform, where_sql

#: The analysis functions whose results the archive can store (``summary_<name>`` tables).
NAMES = ("cascades", "forward_network", "url_spread")

#: Version of the stored results' definitions: bump it in the same commit as any change to what
#: cascades, forward_network or url_spread return, so results stored by older code are not used.
DEFINITION = 1


def posts_generation(con: duckdb.DuckDBPyConnection) -> int | None:
    """The current posts generation; None when the archive has no counter."""
    try:
        rows = con.execute("SELECT generation FROM archive_generation WHERE name = 'posts'").fetchall()
    except duckdb.CatalogException:
        return None
    return int(rows[0][0]) if rows else None


@dataclass(frozen=True)
class SummaryState:
    """What is stored for one function: ``current`` when usable (same posts generation and definition)."""

    name: str
    current: bool
    generation: int
    definition: int
    built_at: datetime
    seconds: float
    rows: int


def table_name(name: str) -> str:
    """The table holding function ``name``'s stored result (``summary_<name>``)."""
    if name not in NAMES:
        raise ValueError(f"no stored result for {name!r}; stored: {', '.join(NAMES)}")
    return f"summary_{name}"


def summary_status(con: duckdb.DuckDBPyConnection) -> list[SummaryState]:
    """The stored results of the archive (empty for archives older than migration 0007)."""
    generation = posts_generation(con)
    if generation is None:
        return []
    rows = con.execute("SELECT name, generation, definition, built_at, seconds, rows FROM analysis_summaries "
                       "ORDER BY name").fetchall()
    return [SummaryState(name=r[0], current=(r[1] == generation and r[2] == DEFINITION), generation=int(r[1]),
                         definition=int(r[2]), built_at=r[3], seconds=float(r[4]), rows=int(r[5])) for r in rows]


def stored(
    con: duckdb.DuckDBPyConnection, name: str, where: Iterable[str | None], params: Params
) -> pl.DataFrame | None:
    """The stored result of function ``name`` filtered by ``where`` (SQL over its columns), in its order.

    None when nothing current is stored: the caller computes from ``posts``.
    """
    table = table_name(name)
    cur = con.cursor()          # its own: a result the caller left unfinished on ``con`` must not block this
    try:
        row = cur.execute(
            "SELECT s.generation = g.generation AND s.definition = $definition FROM analysis_summaries s "
            "JOIN archive_generation g ON g.name = 'posts' WHERE s.name = $name",
            {"name": name, "definition": DEFINITION},
        ).fetchall()
        if not (row and row[0][0]):
            return None
        # a plain scan keeps the stored order (DuckDB preserves insertion order by default)
        df = cur.sql(f"SELECT * FROM {table} {where_sql(where)}", params=dict(params) or None).pl()
    except duckdb.CatalogException:        # an archive older than 0007, or a summary table dropped by hand
        return None
    return conform(df, name)
