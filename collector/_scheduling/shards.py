"""Which collector owns which lake slot: the assignment file, and a balanced plan that moves few slots.

Pure functions, no I/O beyond reading the assignment file. The assignment maps each of the lake's 64
slots (``collector._archive.slots.slot``) to a collector name. Two formats, both kept in version control:

TOML::

    [slots]
    main = "0-31"          # ranges and single slots, comma-separated
    second = "32-63"

CSV (a header, then one row per slot: a whole number 0-63, no ranges)::

    slot,collector
    0,main
    1,second

Either is UTF-8 text (a byte-order mark is allowed). Every error names the file and the line.

A slot named by no line is unowned (nobody collects its channels); a slot named twice is an error.
Adding a collector moves only the slots you move: never ``hash % number_of_collectors``.

Example::

    >>> a = parse_toml('[slots]\\nmain = "0-31"\\nsecond = "32-63"')
    >>> owner(a, 1234567890)
    'second'
    >>> sorted(plan(a, {s: 1.0 for s in range(64)}, ["main", "second", "third"]).values()).count("third")
    20
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from collector._archive.slots import SLOTS, collector_name_problem, slot
from collector._parse.text_file import NotText, decode_text

#: slot -> collector name; slots nobody owns are absent.
Assignment = dict[int, str]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_RANGE = re.compile(r"^\s*(\d{1,2})\s*(?:-\s*(\d{1,2})\s*)?$", re.ASCII)   # 0-9 only, not '²' or '٣'
_TOML_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
#: What to do with an assignment file that is not UTF-8.
_SAVE_AS_UTF8 = "save it as UTF-8 text and run again"


class AssignmentError(ValueError):
    """The assignment file is unreadable or inconsistent; the message names the file and the line."""


def _claim(out: Assignment, s: int, name: str, where: str) -> None:
    if not 0 <= s < SLOTS:
        raise AssignmentError(f"{where}: slot {s} is not one of 0-{SLOTS - 1}")
    problem = collector_name_problem(name)
    if problem is not None:
        raise AssignmentError(f"{where}: {problem}")
    if s in out and out[s] != name:
        raise AssignmentError(f"{where}: slot {s} is given to both {out[s]!r} and {name!r}")
    out[s] = name


def parse_toml(text: str, where: str = "assignment") -> Assignment:
    """``[slots]`` table: collector = "ranges" (``"0-15, 40, 42-44"``)."""
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        said, found = str(exc)[:200], _TOML_LINE.search(str(exc))
        at = where
        if found:
            at, said = f"{where}:{found.group(1)}", f"{_TOML_LINE.sub('', said)} at column {found.group(2)}"
        raise AssignmentError(f"{at}: not valid TOML ({said}); the form is a [slots] table with one line per "
                              'collector, e.g. main = "0-31" (docs/scale.md)') from None
    table = doc.get("slots")
    if not isinstance(table, dict):
        raise AssignmentError(f"{where}: needs a [slots] table: collector = \"0-31\"")
    out: Assignment = {}
    for name, spec in table.items():
        problem = collector_name_problem(name)
        if problem is not None:             # before the name goes into any message
            raise AssignmentError(f"{where}: [slots]: {problem}")
        if not isinstance(spec, str):
            raise AssignmentError(f"{where}: [slots] {name}: a string of slots, e.g. \"0-31, 40\"")
        for part in spec.split(","):
            if not part.strip():
                continue
            m = _RANGE.match(part)
            if m is None:
                raise AssignmentError(f"{where}: [slots] {name}: {part.strip()!r} is not a slot or a range a-b")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise AssignmentError(f"{where}: [slots] {name}: range {lo}-{hi} runs backwards")
            for s in range(lo, hi + 1):
                _claim(out, s, name, f"{where}: [slots] {name}")
    return out


def parse_csv(text: str, where: str = "assignment") -> Assignment:
    """``slot,collector`` rows after a header; a slot is a whole number 0-63 (ASCII digits), one per row."""
    out: Assignment = {}
    # any line ends (a classic Mac editor's "\r" too); strict: a quote left open is an error, not a name running
    # to the end of the file
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=None), strict=True)
    try:
        header = next(rows, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["slot", "collector"]:
            shown = ",".join(header or [])[:60]
            raise AssignmentError(f"{where}:1: the first line must be the header 'slot,collector', not {shown!r}")
        for row in rows:
            number = rows.line_num
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise AssignmentError(f"{where}:{number}: expected 'slot,collector' (e.g. 0,main), not "
                                      f"{','.join(row)[:60]!r}")
            _claim(out, _csv_slot(row[0], f"{where}:{number}"), row[1].strip(), f"{where}:{number}")
    except csv.Error as exc:
        raise AssignmentError(f"{where}:{rows.line_num}: not CSV ({exc})") from None
    return out


def _csv_slot(cell: str, where: str) -> int:
    text = cell.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 2 or int(text) >= SLOTS:
        raise AssignmentError(f"{where}: the slot must be a whole number 0-{SLOTS - 1} (one slot per line; ranges "
                              f"such as 0-31 go in the TOML form), not {text[:40]!r}")
    return int(text)


#: The largest assignment file read: 64 slots fit in a few KB in either form (a line per slot, names of at most 64
#: characters: about 4.5 KB as CSV). Every run reads the file; a large one is the wrong file.
MAX_BYTES = 1 << 20


def load(path: str | Path) -> Assignment:
    """The assignment in ``path`` (``.toml`` or ``.csv``)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise AssignmentError(f"{p}: cannot read the assignment ({exc.strerror or exc}); [lake] assignment or "
                              "--assignment names it") from None
    if len(data) > MAX_BYTES:
        raise AssignmentError(f"{p}: more than {MAX_BYTES >> 20} MiB; an assignment of {SLOTS} slots takes a few KB: "
                              "is this the right file? ([lake] assignment or --assignment names it)")
    try:
        text = decode_text(data)
    except NotText as exc:
        raise AssignmentError(f"{p}: {exc}; {_SAVE_AS_UTF8}") from None
    if p.suffix.lower() == ".csv":
        return parse_csv(text, str(p))
    return parse_toml(text, str(p))


