"""The lake's partition keys, pure: a channel's slot (a stable hash into 64 slots) and a post's month.

``slot = int(md5(str(channel_id)).hexdigest()[:8], 16) % 64``, the same in Python, DuckDB and Spark SQL
(CONTRACT.md, "The lake"), so any engine can find a channel's files. The slot count is fixed for the life
of a lake: collectors own slots, never ``hash % number_of_collectors``. ``month`` is the UTC month of
``posted_at`` as ``YYYY-MM``; a post without a date (never seen so far) goes to month ``unknown``.

``analysis.lake`` holds its own copy of :data:`SLOTS` and the DuckDB formula (``analysis`` imports nothing
from ``collector``); tests/unit/test_lake_slots.py pins them equal on many ids.

Example::

    >>> slot(1234567890)
    60
    >>> slot_sql("channel_id")
    "(('0x' || md5(CAST(channel_id AS VARCHAR))[1:8])::UBIGINT % 64)::INTEGER"
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from analysis.lake import COLLECTOR_NAME

#: Slots of every lake. Never change it: a lake's files and every collector's assignment depend on it.
SLOTS = 64
#: The month partition of a row whose post has no ``posted_at``.
NO_MONTH = "unknown"
#: The slot of column ``channel_id`` in Spark SQL (``{column}`` is replaced by the column expression).
SPARK_SLOT_SQL = "pmod(cast(conv(substr(md5(cast({column} as string)), 1, 8), 16, 10) as bigint), 64)"


def slot(channel_id: int) -> int:
    """The lake slot (0-63) of a bare channel id; any integer, negative and beyond 2^53 included."""
    return int(hashlib.md5(str(int(channel_id)).encode("ascii")).hexdigest()[:8], 16) % SLOTS


def slot_sql(column: str) -> str:
    """DuckDB SQL for the slot of the BIGINT expression ``column``: equal to :func:`slot` for every id."""
    return f"(('0x' || md5(CAST({column} AS VARCHAR))[1:8])::UBIGINT % {SLOTS})::INTEGER"


def month_of(posted_at: datetime | None) -> str:
    """``YYYY-MM`` of a timestamp in UTC (a naive one is taken as UTC); :data:`NO_MONTH` for None."""
    if posted_at is None:
        return NO_MONTH
    if posted_at.tzinfo is None:
        posted_at = posted_at.replace(tzinfo=UTC)
    return posted_at.astimezone(UTC).strftime("%Y-%m")


def month_sql(column: str) -> str:
    """DuckDB SQL for the UTC month of the TIMESTAMPTZ expression ``column``, whatever the session time zone."""
    return f"coalesce(strftime(timezone('UTC', {column}), '%Y-%m'), '{NO_MONTH}')"


def month_index(month: str) -> int:
    """``year * 12 + month`` of a ``YYYY-MM`` month, 0 for :data:`NO_MONTH`: an integer in the months' order
    (the publisher sorts and partitions by it). :func:`month_name` is its inverse.

    >>> month_index("2025-03"), month_name(month_index("2025-03")), month_name(0)
    (24303, '2025-03', 'unknown')
    """
    return 0 if month == NO_MONTH else int(month[:4]) * 12 + int(month[5:7])


def month_name(index: int) -> str:
    """The ``YYYY-MM`` month of a :func:`month_index` (0: :data:`NO_MONTH`)."""
    return NO_MONTH if index == 0 else f"{(index - 1) // 12:04d}-{(index - 1) % 12 + 1:02d}"


def collector_name_problem(name: object) -> str | None:
    """None when ``name`` can name a collector (1-64 letters, digits, '-' and '_', starting with a letter or
    digit: a file name, a bare TOML key, one line), else a one-line message that shows at most 64 characters
    of it.

    >>> collector_name_problem("box-1") is None
    True
    >>> collector_name_problem("main\\n")
    "collector name 'main\\\\n': use 1-64 letters, digits, '-' and '_', starting with a letter or digit"
    """
    if isinstance(name, str) and COLLECTOR_NAME.fullmatch(name):
        return None
    text = name if isinstance(name, str) else str(name)
    shown = repr(text[:64]) + (f" ({len(text):,} characters)" if len(text) > 64 else "")
    return f"collector name {shown}: use 1-64 letters, digits, '-' and '_', starting with a letter or digit"
