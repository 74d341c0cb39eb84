"""The import graph, read with the standard library's ``ast`` (nothing is imported): one way for data to flow.

- no loops between modules: a module imports only modules below it (imports inside functions and under
  ``if TYPE_CHECKING:`` count too);
- ``analysis`` imports nothing from ``collector`` (the collector may use ``analysis``, never the reverse).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("collector", "analysis")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(name: str, modules: dict[str, Path], *, type_checking: bool = True) -> set[str]:
    """The project modules ``name`` imports (at the top or inside functions)."""
    path = modules[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = set() if type_checking else _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from package import submodule` names the submodule, anything else the module itself
            targets = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in modules] or [module]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved and resolved != name:
                found.add(resolved)
    return found


def import_graph(*, type_checking: bool = True) -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(name, modules, type_checking=type_checking) for name in modules}


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_loop_finder_finds_a_loop() -> None:
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []


def test_no_import_loops_between_modules() -> None:
    assert loops(import_graph()) == []


def test_analysis_imports_nothing_from_collector() -> None:
    wrong = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                   if module.split(".")[0] == "analysis" for target in targets if target.split(".")[0] == "collector")
    assert wrong == []


# -- one writer ---------------------------------------------------------------------------------------------------
# SQL keywords are upper case in tgspread's code, which keeps prose ("copy published", "update the ...") out.
_WRITING_SQL = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+)?"
                          r"(TABLE|VIEW|INDEX|SEQUENCE|MACRO)|ALTER\s+TABLE|DROP\s+(TABLE|VIEW|INDEX)|COPY\s+\S+\s+(TO|FROM))\b")
_POSTS_WRITE = re.compile(r"\b(INSERT\s+INTO\s+posts|UPDATE\s+posts|DELETE\s+FROM\s+posts)\b")
# Not the archive: Telethon's session file (SQLite), where login scrubs phone numbers an older version stored;
# the lake reader's own in-memory DuckDB connection, whose views read the published Parquet files; the long-text
# generator's table in a caller's in-memory DuckDB (tests and benchmarks of copies; never an archive).
_NOT_THE_ARCHIVE = {"collector/_telegram/login.py", "analysis/lake.py", "collector/_simulated/long_texts.py"}


def _string_constants(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every string literal, f-strings joined (their placeholders as ``{}``), with its node."""
    found: list[tuple[ast.AST, str]] = []
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if id(node) in parts:
            continue
        if isinstance(node, ast.JoinedStr):
            found.append((node, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node, node.value))
    return found


def _writing_sql(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [text for node, text in _string_constants(tree) if id(node) not in docstrings and _WRITING_SQL.search(text)]


def test_the_sql_finder_finds_writing_sql(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""INSERT INTO docs (a docstring) is prose."""\ncon.execute(f"UPDATE posts SET views = {v}")\n')
    assert _writing_sql(sample) == ["UPDATE posts SET views = {}"]


def test_only_the_archive_writes_sql() -> None:
    wrong = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("collector/_archive/") or rel in _NOT_THE_ARCHIVE:
                continue
            found = _writing_sql(path)
            if found:
                wrong[rel] = found
    assert wrong == {}


def test_every_statement_writing_posts_goes_through_execute_posts() -> None:
    """SQL that writes ``posts`` is only ever run by ``execute_posts`` (the one place for whatever every write of
    posts needs): it stands in a call of it, or in a module constant used only in calls of it."""
    wrong = []
    for path in sorted((ROOT / "collector" / "_archive").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

        def in_execute_posts(node: ast.AST, parents: dict[int, ast.AST] = parents) -> bool:
            while id(node) in parents:
                node = parents[id(node)]
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == \
                        "execute_posts":
                    return True
            return False

        constants = {t.id: n for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                     if isinstance(t, ast.Name)}
        for node, text in _string_constants(tree):
            if not _POSTS_WRITE.search(text) or in_execute_posts(node):
                continue
            owner = next((name for name, assign in constants.items()
                          if any(n is node for n in ast.walk(assign))), None)
            uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == owner
                    and isinstance(n.ctx, ast.Load)] if owner else []
            if not uses or not all(in_execute_posts(u) or any(n is u for n in ast.walk(constants[owner]))
                                   for u in uses):
                wrong.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}: {text[:60]!r}")
    assert wrong == []


# -- tests ----------------------------------------------------------------------------------------------------------
def test_tests_import_no_benchmarks_and_no_other_test_module() -> None:
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "benchmarks" or (parts[0] == "tests" and parts[-1].startswith("test_")):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []
