"""Stored results of the heaviest analysis functions: reading them, and knowing when they are current.

``cascades``, ``forward_network`` and ``url_spread`` aggregate every forward or every link of the archive:
on 10 million posts that takes DuckDB 0.6-3.3 s in every query form we measured. Their results change only
when posts change, so the commands that write posts (``tgspread collect`` / ``run`` / ``import`` / ``demo``,
and ``collect --via web``) store each function's default result in the archive afterwards
(:func:`collector.archive.summaries.refresh_summaries`: writing belongs to the collector, this package only reads),
and the functions read it back, filtered, when it is current:

- A stored result records the posts generation it was computed from (:mod:`collector.archive.generation`: every
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

``analysis.summary_status(con)`` says what is stored and whether it is current.
tests/integration/test_analysis_summaries.py checks that a stored result equals the computed one for every
parameter combination it answers.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from .links import url_spread
from .network import forward_network
from .spread import cascades
from .stored import NAMES, stored, summary_status


def _cascades(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return cascades(con, use_summary=False)


def _forward_network(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return forward_network(con, include_self=True, use_summary=False)


def _url_spread(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return url_spread(con, use_summary=False)


#: The stored functions, each computed with the parameters whose result answers the others by filtering.
SUMMARIZED: dict[str, Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]] = {
    "cascades": _cascades,
    "forward_network": _forward_network,
    "url_spread": _url_spread,
}
assert tuple(SUMMARIZED) == NAMES


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
