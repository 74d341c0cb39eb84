"""Session fixtures: a simulated world collected twice, shared by collector and analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.simworld import Collected, collect_twice


@pytest.fixture(scope="session")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    """8 channels, 10 days of history, collected, then collected again two days later."""
    return collect_twice(Path(tmp_path_factory.mktemp("collected")) / "archive.duckdb")
