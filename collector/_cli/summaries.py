"""`tgspread summarize`: kept for one release as a no-op, so that cron jobs and scripts calling it keep working.

Until migration 0009 the collecting commands stored the results of ``cascades``, ``forward_network`` and
``url_spread`` in the archive after every pass, and ``summarize`` stored them on demand. That recompute cost
time and memory in proportion to the whole archive on every pass (issue 14); the analysis functions now
compute from the posts (or the lake) every time, and there is nothing to store. The command says so on
stderr and exits 0; it is hidden from ``tgspread --help`` and will be removed in the release after this one.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import common as ui
from .common import ArchiveOpt, ConfigOpt, WaitOpt


def register(app: typer.Typer) -> None:
    @app.command("summarize", hidden=True)
    def summarize_command(
        archive: ArchiveOpt = None,
        config: ConfigOpt = None,
        force: Annotated[bool, typer.Option("--force", help="Ignored.")] = False,
        wait: WaitOpt = 30.0,
    ) -> None:
        """No longer needed: the analysis functions compute from the posts; nothing is stored (deprecated)."""
        del archive, config, force, wait
        ui.stderr.print("tgspread summarize is no longer needed: analysis results are no longer stored; "
                        "cascades, forward_network and url_spread compute from the posts (or the lake) every time. "
                        "This command does nothing and will be removed in the next release.",
                        highlight=False, soft_wrap=True)
