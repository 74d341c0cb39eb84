"""Slot assignments (issue 15): the file formats, owners by the lake's slot hash, and plans that move few slots."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import pytest

from collector._archive.slots import SLOTS, slot
from collector._scheduling.shards import (
    AssignmentError,
    load,
    moved,
    owner,
    owns,
    parse_csv,
    parse_toml,
    plan,
    render_toml,
)


def test_toml_and_csv_say_the_same_and_owners_follow_the_lake_slot(tmp_path: Path) -> None:
    toml = tmp_path / "slots.toml"
    toml.write_text('[slots]\nmain = "0-31"\nsecond = "32-62"\n', encoding="utf-8")
    csv = tmp_path / "slots.csv"
    csv.write_text("slot,collector\n" + "".join(f"{s},{'main' if s < 32 else 'second'}\n" for s in range(63)),
                   encoding="utf-8")
    a = load(toml)
    assert a == load(csv)
    assert 63 not in a                                   # unowned
    for cid in random.Random(1).sample(range(1, 10**13), 500):
        expected = None if slot(cid) == 63 else ("main" if slot(cid) < 32 else "second")
        assert owner(a, cid) == expected
        assert owns(a, "main", cid) == (expected == "main")
    assert parse_toml(render_toml(a)) == a


@pytest.mark.parametrize("text, message", [
    ('[slots]\nmain = "0-31"\nsecond = "31-63"\n', "given to both"),
    ('[slots]\nmain = "0-64"\n', "not one of"),
    ('[slots]\nmain = "9-3"\n', "backwards"),
    ('[slots]\n"bad name" = "1"\n', "collector name"),
    ('[slots]\nmain = "x"\n', "not a slot"),
    ('main = "1"\n', "[slots]"),
])
def test_bad_toml_says_why(text: str, message: str) -> None:
    with pytest.raises(AssignmentError, match=message.replace("[", r"\[")):
        parse_toml(text)


def test_bad_csv_names_the_line() -> None:
    with pytest.raises(AssignmentError, match=":3:"):
        parse_csv("slot,collector\n1,main\nfoo\n")
    with pytest.raises(AssignmentError, match="header"):
        parse_csv("1,main\n")
    with pytest.raises(AssignmentError, match=r":2: not CSV \(unexpected end of data\)"):
        parse_csv('slot,collector\n0,"main\n')            # a quote left open (it ran to the end of the file)


def test_csv_with_any_line_ends_reads_the_same() -> None:
    for end in ("\n", "\r\n", "\r"):
        assert parse_csv(end.join(["slot,collector", "0,main", "1,second", ""])) == {0: "main", 1: "second"}


def test_a_plan_balances_by_cost_and_moves_only_what_it_must() -> None:
    rng = random.Random(7)
    cost = {s: rng.uniform(1, 10) for s in range(SLOTS)}
    current = {s: ("main" if s < 32 else "second") for s in range(SLOTS)}
    three = plan(current, cost, ["main", "second", "third"])
    assert set(three) == set(range(SLOTS))
    loads = {n: sum(cost[s] for s, o in three.items() if o == n) for n in ("main", "second", "third")}
    mean = sum(cost.values()) / 3
    assert max(loads.values()) <= mean * 1.05 + max(cost.values())
    changed = moved(current, three)
    assert all(three[s] == "third" or current[s] != three[s] for s in changed)
    assert len(changed) < SLOTS / 2                      # far from a rehash (which moves ~2/3 of the slots)
    # a balanced assignment is left as it is; unowned slots are filled
    assert moved(three, plan(three, cost, ["main", "second", "third"])) == []
    partial = {s: n for s, n in three.items() if s % 5}
    assert moved(partial, plan(partial, cost, ["main", "second", "third"])) == [s for s in range(SLOTS) if s % 5 == 0]


def test_the_shards_command_reports_owners_publishes_and_unowned_slots(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from collector import Archive
    from collector._archive.lake import publish
    from collector._cli.app import app
    from tests.helpers.simworld import collect_twice

    archive = collect_twice(tmp_path / "archive.duckdb").path
    with Archive(archive) as opened:
        publish(opened, tmp_path / "lake", collector="a")
    (tmp_path / "slots.csv").write_text("slot,collector\n" + "".join(f"{s},{'a' if s < 40 else 'b'}\n"
                                                                     for s in range(60)), encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(app, ["shards", "--lake", str(tmp_path / "lake"), "--assignment",
                                str(tmp_path / "slots.csv")], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "unowned slots: 60-63" in shown.output
    lines = {line.split()[1]: line for line in shown.output.splitlines() if line.startswith("│")}
    assert "never" in lines["b"] and " h " in lines["a"] + " "
    # channels in b's slots were published by a only: b has not taken them over (public ones: a group, private or
    # deleted channel is nobody's to take over)
    with Archive(archive, read_only=True) as opened:
        ids = [r[0] for r in opened.con.execute(
            "SELECT channel_id FROM channels WHERE status IS NULL OR status NOT IN ('group', 'private', 'gone')"
        ).fetchall()]
        assert len(ids) < opened.con.execute("SELECT count(*) FROM channels").fetchall()[0][0]
    strays = sorted({slot(c) for c in ids if 40 <= slot(c) < 60})
    stray_line = next(line for line in shown.output.splitlines() if line.startswith("slots with channels"))
    assert stray_line.endswith(render_toml(dict.fromkeys(strays, "x")).split('"')[1] if strays else "-")
    planned = runner.invoke(app, ["shards", "--lake", str(tmp_path / "lake"), "--assignment",
                                  str(tmp_path / "slots.csv"), "--plan", "3"])
    assert planned.exit_code == 0, planned.output
    proposed = parse_toml(planned.output.split("#")[0])
    assert set(proposed) == set(range(SLOTS)) and len(set(proposed.values())) == 3
    bad = runner.invoke(app, ["shards", "--lake", str(tmp_path / "lake"), "--assignment", str(tmp_path / "nope.toml")])
    assert bad.exit_code == 2 and "cannot read the assignment" in bad.output
    # a manifest is outside data: a publish time without a time zone (no publish writes one) is read as UTC
    manifest = tmp_path / "lake" / "_manifests" / "a.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**data, "published_at": "2025-01-01T00:00:00"}), encoding="utf-8")
    naive = runner.invoke(app, ["shards", "--lake", str(tmp_path / "lake"), "--assignment",
                                str(tmp_path / "slots.csv")], env={"COLUMNS": "80"})
    assert naive.exit_code == 0, naive.output
    assert "2025-01-01 00:00" in naive.output


# -- hostile collector names (issue 17 review: `shards --plan` printed them as TOML unchecked) ---------------------
HOSTILE_NAMES = [
    "main\n",                          # a trailing newline (a `$` in the name's pattern let it through)
    "a\nb = \"0-63\"",                 # a key injected on the next line
    'q"uote', "back\\slash", "a]b", "[evil]", "a b", "a=b", "a.b", "x\x00", "bell\x07", "esc\x1b[2J", "del\x7f",
    "\u202etxt", "é", "-lead", "_lead", "",
    "x" * 65, "x" * 100_000,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_in_the_assignment_are_refused_in_one_line(name: str) -> None:
    """A collector name is read only if it is one the lake can publish under: 1-64 letters, digits, '-' and
    '_', starting with a letter or digit. Anything else, in TOML or CSV, is a one-line error naming it (cut)."""
    key = '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in name) + '"'
    csv_text = 'slot,collector\n3,"' + name.replace('"', '""') + '"\n'
    for parse, text in ((parse_toml, f"[slots]\n{key} = \"1-2\"\n"), (parse_csv, csv_text)):
        if parse is parse_csv and name != name.strip():
            continue                   # CSV cells are stripped: "main\n" is the name "main"
        with pytest.raises(AssignmentError, match="collector name") as caught:
            parse(text)
        message = str(caught.value)
        assert "\n" not in message and len(message) < 300, message
    with pytest.raises(AssignmentError, match="collector name"):
        plan({}, {}, ["main", name])


ODD_BUT_VALID = ["c" * 64, "123", "true", "inf", "nan", "a-b_c", "0x1F", "1979-05-27", "Z"]


def test_render_toml_quotes_any_name_and_parses_back() -> None:
    """render_toml writes valid TOML whatever the names (a library caller may pass any): tomllib reads back the
    same owners. Names that are bare keys stay bare."""
    names = HOSTILE_NAMES + ODD_BUT_VALID
    assignment = {s: names[s % len(names)] for s in range(SLOTS)}
    doc = tomllib.loads(render_toml(assignment))
    back = {}
    for name, spec in doc["slots"].items():
        for part in spec.split(", "):
            lo, _, hi = part.partition("-")
            back.update(dict.fromkeys(range(int(lo), int(hi or lo) + 1), name))
    assert back == assignment
    assert "\nmain = " in render_toml({0: "main"})


def test_the_printed_plan_parses_back_to_the_same_assignment_at_80_columns(tmp_path: Path) -> None:
    """`shards --plan` prints TOML that reads back as the plan: long names and fragmented slot lists are not
    wrapped at the terminal's width, odd names are quoted or bare as TOML requires, hostile ones refused."""
    from typer.testing import CliRunner

    from collector._cli.app import app

    (tmp_path / "lake").mkdir()
    owners = ODD_BUT_VALID
    (tmp_path / "slots.csv").write_text(
        "slot,collector\n" + "".join(f"{s},{owners[s % len(owners)]}\n" for s in range(SLOTS)), encoding="utf-8")
    current = load(tmp_path / "slots.csv")
    runner = CliRunner()
    args = ["shards", "--lake", str(tmp_path / "lake"), "--assignment", str(tmp_path / "slots.csv")]
    planned = runner.invoke(app, [*args, "--plan", str(len(owners))], env={"COLUMNS": "80"})
    assert planned.exit_code == 0, planned.output
    toml_text = planned.output.split("\n# ")[0]
    proposed = parse_toml(toml_text)
    assert proposed == plan(current, {}, owners) == current     # nothing to balance: every slot stays
    for name in HOSTILE_NAMES[:3]:
        (tmp_path / "bad.toml").write_text(
            "[slots]\n" + '"' + name.encode("unicode_escape").decode().replace('"', '\\"') + '" = "1"\n',
            encoding="utf-8")
        bad = runner.invoke(app, [*args[:-1], str(tmp_path / "bad.toml"), "--plan", "2"], env={"COLUMNS": "80"})
        assert bad.exit_code == 2 and "collector name" in bad.output, bad.output
        assert len(bad.output.strip().splitlines()) == 1, bad.output


