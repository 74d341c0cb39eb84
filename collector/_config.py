"""Settings for the ``tgspread`` command: a TOML file, the environment and command-line flags.

Precedence, highest first: command-line flags > environment (``TG_API_ID``, ``TG_API_HASH``,
``TGSPREAD_ARCHIVE``, ``TGSPREAD_SESSION``) > the TOML file (``--config``, or ``./tgspread.toml`` when it
exists) > built-in defaults. Relative paths in the TOML file are relative to the file's directory.
Every problem is a :class:`ConfigError` whose one-line message names the file, the key and what is expected.

Example ``tgspread.toml``::

    archive = "archive.duckdb"
    channels = ["durov", "@telegram"]

    [telegram]
    api_id = 12345
    api_hash = "0123456789abcdef0123456789abcdef"
    flood_sleep_threshold = 60

    [refresh]
    checkpoints = ["1h", "6h", "1d", "3d", "7d", "30d"]
    snapshot_every = "24h"

Example::

    >>> parse_duration("90s"), parse_duration("1w")
    (datetime.timedelta(seconds=90), datetime.timedelta(days=7))
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from collector._archive.slots import collector_name_problem
from collector._parse.media_files import MediaSettings, check_kinds, parse_size
from collector._parse.refresh import DEFAULT_CHECKPOINTS, DEFAULT_SNAPSHOT_EVERY, validate_checkpoints
from collector._parse.text_file import NotText, decode_text
from collector._scheduling.plan import RunSettings

DEFAULT_CONFIG_NAME = "tgspread.toml"
DEFAULT_ARCHIVE = "archive.duckdb"
DEFAULT_FLOOD_SLEEP_THRESHOLD = 60
CREDENTIALS_HELP = (
    "get api_id and api_hash at https://my.telegram.org -> API development tools, then set "
    "TG_API_ID and TG_API_HASH or put them under [telegram] in tgspread.toml"
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_API_HASH = re.compile(r"^[0-9a-fA-F]{32}$")
_TOP_KEYS = {"archive", "session", "channels", "telegram", "refresh", "run", "media", "comments", "analysis",
              "lake", "collectors"}
#: What a ``[collectors.NAME]`` table may set for that collector (everything else is shared: the lake above all).
_COLLECTOR_KEYS = {"archive", "session", "channels", "telegram", "refresh", "run", "media", "comments"}
_TELEGRAM_KEYS = {"api_id", "api_hash", "flood_sleep_threshold"}
_REFRESH_KEYS = {"checkpoints", "snapshot_every"}
_MEDIA_KEYS = {"download", "dir", "kinds", "max_size"}
_COMMENTS_KEYS = {"enabled", "max_posts"}
_ANALYSIS_KEYS = {"store_results"}   # deprecated, ignored since migration 0009 (nothing is stored)
_LAKE_KEYS = {"path", "collector", "assignment"}
_RUN_KEYS = {"interval", "jitter", "every", "max_requests", "max_resolves_per_hour", "intervals"}


#: The longest duration anywhere (config, --advance, --interval): ten years. Longer is a typo, and Python's
#: ``timedelta`` overflows past about 2.7 million years ("99999999999w").
MAX_DURATION = timedelta(days=3650)
#: Limits of whole-number settings (TOML allows 64-bit numbers; a budget of 10^22 requests is a typo).
MAX_REQUESTS = 1_000_000
MAX_RESOLVES_PER_HOUR = 10_000
MAX_FLOOD_SLEEP = 86_400
MAX_COMMENT_POSTS = 1_000_000


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line that says where and what to do."""


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"6h"``, ``"1d"``, ``"1w"`` (also ``"1.5h"``) -> ``timedelta``. Pure.

    Raises ``ValueError`` for anything else (no unit, unknown unit, negative, empty, longer than
    :data:`MAX_DURATION`).
    """
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None and isinstance(text, str) and text.strip().startswith("-"):
        raise ValueError(f"{text!r} is not a duration: durations are positive; write a number and a unit: 90s, "
                         "15m, 6h, 1d or 1w")
    if m is None:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 90s, 15m, 6h, 1d or 1w")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is too long: durations are at most {MAX_DURATION.days}d (ten years)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest exact :func:`parse_duration` spelling: ``timedelta(hours=6)`` -> ``"6h"``."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def default_session_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/tgspread/tgspread.session`` (``~/.local/share/tgspread/tgspread.session``)."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "tgspread" / "tgspread.session"


@dataclass(frozen=True)
class Credentials:
    """The app's Telegram API credentials (from my.telegram.org). ``repr`` hides the hash."""

    api_id: int
    api_hash: str

    def __repr__(self) -> str:
        return f"Credentials(api_id={self.api_id}, api_hash='***')"


