"""`tgspread login`: log in to Telegram once and save an owner-only session file."""

from __future__ import annotations

import asyncio
import sys

import typer

from collector._config import load_config
from collector._telegram.check import connect_failure
from collector._telegram.login import build_client, interactive_login

from . import common as ui
from .common import CollectorOpt, ConfigOpt, Exit, SessionOpt
from .safe_text import safe


def _ask(what: str, secret: bool) -> str:
    prompts = {
        "phone": "Phone number of the Telegram account (international format, e.g. +441234567890)",
        "code": "The login code Telegram just sent you (in the Telegram app, or by SMS)",
        "password": "Two-step verification password",
    }
    return str(typer.prompt(prompts[what], hide_input=secret))


def register(app: typer.Typer) -> None:
    """Add ``tgspread login`` to the app."""

    @app.command()
    def login(config: ConfigOpt = None, session: SessionOpt = None, collector: CollectorOpt = None) -> None:
        """Log in to Telegram once (phone, code, 2FA password) and save an owner-only session file.

        Needs TG_API_ID and TG_API_HASH (or [telegram] api_id/api_hash in the config): get them at
        https://my.telegram.org -> API development tools.
        """
        with ui.errors():
            cfg = load_config(config, session=session, collector=collector)
            cfg.credentials()
            if not sys.stdin.isatty():
                ui.fail(Exit.USAGE, "`tgspread login` asks for a phone number and a code: run it in a terminal")
            client = build_client(cfg, create=True)

            async def run() -> str:
                try:
                    return await interactive_login(client, _ask)
                finally:
                    await client.disconnect()

            try:
                name = asyncio.run(run())
            except (ConnectionError, OSError, asyncio.IncompleteReadError, EOFError) as exc:  # see NOT_TELEGRAM
                ui.fail(Exit.NETWORK, f"{connect_failure(exc)} and try again")
            ui.stdout.print(f"Logged in as {safe(name)}. Session saved to {cfg.session} (readable by you only). "
                         "`tgspread collect` uses it from now on.", markup=False)
