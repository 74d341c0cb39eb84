"""tgspread's collector: archive public Telegram channels, with engagement over time, into one DuckDB file.

Example::

    from collector import Archive, collect

    with Archive("archive.duckdb") as archive:
        report = await collect(client, ["durov", "@somechannel", "https://t.me/other"], archive)

The names below are loaded on first use (lazy_loader, PEP 562): ``import collector._archive`` or the Desktop export
importer does not pay for Telethon (~30 MB and 0.3 s), which only ``collect`` needs.

Inside, one folder per job (docs/ARCHITECTURE.md): ``_archive/`` (the only writer of the DuckDB file),
``_telegram/``, ``_parse/``, ``_sources/``, ``_scheduling/``, ``_cli/``, and ``_simulated/`` (tests and the demo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from ._version import __version__

if TYPE_CHECKING:
    from ._archive import Archive, ArchiveBusyError, ArchiveError
    from ._sources.export_import import ImportReport, import_export
    from ._sources.web import WebReport, collect_web
    from ._telegram.collect import ChannelResult, CollectReport, CollectSettings, collect
    from ._telegram.comments import CommentsReport, CommentsSettings, collect_comments
    from ._telegram.media import MediaReport, download_media

__all__ = [
    "Archive",
    "ArchiveBusyError",
    "ArchiveError",
    "ChannelResult",
    "CollectReport",
    "CollectSettings",
    "CommentsReport",
    "CommentsSettings",
    "ImportReport",
    "MediaReport",
    "WebReport",
    "__version__",
    "collect",
    "collect_comments",
    "collect_web",
    "download_media",
    "import_export",
]

__getattr__, __dir__, _LAZY_NAMES = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_archive": ["Archive", "ArchiveBusyError", "ArchiveError"],
        "_telegram.collect": ["ChannelResult", "CollectReport", "CollectSettings", "collect"],
        "_telegram.comments": ["CommentsReport", "CommentsSettings", "collect_comments"],
        "_telegram.media": ["MediaReport", "download_media"],
        "_sources.web": ["WebReport", "collect_web"],
        "_sources.export_import": ["ImportReport", "import_export"],
    },
)
