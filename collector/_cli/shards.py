"""`tgspread shards`: who owns which lake slot, what each collector published and when, what nobody owns.

Reads the assignment file (``[lake] assignment`` or ``--assignment``) and the lake (manifests, the ``channels``,
``posts``, ``candidates``, ``run_channels`` and ``run_requests`` files, through ``analysis.lake``); never the
archive, never the network. It also shows slots whose posts come from more than one collector (a slot moved)
and the channels handed on through the lake. ``--plan N`` prints a balanced assignment for N collectors
(``collector._scheduling.shards.plan``) as TOML, to review and commit, balanced by the measured request cost
(``analysis.lake.request_cost``) when the collectors published it.

A lake file or manifest it cannot read (or whose columns are not publish's) is named on stderr with what to do,
left out of what is shown, and makes the exit 1 (the rest of the report is still worth seeing: which collector lags,
what nobody owns); so does every entry outside publish's layout (a folder, a file of another name, a symbolic link:
``analysis.lake.lake_files``), which nothing here or in ``analysis.connect`` reads. A lake that is no folder is
exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import duckdb
import typer
from rich.markup import escape
from rich.table import Table

from analysis.lake import handed_on, lake_files, read_manifests, request_cost, slot_usage, unreadable_files
from collector._archive.slots import SLOTS, slot
from collector._config import Config, load_config
from collector._scheduling.shards import (
    Assignment,
    AssignmentError,
    load,
    moved,
    owners_from_lake,
    plan,
    plan_names,
    render_toml,
)

from .common import ConfigOpt, Exit, errors, fail, is_interrupt, stderr, stdout
from .safe_text import cell, safe
from .words import plural

#: The lake tables this command reads.
_READS = ("channels", "posts", "candidates", "run_requests", "run_channels")
_T = TypeVar("_T")


def _manifests(lake: Path, problems: list[str]) -> tuple[dict[str, datetime | None], set[str]]:
    """(collector -> its last publish (None: not recorded, or the manifest cannot be read), the collectors whose
    manifest cannot be read)."""
    readable, unreadable = read_manifests(lake)
    out: dict[str, datetime | None] = dict.fromkeys((p.stem for p in unreadable), None)
    for name, data in readable.items():
        raw = data.get("published_at")
        try:
            when = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            when = None
        # a manifest is outside data: a time without a zone (no publish writes one) is read as UTC, not compared
        # with an aware time (a TypeError)
        out[name] = when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when
    problems += [f"unreadable manifest {path}: {why}; the last publish of collector {path.stem!r} is unknown; its "
                 "next `tgspread publish` (or `tgspread publish --full`) writes it again"
                 for path, why in unreadable.items()]
    return out, {p.stem for p in unreadable}


def _file_problem(path: Path, why: str) -> str:
    return (f"unreadable file {path}: {why}; left out of what is shown; collector {path.stem!r} rewrites it with "
            "`tgspread publish --full`")


def _damaged(lake: Path, problems: list[str]) -> set[Path]:
    """The files of the tables read here whose footer cannot be read (or is not of publish's schema): named in
    ``problems``, left out; and every entry of the lake outside publish's layout, named (never read)."""
    problems += [f"not read: {path} ({why}); remove it" for path, why in lake_files(lake).odd.items()]
    bad = unreadable_files(lake, _READS)
    problems += [_file_problem(path, why) for path, why in bad.items()]
    return set(bad)


def _read(tables: tuple[str, ...], read: Callable[[], _T], lake: Path, skip: set[Path],
          problems: list[str]) -> _T | None:
    """``read()`` (which leaves out the files in ``skip``). When a file's rows cannot be read (damage behind an
    intact footer), every row of ``tables`` is read to find the files, which are named and left out, and
    ``read()`` runs again; if it still fails: None and a problem."""
    for attempt in (1, 2):
        try:
            return read()
        except duckdb.Error as exc:
            if is_interrupt(exc) or isinstance(exc, duckdb.OutOfMemoryException | duckdb.IOException):
                raise
            error = " ".join(str(exc).split())
        found = {} if attempt == 2 else {
            path: why for path, why in unreadable_files(lake, tables, deep=True).items() if path not in skip}
        problems += [_file_problem(path, why) for path, why in found.items()]
        skip |= set(found)
        if not found:
            break
    problems.append(f"cannot read the lake's {' and '.join(tables)}: {error}; left out of what is shown")
    return None


def _warn(problems: list[str]) -> None:
    """Each problem on stderr, then exit 1: what was shown is partial."""
    for line in problems:
        # file names and reasons come from the lake (hostile data): escapes, never raw control characters
        stderr.print(f"tgspread: warning: {safe(line)}", style="yellow", markup=False, highlight=False,
                     soft_wrap=True)
    if problems:
        raise typer.Exit(int(Exit.PARTIAL))


def _ranges(slots: list[int]) -> str:
    return render_toml(dict.fromkeys(slots, "x")).split('"')[1] if slots else "-"


def _costs(root: Path, per_slot: dict[int, tuple[int, int, set[str]]], skip: set[Path],
           problems: list[str]) -> tuple[dict[int, float], str]:
    """Each slot's request cost and what it is: the requests the collectors recorded (``run_requests``, shared
    among the channels of each run), or, before any were published, an estimate from channels and posts."""
    measured = _read(("run_requests", "run_channels"), lambda: request_cost(root, skip=skip), root, skip,
                     problems) or {}
    if measured:
        return measured, "measured requests per day (run_requests, last 30 days)"
    # one history request per pass per channel, plus one per 100 new posts
    return ({s: c + p / 100 for s, (c, p, _) in per_slot.items()},
            "an estimate (channels + posts / 100: no run_requests in the lake yet)")


def _shared_slots(root: Path) -> dict[int, set[str]]:
    """Slots whose posts come from more than one collector (a slot moved, or a stray): slot -> collectors."""
    out: dict[int, set[str]] = {}
    for name, paths in lake_files(root, ["posts"]).files.get("posts", {}).items():   # publish's layout only
        for path in paths:
            out.setdefault(int(path.parent.parent.name.split("=", 1)[1]), set()).add(name)
    return {s: names for s, names in sorted(out.items()) if len(names) > 1}


def _config_names(cfg: Config) -> list[str]:
    """The collectors a config names: its ``[lake] collector``, then its ``[collectors.NAME]`` tables in file
    order; none without a config."""
    return [cfg.lake_collector, *cfg.collectors] if cfg.source is not None else []


def _print_plan(n: int, cfg: Config, current: Assignment | None, root: Path,
                per_slot: dict[int, tuple[int, int, set[str]]], published: dict[str, datetime | None],
                skip: set[Path], problems: list[str]) -> None:
    """``--plan N``: the proposed assignment as TOML, then comment lines (what moves, by what it is balanced,
    placeholders to rename). ``current`` None: no assignment file, so each slot is taken as its collector's
    now (:func:`owners_from_lake`), and the plan moves as few of those as it can."""
    notes: list[str] = []
    if current is None:
        own = cfg.lake_collector if cfg.source is not None else None
        current = owners_from_lake({s: names for s, (_, _, names) in per_slot.items()}, published, own)
        holders = sorted(set(current.values()))
        notes.append("no assignment file: each slot taken as collected now by "
                     f"{', '.join(holders) if holders else 'nobody'}")
    known = [*_config_names(cfg), *sorted(set(current.values())), *sorted(published)]
    names, placeholders = plan_names(known, n)
    cost, basis = _costs(root, per_slot, skip, problems)
    proposed = plan(current, cost, names)
    # TOML to paste into a file: never wrapped at the terminal's width (a string cannot span lines)
    stdout.print(render_toml(proposed), end="", markup=False, highlight=False, emoji=False, soft_wrap=True)
    notes.append(f"{plural(len(moved(current, proposed)), 'slot')} change owner; balanced by {basis}")
    if placeholders:
        kind = "a placeholder name" if len(placeholders) == 1 else "placeholder names"
        notes.append(f"{', '.join(placeholders)}: {kind}, fewer collectors known than {n} (the "
                     "config's [lake] collector and [collectors.NAME] tables): rename before use")
    for note in notes:
        stdout.print(f"# {note}", markup=False, highlight=False, soft_wrap=True)


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
            help="Print a balanced assignment for N collectors (by the requests each slot's channels cost, as "
                 "recorded; else estimated from its channels and posts), moving as few slots as it can.")] = None,
    ) -> None:
        """Show the lake's slot assignment: channels and recent posts per collector, each collector's last
        publish and its lag, the slots nobody owns, channels in slots whose owner has not published them,
        slots moved between collectors, and channels handed on (and whether their owner collected them).
        A lake file or manifest that cannot be read is named on stderr and left out (exit 1). See docs/scale.md."""
        with errors():
            cfg = load_config(config)
            root = lake or cfg.lake
            if root is None:
                fail(Exit.USAGE, "no lake: pass --lake DIR or set [lake] path in the config")
            if not root.is_dir():
                what = "a file, not a folder" if root.exists() else "no such folder"
                fail(Exit.USAGE, f"no lake at {root} ({what}): check --lake or the config's [lake] path; "
                                 "`tgspread publish` makes the lake")
            file = assignment or cfg.lake_assignment
            current: Assignment = {}
            if file is not None:
                try:
                    current = load(file)
                except AssignmentError as exc:
                    fail(Exit.USAGE, str(exc))
            problems: list[str] = []
            skip = _damaged(root, problems)
            per_slot = _read(("channels", "posts"), lambda: slot_usage(root, skip=skip), root, skip, problems) or {}
            published, unknown = _manifests(root, problems)
            now = datetime.now(UTC)
            if plan_n is not None:
                _print_plan(plan_n, cfg, current if file is not None else None, root, per_slot, published, skip,
                            problems)
                _warn(problems)
                return
            table = Table(title=escape(f"lake {safe(root)}"), title_justify="left")
            for col, justify in (("collector", "left"), ("slots", "right"), ("channels", "right"),
                                 ("posts 30 d", "right"), ("last publish", "left"), ("lag", "right")):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
            for name in sorted(set(current.values()) | set(published)):
                owned = [s for s, n in current.items() if n == name]
                chans = sum(per_slot.get(s, (0, 0, set()))[0] for s in owned)
                posts = sum(per_slot.get(s, (0, 0, set()))[1] for s in owned)
                when = published.get(name)
                lag = f"{(now - when).total_seconds() / 3600:.1f} h" if when else "never"
                last = f"{when:%Y-%m-%d %H:%M}" if when else "-"
                if name in unknown:             # its manifest cannot be read (named on stderr)
                    last, lag = "unreadable", "?"
                table.add_row(cell(name), str(len(owned)), f"{chans:,}", f"{posts:,}", last, lag)
            stdout.print(table)
            unowned = [s for s in range(SLOTS) if s not in current]
            stdout.print(f"unowned slots: {_ranges(unowned)}", highlight=False)
            stray = sorted(s for s, (_, _, names) in per_slot.items() if s in current and current[s] not in names)
            stdout.print(f"slots with channels the owner has not published: {_ranges(stray)}", highlight=False)
            for s, holders in _shared_slots(root).items():
                who = ", ".join(sorted(holders))
                now_owner = current.get(s)
                stdout.print(escape(safe(f"slot {s}: posts from {who} (moved to {now_owner or 'nobody'}; readers keep "
                                         "one row per post)")), highlight=False)      # wrapped at the terminal's width
            found = _read(("candidates", "posts"),
                          lambda: handed_on(root, skip=skip, owner_of=(lambda c: current.get(slot(c))) if current
                                            else None), root, skip, problems) or []
            if found:
                waiting = [f for f in found if not f[3]]
                # two lines, so that each fits 80 columns
                stdout.print(f"handed on: {plural(len(found), 'channel')} found in other collectors' slots,\n"
                             f"  {len(found) - len(waiting):,} collected since, {len(waiting):,} not (yet)",
                             highlight=False, soft_wrap=True)
                for cid, username, finder, _ in waiting[:10]:
                    owner_name = current.get(slot(cid), "nobody")
                    label = f"@{username}" if username else str(cid)
                    stdout.print(escape(safe(f"  {label} (slot {slot(cid)}): found by {finder}, owner {owner_name}")),
                                 highlight=False)
            _warn(problems)
