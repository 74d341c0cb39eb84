"""Tables that stay readable on a narrow terminal (issue 17, item 7).

Rich shrinks every column of a table that is too wide, and the first to go to zero is the one that may wrap:
the channel name. :func:`fitted_table` keeps the first column (the channel) at a readable width and drops the
least important other columns, one at a time, until the table fits; a caption names what was left out and
where to see it. The order of importance is the order of ``keep`` (higher stays longer).

Example::

    columns = [Column("channel", min_width=20), Column("posts", justify="right", keep=9),
               Column("last pass", keep=5)]
    stdout.print(fitted_table(columns, rows, width=stdout.width, title="3 channels"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text

Cell = str | Text
Justify = Literal["left", "right", "center"]
NAME_WIDTH = 33   # the first column is never squeezed below this (or its longest cell, when shorter): "@" and
#                   the longest username, 32 characters


@dataclass(frozen=True)
class Column:
    """One column: ``keep`` orders what is dropped first on a narrow terminal (lowest first); ``wrap``: long
    text may wrap onto more lines (otherwise it is cut with an ellipsis)."""

    name: str
    justify: Justify = "left"
    keep: int = 0
    min_width: int | None = None
    wrap: bool = False


def _natural(column: Column, rows: Sequence[Sequence[Cell]], i: int) -> int:
    return max([len(column.name), *(Text(v).cell_len if isinstance(v, str) else v.cell_len
                                    for v in (r[i] for r in rows))])


def _least(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], i: int) -> int:
    """The narrowest column ``i`` may get: the first and wrapping ones their minimum, the others all of it."""
    natural = _natural(columns[i], rows, i)
    if i == 0:
        return min(natural, NAME_WIDTH)
    return min(natural, columns[i].min_width or natural) if columns[i].wrap else natural


def _build(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], shown: list[int], title: str | None,
           caption: str | None) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i in shown:
        c = columns[i]
        wraps = i == 0 or c.wrap
        table.add_column(c.name, justify=c.justify, min_width=_least(columns, rows, i), no_wrap=not wraps,
                         overflow="fold" if wraps else "ellipsis")
    for r in rows:
        table.add_row(*(r[i] for i in shown))
    return table


def fitted_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, width: int,
                 title: str | None = None, hint: str = "use --json or a wider terminal") -> Table:
    """A table of ``rows`` that fits ``width`` columns with the first column readable; see the module doc."""
    shown = list(range(len(columns)))
    least = [_least(columns, rows, i) for i in shown]
    dropped: list[str] = []
    # each column takes its width plus two of padding and one border; one more border closes the row
    while sum(least[i] + 3 for i in shown) + 1 > width and len(shown) > 1:
        victim = min((i for i in shown if i != 0), key=lambda i: (columns[i].keep, -i))
        shown.remove(victim)
        dropped.insert(0, columns[victim].name)
    caption = f"not shown at {width} columns: {', '.join(dropped)} ({hint})" if dropped else None
    return _build(columns, rows, shown, title, caption)