@dataclass(frozen=True)
class Config:
    """Resolved settings. ``source`` is the TOML file that was read, if any.

    ``api_id``/``api_hash`` are None when not configured anywhere; :meth:`credentials` turns that into a
    :class:`ConfigError` for the commands that need them (``login``, ``collect``).
    """

    archive: Path
    session: Path
    channels: tuple[str, ...] = ()
    api_id: int | None = None
    api_hash: str | None = None
    flood_sleep_threshold: int = DEFAULT_FLOOD_SLEEP_THRESHOLD
    checkpoints: tuple[timedelta, ...] = DEFAULT_CHECKPOINTS
    snapshot_every: timedelta = DEFAULT_SNAPSHOT_EVERY
    run: RunSettings = RunSettings()  # noqa: RUF009 - frozen, so sharing it is safe; the [run] table
    media: MediaSettings = MediaSettings()  # noqa: RUF009 - frozen, so sharing it is safe; the [media] table
    comments_enabled: bool = False          # [comments] enabled: discussion-group comments (docs/comments.md)
    comments_max_posts: int | None = None   # [comments] max_posts: posts asked about per pass at most
    lake: Path | None = None                # [lake] path: publish to this lake after every pass (docs/lake.md)
    lake_collector: str = "main"            # [lake] collector: this collector's file name in a shared lake
    lake_assignment: Path | None = None     # [lake] assignment: slot -> collector file (docs/scale.md, shards)
    collectors: tuple[str, ...] = ()        # the file's [collectors.NAME] tables, in file order
    source: Path | None = None

    def __repr__(self) -> str:  # never show the api_hash, even in a traceback or a debugger
        return (f"Config(archive={str(self.archive)!r}, session={str(self.session)!r}, channels={self.channels!r}, "
                f"api_id={self.api_id!r}, api_hash={'***' if self.api_hash else None}, "
                f"flood_sleep_threshold={self.flood_sleep_threshold}, source={self.source!r})")

    def credentials(self) -> Credentials:
        """The API credentials, or a one-line :class:`ConfigError` that says where to get them."""
        if self.api_id is None and self.api_hash is None:
            raise ConfigError(f"no Telegram API credentials: {CREDENTIALS_HELP}")
        if self.api_id is None:
            raise ConfigError(f"TG_API_ID is not set: {CREDENTIALS_HELP}")
        if self.api_hash is None:
            raise ConfigError(f"TG_API_HASH is not set: {CREDENTIALS_HELP}")
        return Credentials(self.api_id, self.api_hash)


# -- validation of single values (pure) ----------------------------------------------------------------
def _check_api_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: api_id must be an integer (the App api_id); {CREDENTIALS_HELP}")
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise ConfigError(f"{where}: api_id must be a positive integer, not {text!r}; {CREDENTIALS_HELP}")
    return int(text)


def _check_api_hash(value: Any, where: str) -> str:
    # The value itself is never echoed: it is a secret.
    if not isinstance(value, str) or not _API_HASH.match(value.strip()):
        raise ConfigError(f"{where}: api_hash must be 32 hexadecimal characters (the App api_hash); "
                          f"{CREDENTIALS_HELP}")
    return value.strip().lower()


def _check_duration(value: Any, where: str) -> timedelta:
    if isinstance(value, str) and value.strip().startswith("-"):
        raise ConfigError(f"{where}: expected a positive duration such as \"6h\", not {value!r}")
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        if "too long" in str(exc):
            raise ConfigError(f"{where}: {exc}") from None
        raise ConfigError(f"{where}: expected a duration such as \"90s\", \"15m\", \"6h\", \"1d\" or \"1w\", "
                          f"not {value!r}") from None
    if delta <= timedelta(0):
        raise ConfigError(f"{where}: expected a positive duration, not {value!r}")
    return delta


