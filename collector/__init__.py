"""tgspread's collector: archive public Telegram channels, with engagement over time, into one DuckDB file.

Example::

    from collector import Archive, collect

    with Archive("archive.duckdb") as archive:
        report = await collect(client, ["durov", "@somechannel", "https://t.me/other"], archive)

The names below are loaded on first use (PEP 562): ``import collector.archive`` or the Desktop export
importer does not pay for Telethon (~30 MB and 0.3 s), which only ``collect`` needs.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .archive import Archive, ArchiveBusyError, ArchiveError
    from .collect import ChannelResult, CollectReport, CollectSettings, collect

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
    "Archive": "archive", "ArchiveBusyError": "archive", "ArchiveError": "archive",
    "ChannelResult": "collect", "CollectReport": "collect", "CollectSettings": "collect", "collect": "collect",
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


class _Package(types.ModuleType):
    """Keeps ``collector.collect`` the function, as the eager ``from .collect import collect`` did.

    Importing the submodule ``collector.collect`` makes the import system set the package attribute
    ``collect`` to that module; here that assignment stores the module's function instead, so
    ``from collector import collect`` is the function whatever was imported before.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "collect" and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.collect":
            value = value.collect
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
