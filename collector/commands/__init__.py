"""``tgspread`` commands that live in their own modules, one module per command (or command group).

``collector/cli.py`` holds the shared pieces (exit codes, error mapping, common options) and the first
commands; each module here defines ``register(app)`` and imports what it needs from ``collector.cli``.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["MODULES", "register_all"]

MODULES = ("run", "channels", "discover", "comments", "media", "verify", "export", "summaries",
           "publish")


def register_all(app: typer.Typer) -> None:
    """Add every command module's commands to ``app`` (called once, at the end of ``collector.cli``)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
