"""Runs of channels: how a read over the whole archive stays inside its memory cap (issue 14, item 4).

A check, digest or export whose result for a channel depends on that channel's rows only (a window per post, a
gap per channel, a partition per channel) is run once per range of channel ids holding about ``run_rows`` rows,
in channel order. Each query then sorts, joins or buffers one run, not the archive: memory is bounded by the run,
and the rows come out as one query over the archive gives them when it orders by ``channel_id`` first.

Example::

    for first, last in channel_ranges(con, 2_000_000):
        rows += con.execute("SELECT ... WHERE channel_id BETWEEN $first AND $last ORDER BY channel_id, ...",
                            {"first": first, "last": last}).fetchall()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb

#: Every BIGINT: the first range starts here and the last ends there, so the ranges cover any channel id.
LOWEST, HIGHEST = -(2**63), 2**63 - 1
#: The tables whose rows per channel size the runs (the large ones).
POST_TABLES = ("posts", "post_versions", "post_observations", "channel_observations")


def channel_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[str] = POST_TABLES) -> list[tuple[int, int]]:
    """``(channel_id, rows)`` over ``tables`` (those the archive has), by channel id; NULL ids are left out.
    One aggregate with a group per channel: its memory is bounded by the channels, not by the rows."""
    present = {str(r[0]) for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    counted = " UNION ALL ".join(f'SELECT channel_id FROM "{t}"' for t in tables if t in present)
    if not counted:
        return []
    return [(int(ch), int(n)) for ch, n in con.execute(
        f"SELECT channel_id, count(*) FROM ({counted}) WHERE channel_id IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()]


def runs_of(counts: Iterable[tuple[int, int]], run_rows: int, wanted: set[int] | None = None,
            max_channels: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` channel ids, each run holding at most ``run_rows`` rows (a channel with more is
    a run of its own) and at most ``max_channels`` channels; only the channels in ``wanted`` when given.

    >>> runs_of([(1, 5), (2, 5), (3, 9), (7, 1)], 10)
    [(1, 2), (3, 7)]
    >>> runs_of([(1, 1), (2, 1), (3, 1)], 10, max_channels=2)
    [(1, 2), (3, 3)]
    """
    runs: list[tuple[int, int]] = []
    first: int | None = None
    last = size = channels = 0
    for ch, n in counts:
        if wanted is not None and ch not in wanted:
            continue
        if first is not None and (size + n > run_rows or (max_channels is not None and channels >= max_channels)):
            runs.append((first, last))
            first = None
        if first is None:
            first, size, channels = ch, 0, 0
        last, size, channels = ch, size + n, channels + 1
    if first is not None:
        runs.append((first, last))
    return runs


def covering(runs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``runs`` widened to cover every BIGINT: each starts right after the previous one's end, the first at
    :data:`LOWEST`, the last ends at :data:`HIGHEST` (ids in no table counted still fall in one range).

    >>> covering([(3, 5), (9, 9)]) == [(LOWEST, 5), (6, HIGHEST)]
    True
    >>> covering([]) == [(LOWEST, HIGHEST)]
    True
    """
    out: list[tuple[int, int]] = []
    start = LOWEST
    for i, (_, last) in enumerate(runs):
        end = HIGHEST if i == len(runs) - 1 else last
        out.append((start, end))
        start = end + 1
    return out or [(LOWEST, HIGHEST)]


def channel_ranges(con: duckdb.DuckDBPyConnection, run_rows: int,
                   tables: Iterable[str] = POST_TABLES) -> list[tuple[int, int]]:
    """Ranges ``(first, last)`` of channel ids, in order, covering every id, each holding about ``run_rows`` rows
    of ``tables`` (one channel with more is a range of its own)."""
    return covering(runs_of(channel_counts(con, tables), run_rows))