# -- shards --plan without an assignment file (issue 15 review: it ignored who collects now, invented names) -------
def test_a_plan_of_free_slots_moves_half_and_keeps_ranges_few() -> None:
    everything = dict.fromkeys(range(SLOTS), "main")
    two = plan(everything, {}, ["main", "second"])
    assert render_toml(two) == '[slots]\nmain = "0-31"\nsecond = "32-63"\n' and len(moved(everything, two)) == 32
    three = plan(everything, {5: 1.0}, ["main", "second", "third"])
    assert sorted(list(three.values()).count(n) for n in ("main", "second", "third")) == [21, 21, 22]
    assert render_toml(three).count(",") <= 2                   # a run of slots each, not every third slot


@pytest.mark.parametrize(("current", "names"), [
    ({s: "main" if s < 32 else "second" for s in range(SLOTS)}, ["main", "second", "third"]),
    ({s: "abc"[s % 3] for s in range(SLOTS)}, ["a", "b", "c", "d"]),
    ({s: "abcd"[s // 16] for s in range(SLOTS)}, ["a", "b", "c", "d", "e"]),
])
def test_a_plan_of_free_slots_for_one_more_collector_moves_the_fewest_slots(current: dict[int, str],
                                                                            names: list[str]) -> None:
    """A young lake (slots that cost nothing): a newcomer gets its share from everyone, each giver keeping its own
    share (before: the first giver was drained below it and refilled from another, 31 moves where 21 do)."""
    new = plan(current, {}, names)
    quota, extra = divmod(SLOTS, len(names))
    have = sorted((list(current.values()).count(n) for n in names), reverse=True)
    least = SLOTS - sum(min(h, q) for h, q in zip(have, [quota + 1] * extra + [quota] * (len(names) - extra),
                                                   strict=True))
    assert len(moved(current, new)) == least
    assert max(list(new.values()).count(n) for n in names) - min(list(new.values()).count(n) for n in names) <= 1


def test_plan_without_an_assignment_file_starts_from_who_collects_and_names_the_configs_collectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lake only `main` published, no assignment file yet (so `main` collects every slot), a config naming a
    second collector: `--plan 2` keeps about half the slots with `main`, gives the rest to `second` (no invented
    name) and says about 32 slots change owner, not 64. The output, comments and all, is valid TOML."""
    import re

    from typer.testing import CliRunner

    from collector import Archive
    from collector._archive.lake import publish
    from collector._cli.app import app
    from tests.helpers.simworld import collect_twice

    archive = collect_twice(tmp_path / "archive.duckdb").path
    with Archive(archive) as opened:
        publish(opened, tmp_path / "lake", collector="main")
    config = tmp_path / "tgspread.toml"
    config.write_text('[lake]\npath = "lake"\n\n[collectors.second]\narchive = "second.duckdb"\n', encoding="utf-8")
    runner = CliRunner()
    planned = runner.invoke(app, ["shards", "--config", str(config), "--plan", "2"], env={"COLUMNS": "80"})
    assert planned.exit_code == 0, planned.output
    tomllib.loads(planned.output)
    proposed = parse_toml(planned.output)
    assert set(proposed) == set(range(SLOTS)) and set(proposed.values()) == {"main", "second"}
    kept = list(proposed.values()).count("main")
    assert 28 <= kept <= 36, planned.output
    changed = re.search(r"^# (\d+) slots? change owner", planned.output, re.MULTILINE)
    assert changed is not None and int(changed.group(1)) == SLOTS - kept, planned.output
    assert "# no assignment file: each slot taken as collected now by main" in planned.output
    assert "placeholder" not in planned.output and "collector1" not in planned.output
    # more collectors than the config names: placeholders, named in a comment line to rename
    three = runner.invoke(app, ["shards", "--config", str(config), "--plan", "3"], env={"COLUMNS": "80"})
    assert three.exit_code == 0, three.output
    tomllib.loads(three.output)
    assert set(parse_toml(three.output).values()) == {"main", "second", "collector3"}
    assert re.search(r"^# collector3: a placeholder name.*rename", three.output, re.MULTILINE), three.output
    # without a config: the collector that published is the current owner; the rest are placeholders
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")             # no ./tgspread.toml
    bare = runner.invoke(app, ["shards", "--lake", str(tmp_path / "lake"), "--plan", "2"], env={"COLUMNS": "80"})
    assert bare.exit_code == 0, bare.output
    assert list(parse_toml(bare.output).values()).count("main") == kept
    assert "# collector2: a placeholder name" in bare.output


def test_an_assignment_file_of_megabytes_is_refused_without_being_parsed(tmp_path: Path) -> None:
    """Every run reads it; 64 slots take a few KB (a 12 MB file took 73 s to parse)."""
    big = tmp_path / "slots.toml"
    big.write_text('[slots]\nmain = "0-63"\n' + "# padding\n" * 120_000, encoding="utf-8")
    with pytest.raises(AssignmentError, match=r"more than 1 MiB; an assignment of 64 slots takes a few KB"):
        load(big)
