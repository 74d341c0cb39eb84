"""``analysis._frames.sort_by_ints``: one packed key sorts exactly like a multi-column sort, nulls and wide
ranges fall back to the plain sort."""

from __future__ import annotations

import random

import polars as pl
import pytest

from analysis._frames import packed_int_key, sort_by_ints

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


@pytest.mark.parametrize("seed", range(3))
def test_keys_wider_than_63_bits_sort_exactly_through_the_int128_key(seed: int) -> None:
    rng = random.Random(seed)
    n = 2_000
    df = pl.DataFrame({
        "forwards": [rng.randint(0, 2**20) for _ in range(n)],               # 21 bits
        "channel_id": [rng.randint(0, 2**40) for _ in range(n)],             # 41 bits: 62 so far
        "message_id": rng.sample(range(1, 2**31), n),                         # + 31 bits: 93 > 63
    })
    key = packed_int_key(df, KEYS)
    assert key is not None and df.select(key).dtypes[0] == pl.Int128
    assert sort_by_ints(df, KEYS).equals(_plain(df, KEYS))


def test_unsigned_values_above_int64_sort_exactly() -> None:
    big = 2**63 + 5
    df = pl.DataFrame({"forwards": [1, 1, 2, 0], "channel_id": [big, big - 10, big - 3, big],
                       "message_id": [4, 3, 2, 1]},
                      schema={"forwards": pl.Int64, "channel_id": pl.UInt64, "message_id": pl.Int64})
    key = packed_int_key(df, KEYS)
    assert key is not None and df.select(key).dtypes[0] == pl.Int128      # beyond Int64's range
    assert sort_by_ints(df, KEYS).equals(_plain(df, KEYS))
    small = df.with_columns(pl.col("channel_id") - (2**63 - 100))             # same spread, now within Int64
    assert small.select(packed_int_key(small, KEYS)).dtypes[0] == pl.Int64
    assert sort_by_ints(small, KEYS).equals(_plain(small, KEYS))
