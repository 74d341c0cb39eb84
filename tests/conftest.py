"""Session fixtures: a simulated world collected twice, shared by collector and analysis tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers.simworld import Collected, collect_twice

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

#: The modules that take most of the suite's time, costliest first (figures: README, "Testing without
#: Telegram"). They run first, every other module after them in collection order: with ``--dist loadscope
#: --no-loadscope-reorder`` each xdist worker takes the next module when it runs low, so the longest ones start
#: at once and the short ones fill in at the end. xdist's own reorder, by number of tests, starts these last
#: (they have few tests), which can leave one worker running a long module alone at the end.
RUN_FIRST = (
    "tests/system/test_collectors_month.py",
    "tests/system/test_fault_random.py",
    "tests/integration/test_spark.py",
    "tests/integration/test_readme_figures.py",
    "tests/system/test_run_month.py",
    "tests/system/test_crash_safety.py",
    "tests/integration/test_notebooks.py",
    "tests/system/test_concurrency.py",
    "tests/integration/test_notebooks_lake.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the :data:`RUN_FIRST` modules first, in that order; the rest keep their order (a stable sort)."""
    rank = {module: i for i, module in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def _console_width_at_start() -> int | None:
    from collector._cli.common import stdout

    return stdout._width           # the console's own setting at import (None: the terminal's)


_CONSOLE_WIDTH = _console_width_at_start()


@pytest.fixture(autouse=True)
def _console_width() -> None:
    """Each test starts with the terminal width a command starts with: a command run in the same process before
    (``collect``, ``export``... call ``wide_when_piped``), in a test or in a fixture, widens the shared console for
    good, which would make a later test's "fits 80 columns" depend on which tests its worker ran first."""
    from collector._cli.common import stdout

    stdout._width = _CONSOLE_WIDTH


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """8 channels, 10 days of history, collected, then collected again two days later."""
    return collect_twice(Path(tmp_path_factory.mktemp("collected")) / "archive.duckdb")


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """16 channels with planted coordination (``World.coordination``), collected 8 h before ``now`` and
    then every hour up to ``now``, so posts have 1 h and 6 h re-observations."""
    from tests.helpers.simworld import collect_planted

    return collect_planted(Path(tmp_path_factory.mktemp("planted")) / "archive.duckdb")


@pytest.fixture(scope="session")
def notebook_archive(collected: Collected, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's collected archive (notebooks open it read-only; the copy keeps it so)."""
    import shutil

    target = tmp_path_factory.mktemp("notebook-archive") / "archive.duckdb"
    shutil.copy2(collected.path, target)
    return target


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A Jupyter kernel of this interpreter, installed in a temporary folder (tests/helpers/notebook_helpers.py)."""
    from tests.helpers.notebook_helpers import install_kernel

    return install_kernel(tmp_path_factory.mktemp("kernel"))
