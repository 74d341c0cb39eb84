"""Renders ``analysis/_lake_schema.py`` from a fresh archive: ``python -m tests.helpers.lake_schema_render``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from collector._archive import Archive
from collector._archive.lake import lake_schema
from collector._archive.lake_handoff import _FOUND_SQL, CANDIDATES

HEADER = '''"""The lake's tables as a fresh archive publishes them: layout and columns (generated; do not edit by hand).

Readers give a table that has no files yet this schema. ``collector._archive.lake.lake_schema`` makes it from the
migrations (``candidates``: from the query of ``collector._archive.lake_handoff``); tests/integration/test_lake.py
fails when the two differ (regenerate: ``python -m tests.helpers.lake_schema_render``).
"""

from __future__ import annotations

#: table -> (layout: "post" (slot and month) | "slot", ((column, DuckDB type), ...))
LAKE_SCHEMA: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
'''


def _candidates(archive: Archive) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The handed-on channels (``collector._archive.lake_handoff``), which a publish writes beside the archive's
    tables: its query's columns but the slot, then the finder (``collector``), then the slot readers add.
    tests/integration/test_lake_damaged.py pins this to a file publish wrote."""
    described = archive.con.execute(f"DESCRIBE {_FOUND_SQL}").fetchall()
    columns = tuple((str(r[0]), str(r[1])) for r in described if r[0] != "slot")
    return "slot", (*columns, ("collector", "VARCHAR"), ("slot", "INTEGER"))


def render() -> str:
    with tempfile.TemporaryDirectory() as tmp, Archive(Path(tmp) / "fresh.duckdb") as archive:
        schema = lake_schema(archive)
        schema[CANDIDATES] = _candidates(archive)
    lines = [HEADER.rstrip("\n")]
    for table, (layout, columns) in sorted(schema.items()):
        lines.append(f"    {json.dumps(table)}: ({json.dumps(layout)}, (")
        lines.extend(f"        ({json.dumps(name)}, {json.dumps(kind)})," for name, kind in columns)
        lines.append("    )),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (Path(__file__).resolve().parents[2] / "analysis" / "_lake_schema.py").write_text(render(), encoding="utf-8")
