"""`tgspread shards`: who owns which lake slot, what each collector published and when, what nobody owns.

Reads the assignment file (``[lake] assignment`` or ``--assignment``) and the lake (manifests and the
``channels`` and ``posts`` files); never the archive, never the network. ``--plan N`` prints a balanced
assignment for N collectors (``collector.scheduling.shards.plan``) as TOML, to review and commit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.markup import escape
from rich.table import Table

from collector.archive.slots import SLOTS, slot_sql
from collector.config import load_config
from collector.scheduling.shards import Assignment, AssignmentError, load, moved, plan, render_toml

from .common import ConfigOpt, Exit, errors, fail, stdout

__all__ = ["lake_slots", "register"]


def lake_slots(lake: Path) -> dict[int, tuple[int, int, set[str]]]:
    """Per slot of ``lake``: (channels, posts of the lake's last 30 days, collectors whose files hold it)."""
    out: dict[int, tuple[int, int, set[str]]] = {}
    con = duckdb.connect()
    try:
        chans = sorted((lake / "channels").glob("slot=*/*.parquet"))
        if chans:
            listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in chans) + "]"
            rows = con.execute(
                f"SELECT {slot_sql('channel_id')} AS s, count(DISTINCT channel_id), "
                f"list(DISTINCT regexp_extract(filename, '([^/]+)\\.parquet$', 1)) "
                f"FROM read_parquet({listing}, filename = true, hive_partitioning = false) GROUP BY s").fetchall()
            for s, n, names in rows:
                out[int(s)] = (int(n), 0, set(names))
        posts = sorted((lake / "posts").glob("slot=*/month=*/*.parquet"))
        if posts:
            listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in posts) + "]"
            rows = con.execute(
                "SELECT slot, count(DISTINCT (channel_id, message_id)) FROM ("
                f"SELECT slot, channel_id, message_id, posted_at FROM read_parquet({listing}, "
                "hive_partitioning = true, hive_types = {'slot': INTEGER, 'month': VARCHAR}) "
                "QUALIFY posted_at >= max(posted_at) OVER () - INTERVAL 30 DAY) GROUP BY slot").fetchall()
            for s, n in rows:
                c, _, names = out.get(int(s), (0, 0, set()))
                out[int(s)] = (c, int(n), names)
    finally:
        con.close()
    return out


def _manifests(lake: Path) -> dict[str, datetime | None]:
    out: dict[str, datetime | None] = {}
    for path in sorted((lake / "_manifests").glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8")).get("published_at")
            out[path.stem] = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except (OSError, ValueError, AttributeError):
            out[path.stem] = None
    return out


def _ranges(slots: list[int]) -> str:
    return render_toml(dict.fromkeys(slots, "x")).split('"')[1] if slots else "-"


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the ``tgspread`` app."""

    @app.command("shards")
    def shards_command(
        config: ConfigOpt = None,
        lake: Annotated[Path | None, typer.Option(
            "--lake", metavar="DIR", file_okay=False, help="The lake (default: the config's [lake] path).")] = None,
        assignment: Annotated[Path | None, typer.Option(
            "--assignment", metavar="FILE", dir_okay=False,
            help="Slot -> collector file, TOML or CSV (default: the config's [lake] assignment).")] = None,
        plan_n: Annotated[int | None, typer.Option(
            "--plan", metavar="N", min=1, max=SLOTS,
            help="Print a balanced assignment for N collectors (by the slots' recent posts and channels), "
                 "moving as few slots as it can.")] = None,
    ) -> None:
        """Show the lake's slot assignment: channels and recent posts per collector, each collector's last
        publish and its lag, the slots nobody owns, and channels in slots whose owner has not published them.
        See docs/scale.md."""
        with errors():
            cfg = load_config(config)
            root = lake or cfg.lake
            if root is None:
                fail(Exit.USAGE, "no lake: pass --lake DIR or set [lake] path in the config")
            file = assignment or cfg.lake_assignment
            current: Assignment = {}
            if file is not None:
                try:
                    current = load(file)
                except AssignmentError as exc:
                    fail(Exit.USAGE, str(exc))
            per_slot = lake_slots(root)
            published = _manifests(root)
            now = datetime.now(UTC)
            if plan_n is not None:
                names = sorted(set(current.values()))[:plan_n]
                names += [f"collector{i}" for i in range(len(names) + 1, plan_n + 1)]
                # request cost of a slot: one history request per pass per channel, plus one per 100 new posts
                cost = {s: c + p / 100 for s, (c, p, _) in per_slot.items()}
                proposed = plan(current, cost, names)
                stdout.print(escape(render_toml(proposed)), end="", highlight=False)
                stdout.print(f"# {len(moved(current, proposed))} slot(s) change owner", highlight=False)
                return
            table = Table(title=f"lake {escape(str(root))}", title_justify="left")
            for col, justify in (("collector", "left"), ("slots", "right"), ("channels", "right"),
                                 ("posts 30 d", "right"), ("last publish", "left"), ("lag", "right")):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
            for name in sorted(set(current.values()) | set(published)):
                owned = [s for s, n in current.items() if n == name]
                chans = sum(per_slot.get(s, (0, 0, set()))[0] for s in owned)
                posts = sum(per_slot.get(s, (0, 0, set()))[1] for s in owned)
                when = published.get(name)
                lag = f"{(now - when).total_seconds() / 3600:.1f} h" if when else "never"
                table.add_row(escape(name), str(len(owned)), f"{chans:,}", f"{posts:,}",
                              f"{when:%Y-%m-%d %H:%M}" if when else "-", lag)
            stdout.print(table)
            unowned = [s for s in range(SLOTS) if s not in current]
            stdout.print(f"unowned slots: {_ranges(unowned)}", highlight=False)
            stray = sorted(s for s, (_, _, names) in per_slot.items() if s in current and current[s] not in names)
            stdout.print(f"slots with channels the owner has not published: {_ranges(stray)}", highlight=False)
