"""Shared pieces of the analysis functions: output schemas, filters, and the DuckDB -> Polars handoff.

Every analysis function returns a ``polars.DataFrame`` whose columns and dtypes are fixed by a schema
in this module (:data:`SCHEMAS`), also when it has no rows. Results travel from DuckDB to Polars
through Arrow without copies (``relation.pl()``); only the columns a function needs are read.

Shared SQL:

- :data:`FORWARDS_SQL` - the archived forwards whose origin is named (hidden senders excluded), with
  the columns the spread functions use.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

#: The dtype of every timestamp in the analysis frames: microseconds, UTC-aware.
UTC_TS = pl.Datetime("us", "UTC")

Params = dict[str, Any]


def warn_use_summary(use_summary: bool | None, function: str) -> None:
    """Warn (DeprecationWarning) when a caller still passes ``use_summary=`` to ``function``: stored results
    were removed by migration 0009 and the argument is ignored; it goes in the next release.

    >>> warn_use_summary(None, "cascades")     # not passed: silent
    """
    if use_summary is not None:
        warnings.warn(f"analysis.{function}(use_summary=...) is deprecated and ignored: results are no longer "
                      "stored, they are always computed from the posts; drop the argument", DeprecationWarning,
                      stacklevel=3)

#: Output schemas by function name. Columns appear in this order with these dtypes.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "cascades": {
        "origin_channel_id": pl.Int64(),
        "origin_message_id": pl.Int64(),
        "origin_posted_at": UTC_TS,
        "forwards": pl.Int64(),
        "channels": pl.Int64(),
        "first_forward_at": UTC_TS,
        "first_lag_s": pl.Float64(),
        "median_lag_s": pl.Float64(),
        "origin_views": pl.Int64(),
        "forward_views": pl.Int64(),
        "reach": pl.Int64(),
        "origin_archived": pl.Boolean(),
        "origin_deleted": pl.Boolean(),
        "origin_forwards": pl.Int64(),
    },
    "posting_frequency": {
        "channel_id": pl.Int64(),
        "period": UTC_TS,
        "posts": pl.Int64(),
    },
    "forward_network": {
        "source_channel_id": pl.Int64(),
        "target_channel_id": pl.Int64(),
        "forwards": pl.Int64(),
        "messages": pl.Int64(),
        "first_at": UTC_TS,
        "last_at": UTC_TS,
        "views": pl.Int64(),
    },
    "sources": {
        "channel_id": pl.Int64(),
        "archived": pl.Boolean(),
        "forwards": pl.Int64(),
        "forwarded_posts": pl.Int64(),
        "forwarding_channels": pl.Int64(),
        "forward_views": pl.Int64(),
        "rank": pl.Int64(),
    },
    "amplifiers": {
        "channel_id": pl.Int64(),
        "forwards": pl.Int64(),
        "source_channels": pl.Int64(),
        "reach_added": pl.Int64(),
        "median_lag_s": pl.Float64(),
        "rank": pl.Int64(),
    },
    "coverage": {
        "channel_id": pl.Int64(),
        "message_id": pl.Int64(),
        "posted_at": UTC_TS,
        "forwards_counter": pl.Int64(),
        "archived_forwards": pl.Int64(),
        "archived_channels": pl.Int64(),
        "coverage": pl.Float64(),
    },
    "view_growth": {
        "channel_id": pl.Int64(),
        "message_id": pl.Int64(),
        "posted_at": UTC_TS,
        "observed_at": UTC_TS,
        "age_s": pl.Float64(),
        "views": pl.Int64(),
        "forwards": pl.Int64(),
        "replies": pl.Int64(),
        "reactions": pl.Int64(),
    },
    "channel_growth": {
        "channel_id": pl.Int64(),
        "age_s": pl.Float64(),
        "posts": pl.Int64(),
        "median_views": pl.Float64(),
        "median_forwards": pl.Float64(),
        "median_reactions": pl.Float64(),
    },
    "half_life_post": {
        "channel_id": pl.Int64(),
        "message_id": pl.Int64(),
        "latest_views": pl.Int64(),
        "observations": pl.Int64(),
        "half_life_s": pl.Float64(),
    },
    "half_life_channel": {
        "channel_id": pl.Int64(),
        "posts": pl.Int64(),
        "median_half_life_s": pl.Float64(),
    },
    "subscriber_growth": {
        "channel_id": pl.Int64(),
        "observed_at": UTC_TS,
        "participants_count": pl.Int64(),
        "change": pl.Int64(),
        "per_day": pl.Float64(),
    },
    "url_spread": {
        "url": pl.String(),
        "domain": pl.String(),
        "first_channel_id": pl.Int64(),
        "first_message_id": pl.Int64(),
        "first_posted_at": UTC_TS,
        "last_posted_at": UTC_TS,
        "posts": pl.Int64(),
        "channels": pl.Int64(),
        "median_lag_s": pl.Float64(),
    },
    "domain_spread": {
        "domain": pl.String(),
        "urls": pl.Int64(),
        "posts": pl.Int64(),
        "channels": pl.Int64(),
        "first_channel_id": pl.Int64(),
        "first_posted_at": UTC_TS,
    },
    "coordination_pairs": {
        "channel_a": pl.Int64(),
        "channel_b": pl.Int64(),
        "weight": pl.Int64(),
        "forward": pl.Int64(),
        "url": pl.Int64(),
        "text": pl.Int64(),
        "shared": pl.Int64(),
        "expected": pl.Float64(),
        "p_value": pl.Float64(),
        "q_value": pl.Float64(),
        "median_gap_s": pl.Float64(),
        "max_gap_s": pl.Float64(),
        "flagged": pl.Boolean(),
        "group_id": pl.Int64(),
    },
    "coordination_groups": {
        "group_id": pl.Int64(),
        "channels": pl.Int64(),
        "members": pl.List(pl.Int64()),
        "pairs": pl.Int64(),
        "weight": pl.Int64(),
        "expected": pl.Float64(),
        "objects": pl.Int64(),
        "kinds": pl.List(pl.String()),
        "median_gap_s": pl.Float64(),
        "max_q": pl.Float64(),
        "first_at": UTC_TS,
        "last_at": UTC_TS,
    },
    "coordination_evidence": {
        "channel_a": pl.Int64(),
        "channel_b": pl.Int64(),
        "kind": pl.String(),
        "object": pl.String(),
        "a_channel_id": pl.Int64(),
        "a_message_id": pl.Int64(),
        "a_posted_at": UTC_TS,
        "b_channel_id": pl.Int64(),
        "b_message_id": pl.Int64(),
        "b_posted_at": UTC_TS,
        "gap_s": pl.Float64(),
    },
    "velocity": {
        "channel_id": pl.Int64(),
        "message_id": pl.Int64(),
        "posted_at": UTC_TS,
        "checkpoint_s": pl.Int64(),
        "observed_age_s": pl.Float64(),
        "value": pl.Int64(),
        "channel_posts": pl.Int64(),
        "channel_median": pl.Float64(),
        "robust_z": pl.Float64(),
        "outlier": pl.Boolean(),
        "rank": pl.Int64(),
    },
    "provenance": {
        "channel_id": pl.Int64(),
        "field_group": pl.String(),
        "route": pl.String(),
        "posts": pl.Int64(),
        "first_seen_at": UTC_TS,
        "last_seen_at": UTC_TS,
    },
    "provenance_posts": {
        "channel_id": pl.Int64(),
        "message_id": pl.Int64(),
        "text_source": pl.String(),
        "text_seen_at": UTC_TS,
        "counters_source": pl.String(),
        "counters_seen_at": UTC_TS,
        "reactions_source": pl.String(),
        "reactions_seen_at": UTC_TS,
        "header_source": pl.String(),
        "header_seen_at": UTC_TS,
    },
    "virality_comparison": {
        "origin_channel_id": pl.Int64(),
        "origin_message_id": pl.Int64(),
        "nodes_first_source": pl.Int64(),
        "nodes_latest_exposure": pl.Int64(),
        "nodes_with_copies": pl.Int64(),
        "sv_first_source": pl.Float64(),
        "sv_latest_exposure": pl.Float64(),
        "sv_with_copies": pl.Float64(),
        "rank_first_source": pl.Int64(),
        "rank_latest_exposure": pl.Int64(),
        "rank_with_copies": pl.Int64(),
    },
    "influence_comparison": {
        "channel_id": pl.Int64(),
        "credited_first_source": pl.Int64(),
        "credited_latest_exposure": pl.Int64(),
        "credited_with_copies": pl.Int64(),
        "rank_first_source": pl.Int64(),
        "rank_latest_exposure": pl.Int64(),
        "rank_with_copies": pl.Int64(),
    },
}

def is_forward_sql(alias: str = "") -> str:
    """SQL true for a post that is a forward: the one definition every analysis uses.

    A forward header names at least one of: the origin channel (``fwd_channel_id``), its post
    (``fwd_message_id``; web previews give it with ``fwd_username``), the original date
    (``fwd_posted_at``) or a displayed name or pseudonym (``fwd_from_name``: hidden senders; imported
    forwards from people or groups). Desktop exports give no origin post or date, so testing those
    alone misses imported forwards. ``alias``: a table alias (``is_forward_sql("p")`` -> ``(p.fwd_...``).
    Example: ``f"WHERE NOT {is_forward_sql()}"`` keeps the posts that are not forwards.
    """
    a = f"{alias}." if alias else ""
    return (f"({a}fwd_channel_id IS NOT NULL OR {a}fwd_message_id IS NOT NULL OR {a}fwd_posted_at IS NOT NULL "
            f"OR {a}fwd_from_name IS NOT NULL)")


#: Archived forwards naming their origin (hidden-sender forwards have no origin ids and are left out).
#: One row per forwarded message; ``lag_s`` is measured from the forward header's origin date.
FORWARDS_SQL = """
SELECT channel_id, message_id, posted_at, grouped_id, views,
       fwd_channel_id, fwd_message_id, fwd_posted_at
FROM posts
WHERE fwd_channel_id IS NOT NULL AND fwd_message_id IS NOT NULL
"""


def empty(name: str) -> pl.DataFrame:
    """An empty frame with the schema of function ``name``."""
    return pl.DataFrame(schema=SCHEMAS[name])


def conform(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """``df`` with exactly the columns of schema ``name``, in order, cast to its dtypes."""
    schema = SCHEMAS[name]
    return df.select([pl.col(col).cast(dtype) for col, dtype in schema.items()])


def query_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any], name: str,
    order: Sequence[tuple[str, bool]] = (),
) -> pl.DataFrame:
    """Run ``sql`` and hand its result to Polars through Arrow, conformed to schema ``name``.

    ``order``: integer columns ``(name, descending)`` to sort the result by in Polars (see
    :func:`sort_by_ints`); cheaper than an ``ORDER BY`` in DuckDB for results of a million rows.
    """
    # a cursor of its own: a result the caller left unfinished on ``con`` must not block the analysis
    rel = con.cursor().sql(sql, params=dict(params) or None)
    df = rel.pl()
    return conform(sort_by_ints(df, order) if order else df, name)


def packed_int_key(df: pl.DataFrame, keys: Sequence[tuple[str, bool]]) -> pl.Expr | None:
    """One Int64/Int128 expression ordered like the integer columns ``keys`` = ``[(name, descending), ...]``.

    Each key is offset by its minimum (descending ones mirrored by their maximum) and the keys are
    packed side by side, so sorting by the expression sorts by all keys at once. None when a key has
    nulls or the keys' ranges do not fit in 127 bits together.
    """
    names = [k for k, _ in keys]
    stats = df.select(
        *(pl.col(k).min().alias(f"lo{i}") for i, k in enumerate(names)),
        *(pl.col(k).max().alias(f"hi{i}") for i, k in enumerate(names)),
        *(pl.col(k).null_count().alias(f"n{i}") for i, k in enumerate(names)),
    ).row(0)
    n = len(names)
    lows, highs, nulls = stats[:n], stats[n:2 * n], stats[2 * n:]
    if any(nulls) or any(v is None for v in (*lows, *highs)):
        return None
    bits = [max(1, (int(hi) - int(lo)).bit_length()) for lo, hi in zip(lows, highs, strict=True)]
    if sum(bits) > 127:
        return None
    fits64 = sum(bits) <= 63 and all(-(1 << 63) <= int(v) < (1 << 63) for v in (*lows, *highs))
    big = pl.Int64 if fits64 else pl.Int128     # an Int64 key sorts faster
    packed: pl.Expr = pl.lit(0, big)
    for (name, desc), lo, hi, width in zip(keys, lows, highs, bits, strict=True):
        col = pl.col(name).cast(big)
        part = (pl.lit(int(hi), big) - col) if desc else (col - pl.lit(int(lo), big))
        packed = packed * pl.lit(1 << width, big) + part
    return packed


def sort_by_ints(df: pl.DataFrame, keys: Sequence[tuple[str, bool]]) -> pl.DataFrame:
    """``df`` sorted by integer columns ``keys`` = ``[(name, descending), ...]``, nulls last.

    The same order as ``ORDER BY a DESC, b, ...``, through one packed Int128 key
    (:func:`packed_int_key`) sorted once: a multi-column sort of a million rows costs several times
    more, in Polars as in DuckDB. Falls back to a plain multi-column sort when the keys cannot be
    packed. Rows with equal keys come out in an unspecified order, as with ``ORDER BY``.

    Example::

        >>> df = pl.DataFrame({"forwards": [1, 5, 5], "origin_channel_id": [3, 2, 1]})
        >>> sort_by_ints(df, [("forwards", True), ("origin_channel_id", False)]).rows()
        [(5, 1), (5, 2), (1, 3)]
    """
    if df.height < 2 or not keys:
        return df
    df = df.rechunk()       # DuckDB hands over many chunks per column; gathering across them costs more
    key = packed_int_key(df, keys)
    if key is None:
        return df.sort([k for k, _ in keys], descending=[d for _, d in keys], nulls_last=True)
    return df.sort(key)


def posts_are_files(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``posts`` is a view (a lake's Parquet files, ``analysis.connect(lake)``), False for a table.

    Over a lake every scan of ``posts`` opens every file (a fixed cost per file, docs/lake.md "Reading speed"),
    so some functions read it once where, over a table, two cheaper scans are faster.
    """
    rows = con.cursor().execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'posts' "
        "AND table_schema = current_schema()").fetchall()
    return bool(rows) and rows[0][0] == "VIEW"


def where_sql(clauses: Iterable[str | None]) -> str:
    """``WHERE a AND b`` from the non-empty clauses, or an empty string."""
    kept = [c for c in clauses if c]
    return ("WHERE " + " AND ".join(kept)) if kept else ""


def channel_clause(column: str, channels: Iterable[int] | None, params: Params, name: str) -> str | None:
    """``column IN (...)`` for a channel filter (None: no filter), binding the ids as ``$name``."""
    if channels is None:
        return None
    params[name] = [int(c) for c in channels]
    return f"{column} IN (SELECT unnest(${name}::BIGINT[]))"


def time_clauses(
    column: str, since: datetime | None, until: datetime | None, params: Params, prefix: str = "t"
) -> list[str]:
    """``since <= column < until`` clauses (naive datetimes are refused: say which zone you mean)."""
    out: list[str] = []
    for bound, op, key in ((since, ">=", f"{prefix}_since"), (until, "<", f"{prefix}_until")):
        if bound is None:
            continue
        if bound.tzinfo is None:
            raise ValueError(f"{key[len(prefix) + 1:]}={bound!r} has no time zone; pass an aware datetime (UTC)")
        params[key] = bound
        out.append(f"{column} {op} ${key}::TIMESTAMPTZ")
    return out
