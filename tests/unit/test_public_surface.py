"""The public surface is the package faces and a short list of documented modules; everything else is private by
name (issue 13). Read from the files with ``ast``, except the faces' lazy maps, which are checked by importing.

A new module named like a public one (``analysis/newthing.py``, ``collector/newpart/``) fails here: name it
``_newthing.py``, put it under a private package, or, when users are meant to import it by name, document it and
add it to :data:`PUBLIC_MODULES`.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("collector", "analysis")
#: The faces: what ``import collector`` / ``import analysis`` give, and ``python -m collector``.
FACES = {"collector/__init__.py", "collector/__main__.py", "analysis/__init__.py"}
#: Modules users import by name, documented as such (README, docs/analysis.md, docs/lake.md, docs/scale.md).
PUBLIC_MODULES = {"analysis/notebook.py", "analysis/lake.py", "analysis/spark.py", "analysis/plots.py",
                  "analysis/portable.py"}


def _modules() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def private_by_name(rel: str) -> bool:
    """``collector/_archive/lake.py`` (under a private package) or ``analysis/_spread.py`` (a private module)."""
    parts = rel.removesuffix(".py").split("/")[1:]
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__")) for part in parts)


def test_private_by_name_reads_paths() -> None:
    assert private_by_name("analysis/_spread.py") and private_by_name("collector/_archive/lake.py")
    assert private_by_name("collector/_cli/__init__.py")
    assert not private_by_name("analysis/spreading.py") and not private_by_name("collector/archives/__init__.py")
    assert not private_by_name("collector/__main__.py")


def test_every_module_is_a_face_a_documented_public_module_or_private() -> None:
    public_looking = [rel for rel in _modules() if rel not in FACES | PUBLIC_MODULES and not private_by_name(rel)]
    assert public_looking == [], "name these private (a leading underscore) or document them as public modules"


def test_the_listed_public_modules_exist() -> None:
    assert {rel for rel in FACES | PUBLIC_MODULES if not (ROOT / rel).exists()} == set()


def _all_names(path: Path) -> list[str] | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(value, ast.List | ast.Tuple), f"{path}: __all__ must be a literal list"
            return [str(e.value) for e in value.elts if isinstance(e, ast.Constant)]
    return None


def test_only_the_faces_and_public_modules_list_all() -> None:
    listing = {rel for rel in _modules() if _all_names(ROOT / rel) is not None}
    assert listing - FACES - PUBLIC_MODULES == set()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_of_a_face_loads(package: str) -> None:
    """``__all__`` and the lazy map agree: every listed name loads, and the map offers nothing unlisted."""
    face = importlib.import_module(package)
    lazy = set(face._LAZY_NAMES)
    eager = {name for name in face.__all__ if name in vars(face)}
    submodules = {rel.removeprefix(f"{package}/").removesuffix(".py") for rel in PUBLIC_MODULES
                  if rel.startswith(f"{package}/")}
    assert set(face.__all__) == (lazy - submodules) | eager
    for name in face.__all__:
        assert getattr(face, name) is not None, name
    for name in submodules:
        assert getattr(face, name).__name__ == f"{package}.{name}"
