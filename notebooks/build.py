"""Build the notebooks (``NN_name.ipynb``) from their percent-format scripts (``NN_name.py``), without outputs.

The scripts are the source: plain Python that ruff and mypy check with the rest of the code, with
``# %%`` cell markers (jupytext's percent format). The ``.ipynb`` files are built from them with no outputs,
null execution counts, fixed cell ids and the same metadata every time, so building twice changes nothing.
Every ``notebooks/NN_*.py`` is a notebook: a new script needs no registration here.

Usage (``make notebooks`` runs the first)::

    python notebooks/build.py                         # write every .ipynb from its script
    python notebooks/build.py --check                 # exit 1 when a notebook and its script differ
    python notebooks/build.py --from-ipynb 20_forward_cascades   # an edit made in Jupyter -> the script
    python notebooks/build.py --normalise 80_coordination        # rewrite a script as Jupyter would save it

A notebook edited in Jupyter without jupytext (so its script was not updated) is never overwritten: when an
``.ipynb`` is newer than its script and its cells differ from the script's, the build stops and says to
run ``--from-ipynb`` (keep the edit) or ``--force`` (discard it). Outputs alone are not a difference.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from nbformat.notebooknode import NotebookNode

HERE = Path(__file__).resolve().parent
PATTERN = "[0-9][0-9]_*.py"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def scripts(folder: Path = HERE) -> list[Path]:
    """Every notebook script in ``folder``: ``NN_name.py``, sorted."""
    return sorted(folder.glob(PATTERN))


def script_format(folder: Path = HERE) -> dict[str, Any]:
    """The percent format with the metadata filters of ``folder/jupytext.toml`` (what Jupyter's pairing writes)."""
    config = tomllib.loads((folder / "jupytext.toml").read_text(encoding="utf-8"))
    fmt: dict[str, Any] = {"extension": ".py", "format_name": "percent"}
    for key in ("notebook_metadata_filter", "cell_metadata_filter"):
        if key in config:
            fmt[key] = config[key]
    return fmt


def notebook_from_script(script: Path) -> NotebookNode:
    """The notebook of ``script``: its cells, no outputs, ids ``NN-00``, ``NN-01``, ..., fixed metadata."""
    nb = jupytext.read(script, fmt="py:percent")
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    stem = script.stem
    for i, cell in enumerate(nb.cells):
        cell.id = f"{stem[:2]}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k == "tags"})
    nbformat.validate(nb)
    return nb


def render(nb: NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def script_text(nb: NotebookNode, folder: Path = HERE) -> str:
    """The percent script Jupyter's pairing would save for ``nb``."""
    return str(jupytext.writes(nb, fmt=script_format(folder)))


def cells_of(nb: NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a notebook's script holds: per cell its type, source and tags (no outputs, ids or counts)."""
    return [(c.cell_type, c.source.strip("\n"), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def differences(script: Path) -> list[str]:
    """Why ``script`` and its ``.ipynb`` disagree (empty: they match)."""
    ipynb = script.with_suffix(".ipynb")
    if not ipynb.exists():
        return [f"{ipynb.name} is missing"]
    built = notebook_from_script(script)
    problems = []
    committed_text = ipynb.read_text(encoding="utf-8")
    if committed_text != render(built):
        committed = nbformat.reads(committed_text, as_version=4)
        if cells_of(committed) != cells_of(built):
            problems.append(f"{ipynb.name} has other cells than {script.name}")
        elif any(c.get("outputs") or c.get("execution_count") for c in committed.cells):
            problems.append(f"{ipynb.name} carries outputs (saved from a Jupyter session; `make notebooks` drops them)")
        else:
            problems.append(f"{ipynb.name} differs from the build of {script.name} (metadata, ids or layout)")
    if script.read_text(encoding="utf-8") != script_text(built, script.parent):
        problems.append(f"{script.name} is not in the form Jupyter's pairing saves (run --normalise {script.stem})")
    return problems


def edited_in_jupyter(script: Path) -> bool:
    """The ``.ipynb`` is newer than its script and its cells differ: an edit the script does not have."""
    ipynb = script.with_suffix(".ipynb")
    if not ipynb.exists() or ipynb.stat().st_mtime <= script.stat().st_mtime:
        return False
    committed = nbformat.read(ipynb, as_version=4)
    return cells_of(committed) != cells_of(notebook_from_script(script))


def from_ipynb(script: Path) -> None:
    """Write the cells of ``script``'s ``.ipynb`` (as edited in Jupyter) into ``script``."""
    nb = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    script.write_text(script_text(nb, script.parent), encoding="utf-8")


def _named(folder: Path, stems: list[str]) -> list[Path]:
    paths = [folder / f"{s.removesuffix('.py').removesuffix('.ipynb')}.py" for s in stems]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no such notebook script: {', '.join(missing)}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a notebook and its script differ")
    parser.add_argument("--from-ipynb", nargs="+", metavar="NAME",
                        help="write these notebooks' cells into their scripts")
    parser.add_argument("--normalise", nargs="+", metavar="NAME", help="rewrite these scripts as Jupyter saves them")
    parser.add_argument("--force", action="store_true", help="overwrite notebooks edited after their script")
    parser.add_argument("--dir", type=Path, default=HERE, help="the notebooks folder (default: this one)")
    args = parser.parse_args(argv)
    folder: Path = args.dir
    if args.normalise:
        for script in _named(folder, args.normalise):
            script.write_text(script_text(notebook_from_script(script), folder), encoding="utf-8")
            print(f"normalised {script}")
    if args.from_ipynb:
        for script in _named(folder, args.from_ipynb):
            from_ipynb(script)
            print(f"wrote {script} from {script.with_suffix('.ipynb').name}")
    found = scripts(folder)
    if not found:
        print(f"no notebook scripts ({PATTERN}) in {folder}", file=sys.stderr)
        return 1
    if args.check:
        orphans = [p.name for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if not p.with_suffix(".py").exists()]
        problems = [f"{name} has no script" for name in orphans]
        for script in found:
            problems += differences(script)
        for problem in problems:
            print(f"notebooks: {problem}", file=sys.stderr)
        if problems:
            print("Notebook and script disagree. If you edited the .py, run `make notebooks`. If you edited the "
                  ".ipynb in Jupyter without jupytext, run `python notebooks/build.py --from-ipynb NAME` first "
                  "(see notebooks/README.md).", file=sys.stderr)
        return 1 if problems else 0
    refused = [s for s in found if not args.force and edited_in_jupyter(s)]
    for script in found:
        if script in refused:
            continue
        ipynb = script.with_suffix(".ipynb")
        text = render(notebook_from_script(script))
        if not ipynb.exists() or ipynb.read_text(encoding="utf-8") != text:
            ipynb.write_text(text, encoding="utf-8")
            print(f"wrote {ipynb}")
    for script in refused:
        print(f"notebooks: NOT rebuilt {script.with_suffix('.ipynb').name}: it was changed after {script.name} "
              f"(an edit in Jupyter without jupytext?). Keep the edit: python notebooks/build.py --from-ipynb "
              f"{script.stem}; discard it: python notebooks/build.py --force", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
