"""The archive: the one DuckDB file, and the only code that writes it.

:class:`Archive` opens (or creates) the file and applies the migrations (``migrations/``); every write goes
through its methods and the modules here, each batch in one transaction. ``status`` and ``verify`` hold the
queries behind ``tgspread status`` and ``tgspread verify``; ``export`` writes files for other tools.

Example::

    from collector._archive import Archive

    with Archive("archive.duckdb") as archive:
        print(archive.con.execute("SELECT count(*) FROM posts").fetchone())
"""

from __future__ import annotations

from .archive import Archive as Archive
from .archive import ArchiveBusyError as ArchiveBusyError
from .archive import ArchiveError as ArchiveError
from .archive import ChannelKey as ChannelKey
