"""`tgspread export`: the archive as partitioned Parquet, person-level fields pseudonymised (issues 7, ARCHITECTURE)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""