def _check_whole(value: Any, where: str, least: int, most: int) -> int:
    """A whole number in ``least..most`` (a bool is not one), or a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise ConfigError(f"{where}: expected a whole number from {least:,} to {most:,}, not {value!r}")
    return value


def _check_path(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a file path as a string, not {value!r}")
    if "\0" in value:      # the OS would cut the path at the NUL: a different file than the one written
        raise ConfigError(f"{where}: the path {value!r} contains a NUL character; write the path without it")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _check_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")


def _table(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table (a [{key}] section)")
    return value


# -- the TOML file ------------------------------------------------------------------------------------
def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(decode_text(path.read_bytes()))   # a byte-order mark (Windows editors write one)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; create it (see tgspread.example.toml) or drop --config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file (see tgspread.example.toml)") from None
    except NotText as exc:
        raise ConfigError(f"{path}: {exc}; a config file is TOML text (see tgspread.example.toml)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None


def _collector_doc(doc: dict[str, Any], path: Path, collector: str | None) -> dict[str, Any]:
    """``doc`` as collector ``collector`` sees it: its ``[collectors.NAME]`` table laid over the shared settings.

    Tables (``[run]``, ``[telegram]``, ...) are merged key by key; ``archive`` and ``session`` default to
    ``archive-NAME.duckdb`` (next to the config) and ``tgspread-NAME.session`` (next to the default session),
    so two collectors never share an archive or an account by accident; ``[lake] collector`` is ``NAME``. A
    ``NAME`` without a table is the config as it is when ``[lake] collector`` already says ``NAME``.
    """
    tables = doc.get("collectors", {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise ConfigError(f"{path}: [collectors] holds one table per collector: [collectors.second] archive = ...")
    for name in tables:
        problem = collector_name_problem(name)
        if problem is not None:
            raise ConfigError(f"{path}: [collectors.<name>]: {problem}")
        _check_unknown(tables[name], _COLLECTOR_KEYS, f"{path}: [collectors.{name}]")
    shared = {k: v for k, v in doc.items() if k != "collectors"}
    if collector is None:
        return shared
    problem = collector_name_problem(collector)
    if problem is not None:
        raise ConfigError(f"--collector: {problem}")
    lake = dict(shared.get("lake", {})) if isinstance(shared.get("lake", {}), dict) else {}
    own = tables.get(collector)
    if own is None:
        if lake.get("collector", "main") == collector:
            return shared
        known = sorted({str(lake.get("collector", "main")), *map(str, tables)})
        raise ConfigError(f"{path}: no collector {collector!r}: add a [collectors.{collector}] table (its archive, "
                          f"session and budget; see docs/scale.md); known: {', '.join(known)}")
    merged = dict(shared)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if "archive" not in own:
        merged["archive"] = f"archive-{collector}.duckdb"
    if "session" not in own:          # never the shared account: a session of its own next to the shared one
        shared_session = shared.get("session")
        if isinstance(shared_session, str) and shared_session.strip():
            merged["session"] = str(Path(shared_session).with_name(f"tgspread-{collector}.session"))
    merged["lake"] = {**lake, "collector": collector}
    return merged


def _from_toml(path: Path, collector: str | None = None) -> dict[str, Any]:
    """The settings a TOML file sets, validated, as keyword values for :class:`Config` (``collector``: as that
    collector of ``[collectors]`` sees them)."""
    raw = _read_toml(path)
    doc = _collector_doc(raw, path, collector)          # checks that [collectors] holds only named tables
    base = path.parent
    out: dict[str, Any] = {"collectors": tuple(map(str, raw.get("collectors", {})))}
    _check_unknown(doc, _TOP_KEYS, str(path))
    if "archive" in doc:
        out["archive"] = _check_path(doc["archive"], f"{path}: archive", base)
    if "session" in doc:
        out["session"] = _check_path(doc["session"], f"{path}: session", base)
    if "channels" in doc:
        channels = doc["channels"]
        if not isinstance(channels, list) or not all(isinstance(c, str) and c.strip() for c in channels):
            raise ConfigError(f"{path}: channels must be a list of channel names, e.g. "
                              "channels = [\"durov\", \"https://t.me/telegram\"]")
        out["channels"] = tuple(c.strip() for c in channels)
    telegram = _table(doc, "telegram", str(path))
    _check_unknown(telegram, _TELEGRAM_KEYS, f"{path}: [telegram]")
    if "api_id" in telegram:
        out["api_id"] = _check_api_id(telegram["api_id"], f"{path}: [telegram] api_id")
    if "api_hash" in telegram:
        out["api_hash"] = _check_api_hash(telegram["api_hash"], f"{path}: [telegram] api_hash")
    if "flood_sleep_threshold" in telegram:
        value = telegram["flood_sleep_threshold"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FLOOD_SLEEP:
            raise ConfigError(f"{path}: [telegram] flood_sleep_threshold must be a whole number of seconds "
                              f"(0 to {MAX_FLOOD_SLEEP:,}), not {value!r}")
        out["flood_sleep_threshold"] = value
    refresh = _table(doc, "refresh", str(path))
    _check_unknown(refresh, _REFRESH_KEYS, f"{path}: [refresh]")
    if "checkpoints" in refresh:
        where = f"{path}: [refresh] checkpoints"
        values = refresh["checkpoints"]
        if not isinstance(values, list):
            raise ConfigError(f"{where}: expected a list of durations, e.g. [\"1h\", \"6h\", \"1d\"]")
        durations = [_check_duration(v, where) for v in values]
        try:
            out["checkpoints"] = validate_checkpoints(durations)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if "snapshot_every" in refresh:
        where = f"{path}: [refresh] snapshot_every"
        every = _check_duration(refresh["snapshot_every"], where)
        if every > DEFAULT_SNAPSHOT_EVERY:
            raise ConfigError(f"{where}: at most 24h (a channel is snapshotted at least daily)")
        out["snapshot_every"] = every
    if "run" in doc:
        out["run"] = _run_settings(_table(doc, "run", str(path)), f"{path}: [run]")
    if "media" in doc:
        out["media"] = _media_settings(_table(doc, "media", str(path)), f"{path}: [media]", base)
    if "comments" in doc:
        out.update(_comments_settings(_table(doc, "comments", str(path)), f"{path}: [comments]"))
    analysis = _table(doc, "analysis", str(path))
    _check_unknown(analysis, _ANALYSIS_KEYS, f"{path}: [analysis]")
    # store_results: accepted (and still checked) for one release so that existing configs load; nothing is stored
    if "store_results" in analysis and not isinstance(analysis["store_results"], bool):
        raise ConfigError(f"{path}: [analysis] store_results: expected true or false, not "
                          f"{analysis['store_results']!r}")
    if "lake" in doc:
        out.update(_lake_settings(_table(doc, "lake", str(path)), f"{path}: [lake]", base))
    return out


def _lake_settings(table: Mapping[str, Any], where: str, base: Path) -> dict[str, Any]:
    """The ``[lake]`` table: where to publish (a directory), and this collector's name in it."""
    _check_unknown(table, _LAKE_KEYS, where)
    values: dict[str, Any] = {}
    if "path" in table:
        values["lake"] = _check_path(table["path"], f"{where} path", base)
    if "collector" in table:
        name = table["collector"]
        problem = collector_name_problem(name)
        if problem is not None:
            raise ConfigError(f"{where} collector: {problem}")
        values["lake_collector"] = name
    if "assignment" in table:
        values["lake_assignment"] = _check_path(table["assignment"], f"{where} assignment", base)
    return values


