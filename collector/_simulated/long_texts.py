"""Long post texts for analysis tests and benchmarks: real Telegram posts run to hundreds or thousands of
characters, unlike the simulated world's and the synthetic archive's short ones (``analysis.copies`` must
stay linear on them; issue 16). Used by ``tests/integration/test_analysis_copies_trees.py`` and
``benchmarks/analysis_bench.py``.
"""

from __future__ import annotations

import duckdb


def long_text_posts(con: duckdb.DuckDBPyConnection, posts: int, *, channels: int = 500, min_chars: int = 500,
                    max_chars: int = 2_000, copy_every: int = 50) -> int:
    """Create a table ``posts`` on ``con`` (the columns ``analysis.copies`` reads) with ``posts`` long texts:
    words of a 20,000-word vocabulary (Cyrillic letters; word frequencies roughly Zipf's law) cut to a
    length drawn uniformly from ``[min_chars, max_chars]``, then a link; and after every ``copy_every``-th
    post its copy by another channel 1-5 minutes later, with one word added. Like real Telegram posts
    (hundreds to thousands of characters), unlike the synthetic archive's short texts. Deterministic;
    built in DuckDB (no Python loop over posts). Returns the number of planted copies.

    Example: ``long_text_posts(duckdb.connect(), 20_000)`` then ``analysis.copies(con)``.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _vocab AS
        SELECT list(w ORDER BY i) AS words FROM (
            SELECT i, (SELECT string_agg(chr(1072 + (hash(i, j) % 32)::INTEGER), '') FROM range(2 + i % 9) t(j)) AS w
            FROM range(20000) v(i))
    """)
    words = max_chars // 5 + 10           # enough words for the longest text (average word + space > 5)
    span = max_chars - min_chars + 1
    con.execute(f"""
        CREATE OR REPLACE TABLE posts AS
        WITH raw AS (
            SELECT p, left(array_to_string(list_transform(range({words}), lambda k: v.words[
                       least(20000, floor(pow(20000, (hash(p, k) % 1000000) / 1e6))::BIGINT)]), ' '),
                       {min_chars} + (hash(p, 'len') % {span})::INTEGER) AS body
            FROM range({int(posts)}) a(p), _vocab v
        ), base AS (
            SELECT (p % {int(channels)}) + 1 AS channel_id, p + 1 AS message_id,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(p * 60000000) AS posted_at,
                   upper(left(body, 1)) || body[2:] || '. https://t.me/c/' || p AS text, p
            FROM raw
        )
        SELECT channel_id, message_id, posted_at, text FROM base
        UNION ALL
        SELECT (channel_id % {int(channels)}) + 1, message_id + {int(posts)},
               posted_at + to_microseconds((60 + hash(p, 'lag') % 240)::BIGINT * 1000000), 'Срочно ' || text
        FROM base WHERE p % {int(copy_every)} = 0
    """)
    con.execute("""
        ALTER TABLE posts ADD COLUMN fwd_channel_id BIGINT; ALTER TABLE posts ADD COLUMN fwd_message_id BIGINT;
        ALTER TABLE posts ADD COLUMN fwd_posted_at TIMESTAMPTZ; ALTER TABLE posts ADD COLUMN fwd_from_name VARCHAR;
        ALTER TABLE posts ADD COLUMN deleted_at TIMESTAMPTZ; DROP TABLE _vocab;
    """)
    return -(-int(posts) // int(copy_every))
