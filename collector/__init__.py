"""tgspread's collector: archive public Telegram channels, with engagement over time, into one DuckDB file.

Example::

    from collector import Archive, collect

    with Archive("archive.duckdb") as archive:
        report = await collect(client, ["durov", "@somechannel", "https://t.me/other"], archive)
"""

from __future__ import annotations

__version__ = "0.1.0"

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
