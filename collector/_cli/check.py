"""`tgspread check`: does this setup work? Credentials, session, connection, one channel, one page (item 30).

Exit 0 when every step passed; 2 for credentials or the session, 5 when Telegram cannot be reached (one line
says why), 1 when the channel could not be resolved or fetched. The steps are
:func:`collector._telegram.check.run_check`'s.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from collector._config import load_config
from collector._telegram.check import run_check

from .common import ConfigOpt, Exit, SessionOpt, errors, fail, stdout, telegram, wide_when_piped
from .safe_text import cell

_EXIT = {"usage": Exit.USAGE, "network": Exit.NETWORK, "channel": Exit.PARTIAL}


def register(app: typer.Typer) -> None:
    """Add ``tgspread check`` to the app."""

    @app.command("check")
    def check_command(
        config: ConfigOpt = None,
        session: SessionOpt = None,
        channel: Annotated[str, typer.Option(
            "--channel", metavar="CHANNEL", help="The public channel to resolve and read one page of.")]
            = "telegram",
    ) -> None:
        """Check a real setup before scheduling runs: credentials, the session file's permissions, connecting,
        resolving one public channel and fetching one page of it into a temporary archive (deleted again).

        Each step is shown with its time. At most 5 requests are sent. Exit 0 when all passed, 2 for
        credentials or the session, 5 when Telegram cannot be reached, 1 when the channel failed.
        """
        wide_when_piped()
        with errors():
            cfg = load_config(config, session=session)
            found = telegram(cfg, "checking against")
            steps = asyncio.run(run_check(found, cfg, channel))
            table = Table(title="tgspread check", title_justify="left")
            for name, justify in (("step", "left"), ("result", "left"), ("time", "right"), ("detail", "left")):
                table.add_column(name, justify=justify)  # type: ignore[arg-type]
            for s in steps:
                table.add_row(s.name, cell("ok", "green") if s.ok else cell("FAILED", "bold red"),
                              f"{s.seconds:.2f} s", cell(s.detail))
            stdout.print(table)
            failed = next((s for s in steps if not s.ok), None)
            if failed is not None:
                fail(_EXIT.get(failed.kind, Exit.PARTIAL), f"check failed at {failed.name}: {failed.detail}")
            stdout.print("every step passed: this setup can collect", style="green", markup=False)
