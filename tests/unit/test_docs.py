"""The README documents every command and option of ``tgspread``, and starts with the two commands.

The checker works on the command tree typer builds, so a new command or option without a README entry
fails here. Each command needs a ``### tgspread <command>`` section naming every visible option.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main

from collector._cli.app import app
from collector._cli.common import Exit
from collector._config import load_config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def _options(command: Any) -> list[str]:
    """The long option names of a command, e.g. ``--archive``; hidden ones and --help excluded."""
    names = []
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option" or param.name == "help":
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        names.append(longs[0] if longs else param.opts[0])
    return names


def _section(readme: str, command: str) -> str | None:
    m = re.search(rf"^### tgspread {re.escape(command)}\s*$(.*?)(?=^#{{1,3}} |\Z)", readme, re.M | re.S)
    return m.group(1) if m else None


def undocumented(readme: str) -> list[str]:
    """Every command without a README section and every option its section does not name."""
    missing = []
    for name, command in sorted(_commands().items()):
        if getattr(command, "hidden", False):
            continue
        if f"tgspread {name}" not in readme:
            missing.append(f"command {name}")
            continue
        section = _section(readme, name)
        if section is None:
            missing.append(f"section '### tgspread {name}'")
            continue
        missing += [f"{name} {opt}" for opt in _options(command) if f"`{opt}" not in section]
    group = typer.main.get_command(app)
    missing += [f"global {opt}" for opt in _options(group) if f"`tgspread {opt}" not in readme
                and f"tgspread {opt} " not in readme]
    return missing


def test_every_command_and_option_is_documented() -> None:
    assert undocumented(README.read_text(encoding="utf-8")) == []


def test_the_checker_notices_a_missing_command_and_option() -> None:
    readme = README.read_text(encoding="utf-8")
    without_status = re.sub(r"^### tgspread status.*?(?=^## )", "", readme, flags=re.M | re.S)
    without_status = without_status.replace("tgspread status", "tgspread st")
    assert "command status" in undocumented(without_status)
    without_wait = readme.replace("- `--wait SECONDS`: how long to wait for an archive another process", "- x")
    assert "collect --wait" in undocumented(without_wait)


def test_commands_are_the_expected_ones() -> None:
    assert {"login", "collect", "demo", "status"} <= set(_commands())


def test_readme_starts_with_make_demo_and_make_test() -> None:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("```")
    assert lines[1:4] == ["make demo", "make test", "```"]


def test_exit_codes_are_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    table = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in Exit:
        assert re.search(rf"^\| {int(code)} \|", table, re.M), f"exit code {int(code)} ({code.name}) undocumented"


def test_readme_placeholders_for_other_sections() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "## Analysis: what can I measure" in readme
    assert "## Other ways in: web previews and Desktop exports" in readme


@pytest.mark.parametrize("key", ["archive", "session", "channels", "api_id", "api_hash", "flood_sleep_threshold",
                                 "checkpoints", "snapshot_every"])
def test_config_keys_are_documented(key: str) -> None:
    assert f"`{key}`" in README.read_text(encoding="utf-8") or f"`[telegram] {key}`" in README.read_text(
        encoding="utf-8") or f"`[refresh] {key}`" in README.read_text(encoding="utf-8")


def test_example_config_and_readme_config_are_valid(tmp_path: Path) -> None:
    example = ROOT / "tgspread.example.toml"
    cfg = load_config(example, env={}, cwd=tmp_path)
    assert cfg.channels and cfg.flood_sleep_threshold == 60
    block = README.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
    conf = tmp_path / "readme.toml"
    conf.write_text(block, encoding="utf-8")
    tomllib.loads(block)
    cfg = load_config(conf, env={}, cwd=tmp_path)
    assert cfg.api_id == 1234567 and cfg.credentials().api_id == 1234567


def _relative_links(md: Path) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", md.read_text(encoding="utf-8"))
            if "://" not in t and not t.startswith("mailto:")]


def test_every_document_is_linked_from_the_readme_and_every_link_resolves() -> None:
    """Issue 17, item 13: docs/concurrency.md was not linked from the README, and the README pointed to an
    ARCHITECTURE document the repository did not have."""
    readme = ROOT / "README.md"
    linked = {(readme.parent / t).resolve() for t in _relative_links(readme)}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"docs not linked from the README: {unlinked}"
    broken = [f"{md.relative_to(ROOT)} -> {t}" for md in [readme, ROOT / "notebooks" / "README.md",
                                                           *sorted((ROOT / "docs").glob("*.md"))]
              for t in _relative_links(md) if not (md.parent / t).exists()]
    assert not broken, broken
