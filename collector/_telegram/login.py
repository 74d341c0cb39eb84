"""The Telegram session: a file that stays owner-only, a client built from settings, and the login dialogue.

The session file is an SQLite database holding the account's authorization key: whoever reads it *is*
the account. So it is created with mode 0600 in a 0700 directory before Telethon opens it, and a file
that group or others can read is refused (``chmod 600 PATH`` fixes it). Telethon's entity cache would also
keep phone numbers in it (the account's own, a contact's): :class:`PhoneFreeSession` never writes one and
clears any an older file holds. ``tgspread collect`` only ever
uses an existing, authorized session (:func:`connect_authorized`): cron has no terminal to type a code in.

Example::

    client = build_client(config, create=True)       # for `tgspread login`
    await interactive_login(client, ask)              # phone, code, 2FA password
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

from telethon import TelegramClient, errors
from telethon.sessions import SQLiteSession

from collector._config import Config

# What the login dialogue asks: ask(what, secret) -> answer. `what` is "phone", "code" or "password".
Ask = Callable[[str, bool], str]


class SessionError(Exception):
    """The session file is missing, unsafe or unusable; the message says what to do."""


class NotLoggedInError(SessionError):
    """The session is not (or no longer) authorized: ``tgspread login`` is needed."""


class PhoneFreeSession(SQLiteSession):
    """Telethon's SQLite session file, except that its entity cache never stores a phone number.

    ``get_me()`` answers with the account's own number, and Telethon caches every user it sees with the
    ``phone`` field; an archiving tool has no use for it, and the session file may end up in backups.
    """

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self._execute("PRAGMA secure_delete = ON")   # overwrite, not just unlink, what is cleared
        self._execute("UPDATE entities SET phone = NULL WHERE phone IS NOT NULL")  # written by an older version
        self.save()

    @staticmethod
    def _entity_values_to_row(id: int, hash: int, username: str | None, phone: str | None,
                              name: str | None) -> tuple[int, int, str | None, None, str | None]:
        return id, hash, username, None, name


def session_file(path: Path) -> Path:
    """The file Telethon actually uses: it appends ``.session`` when the name lacks it."""
    return path if path.name.endswith(".session") else path.with_name(path.name + ".session")


def check_session_file(path: Path) -> None:
    """Refuse a session file (or its directory) that others could read: it holds the account's key."""
    path = session_file(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotLoggedInError(f"no Telegram session at {path}; run `tgspread login` first") from None
    if not stat.S_ISREG(mode):
        raise SessionError(f"{path} is not a session file; point TGSPREAD_SESSION or --session at a file")
    if mode & 0o077:
        raise SessionError(f"the session file {path} is readable by other users and holds your account's key; "
                           f"run `chmod 600 {path}` (and consider `tgspread login` again if it was shared)")


def prepare_session_file(path: Path) -> Path:
    """Create the session file empty with mode 0600 (directory 0700) unless it exists; return its path.

    Creating it before Telethon does means it is never readable by others, not even for a moment
    (SQLite gives its journal files the database file's permissions).
    """
    path = session_file(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)
    return path


def build_client(config: Config, *, create: bool = False) -> TelegramClient:
    """A (not yet connected) ``TelegramClient`` on the configured session and credentials.

    ``create=False`` (collect) requires an existing, owner-only session file; ``create=True`` (login)
    makes one. ``flood_sleep_threshold`` comes from the config: shorter waits are slept, longer ones are
    recorded and skipped by ``collect()``.
    """
    credentials = config.credentials()
    path = prepare_session_file(config.session) if create else session_file(config.session)
    check_session_file(path)
    try:
        client = TelegramClient(PhoneFreeSession(str(path)), credentials.api_id, credentials.api_hash,
                                flood_sleep_threshold=config.flood_sleep_threshold)
    except Exception as exc:  # sqlite3.DatabaseError and friends: a damaged or foreign file
        raise SessionError(f"cannot open the session file {path} ({type(exc).__name__}: {exc}); "
                           "move it away and run `tgspread login` again") from None
    with contextlib.suppress(OSError):  # Telethon may have (re)written it; keep it owner-only
        os.chmod(path, 0o600)
    return client


async def connect_authorized(client: TelegramClient) -> None:
    """Connect with the existing session only; never prompts. Raises :class:`NotLoggedInError`."""
    await client.connect()
    if not await client.is_user_authorized():
        await client.disconnect()
        raise NotLoggedInError("this Telegram session is not logged in; run `tgspread login` first")


async def _attempts(what: str, ask: Ask, secret: bool, action: Callable[[str], Awaitable[object]],
                    invalid: tuple[type[BaseException], ...], tries: int = 3) -> object:
    """Ask for ``what`` and run ``action`` with it, asking again (up to ``tries``) when it is refused."""
    for attempt in range(1, tries + 1):
        answer = ask(what, secret).strip()
        try:
            return await action(answer)
        except invalid:
            if attempt == tries:
                raise SessionError(f"the {what} was refused {tries} times; run `tgspread login` again") from None
    raise AssertionError("unreachable")


async def interactive_login(client: TelegramClient, ask: Ask) -> str:
    """Log in: phone number, the code Telegram sends, and the 2FA password when the account has one.

    ``ask(what, secret)`` reads an answer (the CLI prompts on the terminal, hiding the password).
    Returns the display name of the account. Already authorized: returns at once. The phone number is
    never printed or logged.
    """
    await client.connect()
    if not await client.is_user_authorized():
        phone_box: list[str] = []

        async def send_code(phone: str) -> object:
            phone_box[:] = [phone]
            return await client.send_code_request(phone)

        await _attempts("phone", ask, False, send_code, (errors.PhoneNumberInvalidError,))

        async def sign_in(code: str) -> object:
            return await client.sign_in(phone_box[0], code)

        try:
            await _attempts("code", ask, False, sign_in, (errors.PhoneCodeInvalidError,))
        except errors.SessionPasswordNeededError:
            await _attempts("password", ask, True, lambda pw: client.sign_in(password=pw),
                            (errors.PasswordHashInvalidError,))
        except errors.PhoneCodeExpiredError:
            raise SessionError("the login code expired; run `tgspread login` again and type the new code "
                               "promptly") from None
    me = await client.get_me()
    name = " ".join(p for p in (getattr(me, "first_name", None), getattr(me, "last_name", None)) if p)
    username = getattr(me, "username", None)
    return f"{name} (@{username})" if username else (name or "your account")
