"""The lake's slot hash: one value for a channel id in Python, DuckDB (collector's and analysis's copies) and the
formula CONTRACT.md gives for Spark SQL; and the month of a post in Python and DuckDB."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

import duckdb
import pytest

import analysis.lake as reader
from collector._archive import slots

IDS = [0, 1, -1, 7, 1234567890, 1_000_000_001, 2**31 - 1, 2**31, 2**53, 2**53 + 1, 2**62 + 12345,
       2**63 - 1, -(2**63), -(2**53) - 1, -1001234567890]


def _ids() -> list[int]:
    rng = random.Random(14)
    return IDS + [rng.randint(-(2**63), 2**63 - 1) for _ in range(3000)] + [rng.randint(1, 3 * 10**12)
                                                                            for _ in range(3000)]


def _contract_python(channel_id: int) -> int:
    """CONTRACT.md's Python formula, verbatim."""
    return int(hashlib.md5(str(channel_id).encode()).hexdigest()[:8], 16) % 64


def _spark_emulated(channel_id: int) -> int:
    """What the Spark SQL formula computes, step by step: md5 of the decimal string, its first 8 hex digits read
    in base 16 (conv(..., 16, 10) -> a decimal string), as bigint, pmod 64 (never negative)."""
    digits = hashlib.md5(str(channel_id).encode()).hexdigest()[:8]
    value = int(str(int(digits, 16)))
    return ((value % 64) + 64) % 64


def test_python_duckdb_and_the_analysis_copy_agree_on_many_ids() -> None:
    ids = _ids()
    con = duckdb.connect()
    con.execute("CREATE TABLE ids (channel_id BIGINT)")
    con.executemany("INSERT INTO ids VALUES (?)", [[i] for i in ids])
    rows = con.execute(f"SELECT channel_id, {slots.slot_sql('channel_id')}, {reader.slot_sql('channel_id')} "
                       "FROM ids").fetchall()
    assert len(rows) == len(ids)
    for channel_id, in_duckdb, in_reader_sql in rows:
        expected = _contract_python(channel_id)
        assert slots.slot(channel_id) == expected == in_duckdb == in_reader_sql == reader.slot(channel_id)
        assert _spark_emulated(channel_id) == expected
    assert {slots.slot(i) for i in ids} == set(range(64))        # every slot is reachable
    assert slots.SLOTS == reader.SLOTS == 64


def test_the_formulas_are_the_contracts() -> None:
    assert slots.SPARK_SLOT_SQL.format(column="channel_id") == (
        "pmod(cast(conv(substr(md5(cast(channel_id as string)), 1, 8), 16, 10) as bigint), 64)")
    con = duckdb.connect()
    contract_duckdb = "(('0x' || md5(channel_id::VARCHAR)[1:8])::UBIGINT % 64)::INT"
    got = con.execute(f"SELECT {contract_duckdb} = {slots.slot_sql('channel_id')} FROM "
                      "(SELECT unnest($ids::BIGINT[]) AS channel_id)", {"ids": IDS}).fetchall()
    assert all(r[0] for r in got)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_month_is_the_utc_month_whatever_the_session_zone(zone: str) -> None:
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    base = datetime(2025, 1, 31, 20, 0, tzinfo=UTC)
    stamps = [base + timedelta(hours=h) for h in range(0, 24 * 62, 7)]
    stamps.append(datetime(2025, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))))   # April in UTC
    for stamp in stamps:
        (got,) = con.execute(f"SELECT {slots.month_sql('$t::TIMESTAMPTZ')}", {"t": stamp}).fetchall()[0]
        assert got == slots.month_of(stamp) == stamp.astimezone(UTC).strftime("%Y-%m")
    assert con.execute(f"SELECT {slots.month_sql('NULL::TIMESTAMPTZ')}").fetchall()[0][0] == slots.NO_MONTH
    assert slots.month_of(None) == slots.NO_MONTH
