"""The setup every notebook shares: find the lake (or the archive), open it, name channels, style plots.

The numbered notebooks in ``notebooks/`` start with one call, and a notebook of your own can too.

Example::

    import analysis
    from analysis.notebook import open_notebook

    nb = open_notebook("lake")             # open_notebook(): $TGSPREAD_ARCHIVE, else the configured lake, ...
    con, name, named = nb.con, nb.name, nb.named
    analysis.cascades(con).with_columns(named("origin_channel_id").alias("origin"))
    analysis.with_names(analysis.sources(con), con)     # the same names as a column next to channel_id

What it does, in order:

1. :func:`archive_path`: what to read is the argument (a lake directory or an archive file), else
   ``$TGSPREAD_ARCHIVE``, else the lake configured in ``tgspread.toml`` (``[lake] path``, the file in the
   working directory or the repository root) when it has been published, else the demo's lake
   ``demo-data/lake``, else the demo archive ``demo-data/demo.duckdb``. An absolute path is taken as given; a
   relative one is looked up from the repository root first (so the defaults work from ``notebooks/``), then
   from the working directory.
2. ``analysis.connect(path)``. A lake (docs/lake.md) is opened as views over its files: nothing is copied and
   nothing is locked, so the kernel may stay open for days while collectors publish. An archive file without a
   lake is copied into memory (``snapshot=True``, the default for files) so that an idle kernel never locks a
   scheduled collector out; that copy costs about 0.8 GB per million posts (docs/analysis.md), which is why a
   lake is the way to read a large archive. ``snapshot=False`` keeps the file open read-only instead.
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

from ._connect import connect
from ._names import channel_names, name_expr

#: The archive the notebooks read when nothing names one and there is no lake (the demo's).
DEFAULT_ARCHIVE = "demo-data/demo.duckdb"
#: The demo's lake (``tgspread demo`` publishes it beside its archive), read before the demo archive.
DEFAULT_LAKE = "demo-data/lake"


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


def configured_lake(start: Path | None = None) -> Path | None:
    """The ``[lake] path`` of the ``tgspread.toml`` in ``start`` (default: the working directory), else of the
    repository root's, when that lake directory exists; else None. Read with ``tomllib`` (``analysis`` imports
    nothing from ``collector``); a relative path is taken from the file's directory, as the collector takes it."""
    import tomllib

    cwd = (start or Path.cwd()).resolve()
    for base in dict.fromkeys(b for b in (cwd, repository_root(cwd)) if b is not None):
        config = base / "tgspread.toml"
        try:
            doc = tomllib.loads(config.read_text(encoding="utf-8-sig"))   # a BOM, as the collector allows
        except (OSError, ValueError):
            continue
        lake = doc.get("lake", {}).get("path") if isinstance(doc.get("lake"), dict) else None
        if isinstance(lake, str) and lake:
            path = Path(lake).expanduser()
            path = path if path.is_absolute() else base / path
            return path if path.is_dir() else None
    return None


def archive_path(archive: str | os.PathLike[str] | None = None, *, start: Path | None = None) -> Path:
    """What to open: ``archive`` (a lake directory or an archive file), else ``$TGSPREAD_ARCHIVE``, else the
    configured lake (:func:`configured_lake`), else :data:`DEFAULT_LAKE` when it exists, else
    :data:`DEFAULT_ARCHIVE`.

    Relative paths are looked up from the repository root (when there is one), then from ``start``
    (default: the working directory); a path found in neither is returned under the first of them,
    so the error on opening it names a sensible place.
    """
    given = archive if archive is not None else os.environ.get("TGSPREAD_ARCHIVE") or None
    if given is None:
        lake = configured_lake(start)
        if lake is not None:
            return lake
    cwd = (start or Path.cwd()).resolve()
    bases = [b for b in (repository_root(cwd), cwd) if b is not None]

    def find(name: str | os.PathLike[str]) -> Path:
        path = Path(name).expanduser()
        if path.is_absolute():
            return path
        return next((b / path for b in bases if (b / path).exists()), bases[0] / path)

    if given is None:
        lake = find(DEFAULT_LAKE)
        return lake if lake.is_dir() else find(DEFAULT_ARCHIVE)
    return find(given)


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
    """Find the lake or archive (:func:`archive_path`), open it, read the channel names, set plot and table defaults.

    ``snapshot`` applies to an archive file only (a lake is never copied); see the module doc.
    Prints ``lake: <path>`` or ``archive: <path>`` unless ``quiet``. Raises ``FileNotFoundError`` with the path
    tried when nothing is there (``make demo`` builds the default lake and archive).
    """
    path = archive_path(archive)
    if not path.exists():
        raise FileNotFoundError(
            f"no archive at {path}: run `make demo` for the demo archive, or set TGSPREAD_ARCHIVE "
            f"(or the notebook's ARCHIVE) to your own lake's directory or archive's path")
    con = connect(path, snapshot=snapshot and not path.is_dir())
    if style:
        from . import plots  # Matplotlib only when a notebook wants figures

        plots.use_style()
        pl.Config.set_tbl_rows(15)
        pl.Config.set_fmt_str_lengths(80)
    nb = Notebook(con=con, path=path, names=channel_names(con))
    if not quiet:
        print(f"{'lake' if path.is_dir() else 'archive'}: {path}")
    return nb