def _comments_settings(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[comments]`` table (``tgspread comments``): the opt-in switch and a per-pass post budget."""
    _check_unknown(table, _COMMENTS_KEYS, where)
    values: dict[str, Any] = {}
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise ConfigError(f"{where} enabled: expected true or false, not {table['enabled']!r}")
        values["comments_enabled"] = table["enabled"]
    if "max_posts" in table:
        values["comments_max_posts"] = _check_whole(table["max_posts"], f"{where} max_posts", 1, MAX_COMMENT_POSTS)
    return values


def _media_settings(table: Mapping[str, Any], where: str, base: Path) -> MediaSettings:
    """The ``[media]`` table (``tgspread media``): download flag, folder, media types, largest file."""
    _check_unknown(table, _MEDIA_KEYS, where)
    values: dict[str, Any] = {}
    if "download" in table:
        if not isinstance(table["download"], bool):
            raise ConfigError(f"{where} download: expected true or false, not {table['download']!r}")
        values["download"] = table["download"]
    if "dir" in table:
        values["dir"] = _check_path(table["dir"], f"{where} dir", base)
    if "kinds" in table:
        kinds = table["kinds"]
        if not isinstance(kinds, list):
            raise ConfigError(f"{where} kinds: expected a list, e.g. kinds = [\"photo\", \"video\"]")
        try:
            values["kinds"] = check_kinds(kinds)
        except ValueError as exc:
            raise ConfigError(f"{where} kinds: {exc}") from None
    if "max_size" in table:
        try:
            values["max_size"] = parse_size(table["max_size"])
        except ValueError as exc:
            raise ConfigError(f"{where} max_size: {exc}") from None
    return MediaSettings(**values)


def _run_settings(table: Mapping[str, Any], where: str) -> RunSettings:
    """The ``[run]`` table (``tgspread run``): durations, whole-number budgets, per-channel intervals."""
    _check_unknown(table, _RUN_KEYS, where)
    values: dict[str, Any] = {}
    for key in ("interval", "every"):
        if key in table:
            values[key] = _check_duration(table[key], f"{where} {key}")
    if "jitter" in table:
        value = table["jitter"]
        zero = isinstance(value, str) and value.strip() in ("0", "0s", "0m")
        values["jitter"] = timedelta(0) if zero else _check_duration(value, f"{where} jitter")
    for key, least, most in (("max_requests", 1, MAX_REQUESTS), ("max_resolves_per_hour", 0, MAX_RESOLVES_PER_HOUR)):
        if key in table:
            values[key] = _check_whole(table[key], f"{where} {key}", least, most)
    if "intervals" in table:
        intervals = table["intervals"]
        if not isinstance(intervals, dict):
            raise ConfigError(f"{where} intervals: expected a table of channel = duration, e.g. "
                              "intervals = { durov = \"6h\" }")
        values["intervals"] = tuple((str(name).lower().lstrip("@"), _check_duration(v, f"{where} intervals.{name}"))
                                    for name, v in intervals.items())
    try:
        return RunSettings(**values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if env.get("TG_API_ID", "").strip():
        out["api_id"] = _check_api_id(env["TG_API_ID"], "environment variable TG_API_ID")
    if env.get("TG_API_HASH", "").strip():
        out["api_hash"] = _check_api_hash(env["TG_API_HASH"], "environment variable TG_API_HASH")
    if env.get("TGSPREAD_ARCHIVE", "").strip():
        out["archive"] = Path(env["TGSPREAD_ARCHIVE"]).expanduser()
    if env.get("TGSPREAD_SESSION", "").strip():
        out["session"] = Path(env["TGSPREAD_SESSION"]).expanduser()
    return out


def config_file(config: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The config file :func:`load_config` reads: ``config`` (``--config``), else ``cwd/tgspread.toml`` when it
    exists (``cwd``: the current directory), else None."""
    if config is not None:
        return config
    default = (Path.cwd() if cwd is None else cwd) / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


def load_config(
    config: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    archive: Path | None = None,
    session: Path | None = None,
    collector: str | None = None,
) -> Config:
    """Resolve settings: flags (``archive``, ``session``) > ``env`` > the TOML file > defaults.

    ``config`` is the ``--config`` file (it must exist); without it ``cwd/tgspread.toml`` is read when
    present. ``env`` defaults to ``os.environ``, ``cwd`` to the current directory. ``collector``
    (``--collector NAME``): the settings of that collector of the file's ``[collectors]`` (docs/scale.md).
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config = config_file(config, cwd)
    values: dict[str, Any] = {"archive": cwd / DEFAULT_ARCHIVE, "session": default_session_path(env)}
    if collector is not None and config is None:
        raise ConfigError(f"--collector {collector}: needs a config file with its [collectors.{collector}] table "
                          f"(--config FILE, or ./{DEFAULT_CONFIG_NAME}); see docs/scale.md")
    if config is not None:
        found = _from_toml(config, collector)
        if collector is not None and "session" not in found and collector in found["collectors"]:
            # a collector of [collectors] never shares the default account; the file's own collector (its
            # [lake] collector, `--collector main`) is the file as it is, with the session `tgspread login` wrote
            values["session"] = values["session"].with_name(f"tgspread-{collector}.session")
        values.update(found)
        values["source"] = config
    from_env = _from_env(env)
    if collector is not None:
        # One environment is shared by every collector on a host: it must not point them all at one archive or
        # one session file (one account's session used by two processes, or two collectors' writes mixed).
        flags = {"archive": archive, "session": session}
        for key, var in (("archive", "TGSPREAD_ARCHIVE"), ("session", "TGSPREAD_SESSION")):
            if key in from_env and from_env[key] != values[key] and flags[key] is None:
                raise ConfigError(f"{var} is set ({str(from_env[key])!r}), but collector {collector!r} has its own "
                                  f"{key} ({str(values[key])!r}): the environment would give every collector the "
                                  f"same one. Unset {var}, or give --{key} for this collector")
    values.update(from_env)
    if archive is not None:
        values["archive"] = archive.expanduser()
    if session is not None:
        values["session"] = session.expanduser()
    return Config(**values)


def read_channel_file(path: Path) -> list[str]:
    """Channel names from a file: one per line; blank lines and ``#`` comments (whole or trailing) skipped."""
    try:
        text = decode_text(path.read_bytes())              # a byte-order mark, if any, is dropped
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such channel list; write one channel name or t.me link per line") from None
    except NotText as exc:
        raise ConfigError(f"{path}: {exc}; a channel list is plain text, one channel name or t.me link per "
                          "line") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the channel list ({exc.strerror or exc})") from None
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names
