"""Stored results of the heaviest analysis functions: reading them, and knowing when they are current.

``cascades``, ``forward_network`` and ``url_spread`` aggregate every forward or every link of the archive:
on 10 million posts that takes DuckDB 0.6-3.3 s in every query form we measured. Their results change only
when posts change, so the commands that write posts (``tgspread collect`` / ``run`` / ``import`` / ``demo``,
and ``collect --via web``) store each function's default result in the archive afterwards
(:func:`collector.summaries.refresh_summaries`: writing belongs to the collector, this package only reads),
and the functions read it back, filtered, when it is current:

- A stored result records the posts generation it was computed from (:mod:`collector.generation`: every
  write to ``posts`` moves it, in the write's own transaction) and :data:`DEFINITION`, bumped whenever a
  function's definition changes. It is used only while both still match, so no write through tgspread
  can leave it out of date: at worst the function computes from ``posts`` as it always could (older
  archives, library-only collection, ``[analysis] store_results = false``, a failed store). SQL run on
  ``posts`` by hand does not move the generation: ``tgspread verify`` reports a stored result that no longer
  matches (:func:`mismatched`), and ``tgspread summarize --force`` stores it again.
- It is used only for the parameters it can answer exactly: ``cascades`` with ``include_self=True`` (any
  ``channels``/``since``/``until``/``min_forwards``: they select origins), ``forward_network`` without
  ``since``/``until`` (any ``sources``/``targets``/``include_self``: they select pairs), ``url_spread`` with
  its defaults. Rows come back in the function's order (the stored table is in that order).
- ``use_summary=False`` on each function always computes from ``posts``.

``analysis.summary_status(con)`` says what is stored and whether it is current. tests/test_analysis_summaries.py
checks that a stored result equals the computed one for every parameter combination it answers.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from collector.generation import posts_generation

from .frames import Params, conform, where_sql

__all__ = ["DEFINITION", "SUMMARIZED", "SummaryState", "mismatched", "stored", "summary_status", "table_name"]

#: Version of the stored results' definitions: bump it in the same commit as any change to what
#: cascades, forward_network or url_spread return, so results stored by older code are not used.
DEFINITION = 1


def _cascades(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    from .spread import cascades
    return cascades(con, use_summary=False)


def _forward_network(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    from .network import forward_network
    return forward_network(con, include_self=True, use_summary=False)


def _url_spread(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    from .links import url_spread
    return url_spread(con, use_summary=False)


#: The stored functions, each computed with the parameters whose result answers the others by filtering.
SUMMARIZED: dict[str, Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]] = {
    "cascades": _cascades,
    "forward_network": _forward_network,
    "url_spread": _url_spread,
}


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
    if name not in SUMMARIZED:
        raise ValueError(f"no stored result for {name!r}; stored: {', '.join(SUMMARIZED)}")
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


def mismatched(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The functions whose stored result is marked current but differs from computing it now.

    Empty unless ``posts`` was changed by something that does not move the generation (SQL run by hand);
    ``tgspread verify`` reports them. Computes each stored function once: as slow as a store.
    """
    wrong = []
    for state in summary_status(con):
        if state.current and state.name in SUMMARIZED:
            found = stored(con, state.name, [], {})
            if found is None or not found.equals(SUMMARIZED[state.name](con)):
                wrong.append(state.name)
    return wrong
