"""`tgspread summarize`, and the step every posts-writing command ends with: storing current analysis results.

``collect``, ``run``, ``import`` and ``demo`` call :func:`store_summaries` after they wrote posts: the
results of ``analysis.cascades``, ``forward_network`` and ``url_spread`` are computed once and stored in the
archive, so a notebook reads them in a fraction of a second (see :mod:`analysis.summaries`: a stored result
is used only while no post has changed since). Storing them can fail (no memory, no disk) without
harming what was collected: the command warns, and the analysis functions compute from ``posts`` until
``tgspread summarize`` (or the next collection) stores them. ``[analysis] store_results = false`` in the
config turns the step off (small machines: it needs about 1.5 GB on 10 million posts).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from collector.archive.archive import Archive
from collector.config import Config, load_config

from . import common as ui
from .common import ArchiveOpt, ConfigOpt, WaitOpt


def store_summaries(archive: Any, cfg: Config) -> None:
    """Store the analysis results that are no longer current, unless ``[analysis] store_results = false``;
    one line on stderr, never an exception."""
    if not cfg.store_results:
        return
    from collector.archive.summaries import refresh_summaries  # Polars only now, not for every command

    try:
        built = refresh_summaries(archive)
    except Exception as exc:   # the posts are committed; storing is only an optimisation
        if ui.is_interrupt(exc):  # Ctrl-C while storing: the caller says what was done before it
            raise KeyboardInterrupt from exc
        first = str(exc).splitlines()[0] if str(exc) else ""
        ui.stderr.print(f"[yellow]warning[/]: analysis results were not stored ({type(exc).__name__}: {first}); "
                        "the analysis functions compute them from the posts instead (slower); "
                        "`tgspread summarize` stores them", highlight=False, soft_wrap=True)
        return
    if built:
        names = ", ".join(f"{b.name} ({b.rows:,} rows)" for b in built)
        ui.stderr.print(f"stored analysis results: {names} in {sum(b.seconds for b in built):.1f} s",
                        style="dim", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("summarize")
    def summarize_command(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        force: Annotated[bool, typer.Option("--force", help="Compute every stored result again, current or "
                                                             "not.")] = False,
        wait: WaitOpt = 30.0,
    ) -> None:
        """Store the results of cascades, forward_network and url_spread in the archive for fast analysis.

        The collecting commands do this after writing posts; run it after an interrupted or failed store,
        or after writing posts with the library. A stored result is used only while no post has changed.
        """
        from analysis.stored import summary_status
        from collector.archive.summaries import refresh_summaries

        with ui.errors():
            cfg = load_config(config, archive=archive)
            if not cfg.archive.exists():    # the same message as every reading command (never create one here)
                with Archive(cfg.archive, read_only=True, wait=wait):
                    pass
            with Archive(cfg.archive, wait=wait) as opened:
                built = {b.name for b in refresh_summaries(opened, force=force)}
                states = summary_status(opened.con)
            table = Table(title=f"stored analysis results in {cfg.archive}")
            for column in ("function", "rows", "seconds", "stored at", "state"):
                table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
            for s in states:
                state = "stored now" if s.name in built else ("current" if s.current else "stale")
                table.add_row(s.name, f"{s.rows:,}", f"{s.seconds:.2f}", s.built_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                              state)
            ui.stdout.print(table)
