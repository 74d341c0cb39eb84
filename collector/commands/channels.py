"""`tgspread channels add/remove/list`: the collected channel set (issue 5)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""
