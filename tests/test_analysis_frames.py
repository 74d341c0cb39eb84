"""``analysis.frames.sort_by_ints``: one packed key sorts exactly like a multi-column sort, nulls and wide
ranges fall back to the plain sort."""

from __future__ import annotations

import random

import polars as pl
import pytest

from analysis.frames import packed_int_key, sort_by_ints

KEYS = [("forwards", True), ("channel_id", False), ("message_id", False)]


def _plain(df: pl.DataFrame, keys: list[tuple[str, bool]]) -> pl.DataFrame:
    return df.sort([k for k, _ in keys], descending=[d for _, d in keys], nulls_last=True)


@pytest.mark.parametrize("seed", range(5))
def test_packed_sort_equals_the_multi_column_sort(seed: int) -> None:
    rng = random.Random(seed)
    n = 2_000
    df = pl.DataFrame({
        "forwards": [rng.randint(0, 40) for _ in range(n)],
        "channel_id": [rng.choice([1_000_000_001, 2_500_000_000, 1_900_000_123]) for _ in range(n)],
        "message_id": rng.sample(range(1, 10 * n), n),          # unique: the order is total
        "payload": [rng.random() for _ in range(n)],
    })
    assert packed_int_key(df, KEYS) is not None
    assert sort_by_ints(df, KEYS).equals(_plain(df, KEYS))


def test_nulls_and_wide_ranges_fall_back_to_the_plain_sort() -> None:
    with_nulls = pl.DataFrame({"forwards": [3, None, 1, 3], "channel_id": [2, 1, 1, 1], "message_id": [1, 2, 3, 4]})
    assert packed_int_key(with_nulls, KEYS) is None
    assert sort_by_ints(with_nulls, KEYS).equals(_plain(with_nulls, KEYS))
    wide = pl.DataFrame({"a": [-(2**62), 2**62, 0], "b": [2**62, -(2**62), 5], "c": [1, 2, 3]})
    keys = [("a", False), ("b", True), ("c", False)]
    assert packed_int_key(wide, keys) is None                   # 3 x 63 bits do not fit in 127
    assert sort_by_ints(wide, keys).equals(_plain(wide, keys))
