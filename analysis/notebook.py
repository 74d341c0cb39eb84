"""The setup every notebook shares: find the archive, open a snapshot of it, name channels, style plots.

The numbered notebooks in ``notebooks/`` start with one call, and a notebook of your own can too.

Example::

    import analysis
    from analysis.notebook import open_notebook

    nb = open_notebook("archive.duckdb")   # open_notebook(): $TGSPREAD_ARCHIVE, else demo-data/demo.duckdb
    con, name, named = nb.con, nb.name, nb.named
    analysis.cascades(con).with_columns(named("origin_channel_id").alias("origin"))
    analysis.with_names(analysis.sources(con), con)     # the same names as a column next to channel_id

What it does, in order:

1. :func:`archive_path`: the archive is the argument, else ``$TGSPREAD_ARCHIVE``, else
   ``demo-data/demo.duckdb``. An absolute path is taken as given; a relative one is looked up from the
   repository root first (so the default works from ``notebooks/``), then from the working directory.
2. ``analysis.connect(path, snapshot=True)``: the tables are copied into memory and the file is released at
   once, so a scheduled collector is never locked out by an idle kernel. ``snapshot=False`` keeps the file
   open read-only instead (less memory; close it soon).
3. :func:`analysis.channel_names`: the ``{channel_id: name}`` lookup, with :meth:`Notebook.name` for one id
   and :meth:`Notebook.named` as a Polars expression for a column.
4. ``analysis.plots.use_style()`` and Polars display settings (15 rows, 80 characters per string).

The module imports nothing outside ``analysis`` (no ``collector``, no ``sys.path`` changes): the package
must be importable, as it is after ``pip install -e .`` or ``make demo``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from .connect import connect
from .names import channel_names, name_expr

#: The archive the notebooks read when neither an argument nor ``TGSPREAD_ARCHIVE`` names one.
DEFAULT_ARCHIVE = "demo-data/demo.duckdb"


def repository_root(start: Path | None = None) -> Path | None:
    """The tgspread checkout holding ``start`` (default: the working directory), or None outside one.

    A checkout is a folder with ``analysis/__init__.py`` and ``pyproject.toml``; the first one found walking up
    from ``start`` wins, else the checkout this package was imported from (an editable install).
    """
    def is_root(p: Path) -> bool:
        return (p / "analysis" / "__init__.py").is_file() and (p / "pyproject.toml").is_file()

    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if is_root(candidate):
            return candidate
    installed = Path(__file__).resolve().parents[1]
    return installed if is_root(installed) else None


def archive_path(archive: str | os.PathLike[str] | None = None, *, start: Path | None = None) -> Path:
    """The archive to open: ``archive``, else ``$TGSPREAD_ARCHIVE``, else :data:`DEFAULT_ARCHIVE`.

    Relative paths are looked up from the repository root (when there is one), then from ``start``
    (default: the working directory); a path found in neither is returned under the first of them,
    so the error on opening it names a sensible place.
    """
    given = archive if archive is not None else (os.environ.get("TGSPREAD_ARCHIVE") or DEFAULT_ARCHIVE)
    path = Path(given).expanduser()
    if path.is_absolute():
        return path
    cwd = (start or Path.cwd()).resolve()
    bases = [b for b in (repository_root(cwd), cwd) if b is not None]
    return next((b / path for b in bases if (b / path).exists()), bases[0] / path)


@dataclass
class Notebook:
    """An open archive and the channel names, as a notebook uses them. Close ``con`` when done."""

    con: duckdb.DuckDBPyConnection
    path: Path
    names: dict[int, str] = field(default_factory=dict)

    def name(self, channel_id: int | None) -> str:
        """``@username``, else the title, else the id as text."""
        return self.names.get(channel_id, str(channel_id)) if channel_id is not None else "None"

    def named(self, column: str) -> pl.Expr:
        """A Polars expression: the name of the channel id in ``column``."""
        return name_expr(column, self.names)

    def close(self) -> None:
        self.con.close()


def open_notebook(archive: str | os.PathLike[str] | None = None, *, snapshot: bool = True, style: bool = True,
                  quiet: bool = False) -> Notebook:
    """Find the archive (:func:`archive_path`), open it, read the channel names, set plot and table defaults.

    Prints ``archive: <path>`` unless ``quiet``. Raises ``FileNotFoundError`` with the paths tried when the
    archive does not exist (``make demo`` builds the default one).
    """
    path = archive_path(archive)
    if not path.exists():
        raise FileNotFoundError(
            f"no archive at {path}: run `make demo` for the demo archive, or set TGSPREAD_ARCHIVE "
            f"(or the notebook's ARCHIVE) to your own archive's path")
    con = connect(path, snapshot=snapshot)
    if style:
        from . import plots  # Matplotlib only when a notebook wants figures

        plots.use_style()
        pl.Config.set_tbl_rows(15)
        pl.Config.set_fmt_str_lengths(80)
    nb = Notebook(con=con, path=path, names=channel_names(con))
    if not quiet:
        print(f"archive: {path}")
    return nb