def owner(assignment: Mapping[int, str], channel_id: int) -> str | None:
    """The collector that owns ``channel_id``'s slot; None when nobody does."""
    return assignment.get(slot(channel_id))


def owns(assignment: Mapping[int, str], collector: str, channel_id: int) -> bool:
    """True when ``collector`` owns the slot of ``channel_id``."""
    return owner(assignment, channel_id) == collector


def moved(before: Mapping[int, str], after: Mapping[int, str]) -> list[int]:
    """Slots whose owner differs between two assignments (gained, lost or changed)."""
    return sorted(s for s in range(SLOTS) if before.get(s) != after.get(s))


def owners_from_lake(holders: Mapping[int, Iterable[str]], publishers: Iterable[str],
                     own: str | None = None) -> Assignment:
    """Who owns each slot now when there is no assignment file: without one, a collector acts on every channel.

    ``holders``: slot -> the collectors whose lake files hold channels or posts of it; ``publishers``: every
    collector that published to the lake; ``own``: the config's ``[lake] collector``, if there is a config. A
    slot with files is its holder's (``own`` first, else the name that sorts first); a slot without is
    ``own``'s when it published or nobody did, else the only publisher's; with several publishers and no
    ``own`` among them it is unowned. Names no collector can have (:func:`collector_name_problem`) are ignored.

    >>> owners_from_lake({3: {"main"}}, ["main"]) == dict.fromkeys(range(SLOTS), "main")
    True
    >>> owners_from_lake({}, [], "main")[63], owners_from_lake({3: {"a"}}, ["a", "b"]).get(4)
    ('main', None)
    """
    def valid(names: Iterable[str]) -> set[str]:       # a file name in the lake that is no collector's is ignored
        return {n for n in names if collector_name_problem(n) is None}

    who = valid(publishers).union(*map(valid, holders.values()))
    if own is not None and (own in who or not who):
        default: str | None = own
    else:
        default = next(iter(who)) if len(who) == 1 else None
    out: Assignment = {}
    for s in range(SLOTS):
        held = valid(holders.get(s, ()))
        found = (own if own in held else min(held)) if held else default
        if found is not None:
            out[s] = found
    return out


def plan_names(known: Iterable[str], n: int) -> tuple[list[str], list[str]]:
    """The ``n`` collector names of a plan: the first ``n`` of ``known`` (in order, each once; a name the lake
    could not publish under is skipped), then placeholders ``collectorK`` (K its place, skipping names taken)
    when fewer are known. Returns (names, the placeholders).

    >>> plan_names(["main", "second", "main", "bad name"], 3)
    (['main', 'second', 'collector3'], ['collector3'])
    """
    names = [name for name in dict.fromkeys(known) if collector_name_problem(name) is None][:n]
    placeholders: list[str] = []
    k = len(names)
    while len(names) < n:
        k += 1
        if f"collector{k}" not in names:
            names.append(f"collector{k}")
            placeholders.append(names[-1])
    return names, placeholders


