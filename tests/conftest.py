"""Session fixtures: a simulated world collected twice, shared by collector and analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.simworld import Collected, collect_twice


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """8 channels, 10 days of history, collected, then collected again two days later."""
    return collect_twice(Path(tmp_path_factory.mktemp("collected")) / "archive.duckdb")


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """16 channels with planted coordination (``World.coordination``), collected 8 h before ``now`` and
    then every hour up to ``now``, so posts have 1 h and 6 h re-observations."""
    from tests.simworld import collect_planted

    return collect_planted(Path(tmp_path_factory.mktemp("planted")) / "archive.duckdb")
