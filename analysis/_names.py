"""Readable channel names for the numeric ids the analysis functions return.

Every result frame names channels by id only (``channel_id``, ``origin_channel_id``, ...): ids are stable,
usernames and titles change. To show a result to a person, look the ids up here:

- :func:`channel_names`: ``{channel_id: "@username"}``, else the title, else the id as text, for every
  channel the archive knows (collected channels and the forward origins named in headers);
- :func:`with_names`: the same as columns next to a frame's id columns.

A collected channel's own record (``channels``) wins over what forward headers said about it (``peers``).
Names come from Telegram, so they are hostile text: control characters (which could move a terminal's
cursor or break an XML export) are replaced by U+FFFD before they leave this module.

Example::

    >>> import duckdb, polars as pl
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE channels (channel_id BIGINT, username VARCHAR, title VARCHAR)")
    >>> _ = con.execute("CREATE TABLE peers (channel_id BIGINT, username VARCHAR, title VARCHAR)")
    >>> _ = con.execute("INSERT INTO channels VALUES (1, 'durov', 'Durov'), (2, NULL, 'News\\x1b[2J')")
    >>> channel_names(con)
    {1: '@durov', 2: 'News�[2J'}
    >>> with_names(pl.DataFrame({"channel_id": [1, 3]}), con).rows()
    [(1, '@durov'), (3, '3')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb
import polars as pl

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _label(channel_id: int, username: str | None, title: str | None) -> str:
    text = f"@{username}" if username else (title or str(channel_id))
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


def _details(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str | None, str | None]]:
    """``{channel_id: (username, title)}`` from ``peers``, then ``channels`` (the channel's own record wins)."""
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    out: dict[int, tuple[str | None, str | None]] = {}
    for table in ("peers", "channels"):   # channels last: the archive's own record wins
        if table in tables:
            for cid, username, title in con.execute(f"SELECT channel_id, username, title FROM {table}").fetchall():
                if cid is not None:
                    out[int(cid)] = (username, title)
    return out


def channel_names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """``{channel_id: name}`` for every channel in the archive: ``@username``, else the title, else the id.

    Read once per notebook or script and reuse it; the lookup is one small query per table.
    """
    return {cid: _label(cid, username, title) for cid, (username, title) in _details(con).items()}


def name_expr(column: str, names: Mapping[int, str]) -> pl.Expr:
    """A Polars expression: the name of the channel id in ``column`` (the id as text when unknown)."""
    return pl.col(column).replace_strict(dict(names), default=pl.col(column).cast(pl.String), return_dtype=pl.String)


def _name_column(id_column: str) -> str:
    """``channel_id`` -> ``channel``, ``origin_channel_id`` -> ``origin_channel``, ``x`` -> ``x_name``."""
    return id_column.removesuffix("_id") if id_column.endswith("channel_id") else f"{id_column}_name"


def with_names(frame: pl.DataFrame, con: duckdb.DuckDBPyConnection, *columns: str,
               details: bool = False) -> pl.DataFrame:
    """``frame`` with a readable name next to each channel id column.

    ``columns``: the id columns to name (default: every column whose name ends in ``channel_id``).
    ``channel_id`` gets ``channel``, ``origin_channel_id`` gets ``origin_channel``, and so on; each new
    column follows its id column. ``details=True`` also adds ``<prefix>username`` and ``<prefix>title``
    (null when unknown). Ids the archive does not know are named by the id itself.
    """
    targets = list(columns) or [c for c in frame.columns if c.endswith("channel_id")]
    missing = [c for c in targets if c not in frame.columns]
    if missing:
        raise ValueError(f"with_names: no column {', '.join(map(repr, missing))} in the frame "
                         f"(columns: {', '.join(frame.columns)})")
    if not targets:
        return frame
    info = _details(con)
    names = {cid: _label(cid, u, t) for cid, (u, t) in info.items()}
    added: dict[str, list[pl.Expr]] = {}
    for column in targets:
        label = _name_column(column)
        exprs = [name_expr(column, names).alias(label)]
        if details:
            prefix = label[: -len("channel")] if label.endswith("channel") else f"{label}_"
            clean = {cid: (_CONTROL.sub("\N{REPLACEMENT CHARACTER}", u) if u else None,
                           _CONTROL.sub("\N{REPLACEMENT CHARACTER}", t) if t else None)
                     for cid, (u, t) in info.items()}
            exprs += [
                pl.col(column).replace_strict({c: u for c, (u, _) in clean.items()}, default=None,
                                              return_dtype=pl.String).alias(f"{prefix}username"),
                pl.col(column).replace_strict({c: t for c, (_, t) in clean.items()}, default=None,
                                              return_dtype=pl.String).alias(f"{prefix}title"),
            ]
        added[column] = exprs
    named = frame.with_columns([e for exprs in added.values() for e in exprs])
    order: list[str] = []
    for column in frame.columns:
        order.append(column)
        order += [e.meta.output_name() for e in added.get(column, [])]
    return named.select(order)
