"""The examples in docstrings run, so none can rot unnoticed.

Two kinds of example are run:

- ``>>>`` examples (doctest) in every module of ``analysis`` and ``collector``, found by walking the
  packages (a new or moved module is picked up without being listed);
- ``Example::`` blocks in ``analysis`` (code meant to be pasted), executed for real against a collected
  archive: the working directory holds it as ``archive.duckdb`` (the name the examples use) and ``con`` is an
  open connection to it, as in a notebook. They must need nothing beyond the runtime dependencies (no pandas,
  which is a dev tool only): the block runs in a child process where importing pandas fails.

``Example::`` blocks in ``collector`` are not run: most of them talk to Telegram (collect, login, media).
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import json
import pkgutil
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import analysis
import collector
from tests.helpers.simworld import Collected

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: ModuleType) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return sorted(names)


MODULES = _modules(analysis) + _modules(collector)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} doctest examples failed"


def test_doctests_are_found() -> None:
    """The walk above finds the examples it should (a broken walk would pass every module vacuously)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = sum(len(t.examples) for n in MODULES for t in finder.find(importlib.import_module(n), n))
    assert found >= 20, found
    assert "analysis._names" in MODULES and "analysis.notebook" in MODULES


# -- Example:: blocks ---------------------------------------------------------------------------------


def example_blocks(source: str) -> list[tuple[int, str]]:
    """Every ``Example::`` literal block of the docstrings in ``source``: (line, dedented code)."""
    blocks: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if not line.rstrip().endswith("Example::"):
                continue
            indent = len(line) - len(line.lstrip())
            body: list[str] = []
            for follower in lines[i + 1:]:
                if follower.strip() and len(follower) - len(follower.lstrip()) <= indent:
                    break
                body.append(follower)
            code = textwrap.dedent("\n".join(body)).strip("\n")
            if code and ">>>" not in code:      # doctest runs those
                blocks.append((getattr(node, "lineno", 1), code))
    return blocks


def _analysis_examples() -> list[tuple[str, str]]:
    out = []
    for name in _modules(analysis):
        module = importlib.import_module(name)
        path = Path(inspect.getfile(module))
        for line, code in example_blocks(path.read_text(encoding="utf-8")):
            out.append((f"{name}:{line}", code))
    return out


EXAMPLES = _analysis_examples()

RUNNER = """
import importlib.abc, json, sys

class NoPandas(importlib.abc.MetaPathFinder):   # pandas is a dev tool: an example must not need it
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("No module named 'pandas' (a dev-only dependency)", name=name)
        return None

sys.meta_path.insert(0, NoPandas())
import importlib
import analysis
module, code = json.load(sys.stdin)
con = analysis.connect("archive.duckdb", snapshot=True)
globs = {**vars(importlib.import_module(module)), "__name__": "__example__", "analysis": analysis, "con": con}
exec(compile(code, "<example>", "exec"), globs)   # like doctest: the module's names, plus analysis and con
print("EXAMPLE_OK")
"""


@pytest.fixture(scope="module")
def example_archive(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collected archive, and beside it its lake (``lake``), as the examples name them."""
    from collector import Archive
    from collector._archive.lake import publish

    target = tmp_path_factory.mktemp("examples") / "archive.duckdb"
    shutil.copy2(collected.path, target)
    with Archive(target) as opened:
        publish(opened, target.parent / "lake")
    return target


def test_analysis_examples_are_found() -> None:
    where = {w.split(":")[0] for w, _ in EXAMPLES}
    assert {"analysis", "analysis._network", "analysis.plots", "analysis.notebook"} <= where, where


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_analysis_example_runs(where: str, code: str, example_archive: Path, tmp_path: Path) -> None:
    shutil.copy2(example_archive, tmp_path / "archive.duckdb")
    shutil.copytree(example_archive.parent / "lake", tmp_path / "lake")
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps([where.split(":")[0], code]),
                          cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
                          env={**_env(), "MPLBACKEND": "Agg"})
    assert done.returncode == 0 and "EXAMPLE_OK" in done.stdout, f"{where}:\n{code}\n{done.stderr[-3000:]}"


def test_an_example_needing_pandas_fails(example_archive: Path, tmp_path: Path) -> None:
    """The runner can fail: an example calling ``.to_pandas()`` (pandas is dev-only) is refused."""
    shutil.copy2(example_archive, tmp_path / "archive.duckdb")
    code = "analysis.forward_network(con).to_pandas()"
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(["analysis", code]), cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=300, env=_env())
    assert done.returncode != 0 and "pandas" in done.stderr


def test_example_blocks_are_read_from_docstrings() -> None:
    source = inspect.cleandoc('''
        """Module.

        Example::

            x = 1
            y = x + 1

        After.
        """

        def f():
            """F.

            Example::

                f()
            """
        ''')
    assert [code for _, code in example_blocks(source)] == ["x = 1\ny = x + 1", "f()"]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
