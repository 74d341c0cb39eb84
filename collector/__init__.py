"""tgspread's collector: archive public Telegram channels, with engagement over time, into one DuckDB file.

Example::

    from collector import Archive, collect

    with Archive("archive.duckdb") as archive:
        report = await collect(client, ["durov", "@somechannel", "https://t.me/other"], archive)

The names below are loaded on first use (PEP 562): ``import collector._archive`` or the Desktop export
importer does not pay for Telethon (~30 MB and 0.3 s), which only ``collect`` needs.

Inside, one folder per job (docs/ARCHITECTURE.md): ``_archive/`` (the only writer of the DuckDB file),
``_telegram/``, ``_parse/``, ``_sources/``, ``_scheduling/``, ``_cli/``, and ``_simulated/`` (tests and the demo).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._archive import Archive, ArchiveBusyError, ArchiveError
    from ._telegram.collect import ChannelResult, CollectReport, CollectSettings, collect

__all__ = [
    "Archive",
    "ArchiveBusyError",
    "ArchiveError",
    "ChannelResult",
    "CollectReport",
    "CollectSettings",
    "__version__",
    "collect",
]

# Public name -> the submodule defining it.
_LAZY = {
    "Archive": "_archive", "ArchiveBusyError": "_archive", "ArchiveError": "_archive",
    "ChannelResult": "_telegram.collect", "CollectReport": "_telegram.collect", "CollectSettings": "_telegram.collect",
    "collect": "_telegram.collect",
}


def __getattr__(name: str) -> Any:
    """Load a public name from its submodule on first access (``from collector import collect``)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

