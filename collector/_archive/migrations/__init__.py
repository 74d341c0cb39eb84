"""Ordered schema migrations: ``NNNN_name.sql`` files beside this module, applied once each.

The schema is code: feature code never runs an ad-hoc ``ALTER``; it adds a migration file here.
Each migration runs in its own transaction and is recorded in ``schema_migrations``.

A migration whose first line is ``-- stepwise`` runs one statement per transaction, each followed by a
``CHECKPOINT``, and is recorded after its last statement. DuckDB keeps what an ``ALTER TABLE ... ADD COLUMN``
wrote in memory until a checkpoint, so several of them on ``posts`` in one transaction need memory in
proportion to the table: at 30 million posts, more than the archive's 256 MB cap (issue 14, item 4). Its
``ALTER TABLE t ADD COLUMN IF NOT EXISTS c TYPE [DEFAULT x]`` statements go through
`collector._archive.big_alter.add_column`, which adds a column inside the memory cap whatever the table's size
(a DEFAULT is written in committed row-id slices): every migration that adds a column to a large table
(``posts``, ``post_observations``, ``post_versions``, ``post_comments``) must be stepwise. Its statements
must be idempotent (``IF NOT EXISTS``): a migration killed half-way is run again from its first statement.
It is split on ``;`` after ``--`` comments are removed, so neither may appear inside its string literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: The first line of a migration run statement by statement (see the module docstring).
STEPWISE = "-- stepwise"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def stepwise(self) -> bool:
        """True when the file starts with ``-- stepwise``: one transaction and a checkpoint per statement."""
        return self.sql.startswith(STEPWISE)

    def statements(self) -> list[str]:
        """The statements of the file, comments removed, in order.

        >>> sql = "-- stepwise\\nALTER TABLE t ADD COLUMN IF NOT EXISTS a INT; -- why\\nSELECT 1;"
        >>> Migration(9, "x", sql).statements()
        ['ALTER TABLE t ADD COLUMN IF NOT EXISTS a INT', 'SELECT 1']
        """
        code = "\n".join(line.split("--", 1)[0] for line in self.sql.splitlines())
        return [s.strip() for s in code.split(";") if s.strip()]


def available() -> list[Migration]:
    """Every migration shipped with this version of tgspread, in order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def latest_version() -> int:
    """The newest schema version this code knows."""
    migrations = available()
    return migrations[-1].version if migrations else 0
