"""Reproducible installs (issue 17, item 29): requirements/*.lock pin every dependency of pyproject.toml at a
version inside its range, with hashes, and the Makefile installs from them (never from open ranges).

A dependency added or changed in pyproject.toml without ``make lock`` fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCKS = {"runtime": [], "dev": ["dev"], "audit": ["dev", "audit"], "spark": ["dev", "spark"],
         "notebooks": ["notebooks"]}


def pinned(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every ``name==version`` in a lock file."""
    out: dict[str, tuple[str, int]] = {}
    name = None
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line)
        if m:
            name = canonicalize_name(m.group(1).split("[")[0])
            out[name] = (m.group(2), 0)
        elif name and "--hash=sha256:" in line:
            out[name] = (out[name][0], out[name][1] + 1)
    return out


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_dependency_is_pinned_inside_its_range_with_hashes(lock: str) -> None:
    versions = pinned(ROOT / "requirements" / f"{lock}.lock")
    wanted = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in LOCKS[lock]:
        wanted += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in versions, f"{req.name} is not in requirements/{lock}.lock: run `make lock`"
        version, _hashes = versions[name]
        assert req.specifier.contains(version, prereleases=True), \
            f"{req.name}=={version} in requirements/{lock}.lock is outside {req.specifier}: run `make lock`"
    assert all(h > 0 for _v, h in versions.values()), "every pin carries its hashes"


def test_the_makefile_installs_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line.strip() for line in makefile.splitlines() if line.startswith("\t$(PIP)")]
    for lock in LOCKS:
        assert f"$(PIP) --require-hashes -r $(LOCKS)/{lock}.lock" in installs
    assert "$(PIP) --no-deps -e ." in installs                   # tgspread itself adds no unpinned package
    assert not [i for i in installs if "-e ." in i and "--no-deps" not in i]
    assert re.search(r"^lock:", makefile, re.MULTILINE)