def plan(current: Mapping[int, str], cost: Mapping[int, float], collectors: Iterable[str], *,
         tolerance: float = 0.05) -> Assignment:
    """A balanced assignment of every slot to ``collectors`` that keeps as many current owners as it can.

    ``cost``: each slot's measured request cost (e.g. requests per day of its channels; a slot without
    one costs 0). Greedy and deterministic: every slot stays with its current owner if that owner is in
    ``collectors``; slots without one go to the least loaded collector (costliest first); then, while the
    most loaded collector is more than ``tolerance`` above the mean, one of its slots moves to the least
    loaded (the one that evens the pair best). Moves stop as soon as the load is within the tolerance.
    Last, slots that cost nothing yet move (the highest first) from the collector holding the most slots to
    the one holding the fewest until their counts differ by at most one, or no such slot is left: new
    channels land in every slot alike, so an empty slot is future load. The result owns all 64 slots.
    """
    names = sorted(dict.fromkeys(collectors))
    if not names:
        raise AssignmentError("plan: name at least one collector")
    for name in names:
        problem = collector_name_problem(name)
        if problem is not None:
            raise AssignmentError(f"plan: {problem}")
    out: Assignment = {s: current[s] for s in range(SLOTS) if current.get(s) in names}
    load_of = {n: 0.0 for n in names}
    for s, n in out.items():
        load_of[n] += cost.get(s, 0.0)
    for s in sorted((s for s in range(SLOTS) if s not in out), key=lambda s: (-cost.get(s, 0.0), s)):
        least = min(names, key=lambda n: (load_of[n], sum(1 for v in out.values() if v == n), n))
        out[s] = least
        load_of[least] += cost.get(s, 0.0)
    target = sum(load_of.values()) / len(names)
    for _ in range(SLOTS * len(names)):
        hi = max(names, key=lambda n: (load_of[n], n))
        lo = min(names, key=lambda n: (load_of[n], n))
        gap = load_of[hi] - load_of[lo]
        if load_of[hi] <= target * (1 + tolerance):
            break
        # the move that brings the pair closest to even; any 0 < cost < gap lowers the larger of the two
        movable = [s for s, n in out.items() if n == hi and 0 < cost.get(s, 0.0) < gap]
        if not movable:
            break
        best = min(movable, key=lambda s: (abs(gap / 2 - cost.get(s, 0.0)), s))
        out[best] = lo
        load_of[hi] -= cost.get(best, 0.0)
        load_of[lo] += cost.get(best, 0.0)
    _even_out_free_slots(out, cost, names)
    return dict(sorted(out.items()))


def _even_out_free_slots(out: Assignment, cost: Mapping[int, float], names: list[str]) -> None:
    """Move slots that cost nothing from the collector holding the most slots to the one holding the fewest
    (highest slot first, a run of them to one collector at a time, so the ranges stay few) until the counts
    differ by at most one, or no such slot is left; the loads do not change."""
    count = {n: 0 for n in names}
    for n in out.values():
        count[n] += 1
    most = -(-SLOTS // len(names))           # the most slots a collector holds once the counts are even
    for _ in range(SLOTS):
        free = {n: sorted(s for s, o in out.items() if o == n and cost.get(s, 0.0) <= 0) for n in names}
        givers = [n for n in names if free[n]]
        if not givers:
            return
        hi = max(givers, key=lambda n: (count[n], n))
        lo = min(names, key=lambda n: (count[n], n))
        if count[hi] - count[lo] <= 1:
            return
        # a run down to the even count, never below it: a giver drained further would take slots back from
        # another collector later, and every such slot is one more moved
        run = 0
        while free[hi] and count[hi] - count[lo] > 1 and (count[hi] > most or run == 0):
            out[free[hi].pop()] = lo
            count[hi] -= 1
            count[lo] += 1
            run += 1


def toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when TOML allows it, else a basic string with quotes, backslashes and
    every character that is not printable escaped, so no name can end the line or add a key. Raises
    :class:`AssignmentError` for a lone surrogate (no TOML text can hold it).

    >>> toml_key("main"), toml_key('a"b'), toml_key("x\\ny")
    ('main', '"a\\\\"b"', '"x\\\\u000Ay"')
    """
    if _BARE_KEY.fullmatch(name):
        return name
    out = []
    for c in name:
        if c in '"\\':
            out.append("\\" + c)
        elif "\ud800" <= c <= "\udfff":
            raise AssignmentError(f"collector name {name[:64]!r}: a lone surrogate cannot be written as TOML")
        elif c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04X}" if ord(c) < 0x10000 else f"\\U{ord(c):08X}")
    return '"' + "".join(out) + '"'


def render_toml(assignment: Mapping[int, str]) -> str:
    """``assignment`` as the TOML form, slots as compact ranges per collector; any name is quoted as TOML needs
    (:func:`toml_key`), so the text always parses back to ``assignment``."""
    lines = ["[slots]"]
    for name in sorted(set(assignment.values())):
        slots = sorted(s for s, n in assignment.items() if n == name)
        parts: list[str] = []
        start = prev = slots[0]
        for s in [*slots[1:], -2]:
            if s != prev + 1:
                parts.append(str(start) if start == prev else f"{start}-{prev}")
                start = s
            prev = s
        lines.append(f'{toml_key(name)} = "{", ".join(parts)}"')
    return "\n".join(lines) + "\n"
