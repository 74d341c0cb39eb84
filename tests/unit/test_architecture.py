"""docs/ARCHITECTURE.md's tree matches the code: every folder and module of ``collector`` and ``analysis`` is
named in it, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _tree() -> str:
    """The first fenced block of the document: the tree."""
    text = DOC.read_text(encoding="utf-8")
    return text.split("```", 2)[1]


def _named(tree: str) -> tuple[set[str], set[str]]:
    """(folders, modules) the tree names, as paths relative to the repository (``collector/_archive``,
    ``collector/_archive/rows.py``): a line's indentation says which folder it is in."""
    folders: set[str] = set()
    modules: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in tree.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        if first.endswith("/"):
            path = f"{parent}/{first.rstrip('/')}" if parent else first.rstrip("/")
            folders.add(path)
            stack.append((indent, path))
            continue
        # module names at the start of the line (several may share one line, before the description)
        for word in line.split():
            if not re.fullmatch(r"[a-z_0-9]+\.py", word):
                break
            modules.add(f"{parent}/{word}" if parent else word)
    return folders, modules


def test_the_tree_reader_reads_nesting() -> None:
    folders, modules = _named("a/   x\n  b/   y\n    c.py d.py   z\n  e.py   w\n")
    assert folders == {"a", "a/b"} and modules == {"a/b/c.py", "a/b/d.py", "a/e.py"}


def test_every_folder_and_module_is_in_the_tree_and_exists() -> None:
    folders, modules = _named(_tree())
    real_folders = {p.parent.relative_to(ROOT).as_posix() for pkg in ("collector", "analysis")
                    for p in (ROOT / pkg).rglob("__init__.py")}
    real_modules = {p.relative_to(ROOT).as_posix() for pkg in ("collector", "analysis")
                    for p in (ROOT / pkg).rglob("*.py")}
    assert real_folders - folders == set(), "folders missing from docs/ARCHITECTURE.md"
    named_code = {m for m in modules if m.split("/")[0] in ("collector", "analysis")}
    assert named_code - real_modules == set(), "modules in docs/ARCHITECTURE.md that do not exist"
    packages = {f"{folder}/__init__.py" for folder in real_folders}      # a named folder names its __init__
    assert real_modules - named_code - packages == set(), "modules missing from docs/ARCHITECTURE.md"
