"""Arrow schemas of the rows `collector._parse.normalize` produces, and fast table builders for them.

Each schema lists the columns of one archive table (``migrations/0001_initial.sql``) in table order,
with the Arrow type that DuckDB maps to the column's type (BIGINT -> int64, INTEGER -> int32,
DOUBLE -> float64, BOOLEAN -> bool, VARCHAR and JSON -> string, TIMESTAMPTZ -> timestamp[us, UTC],
VARCHAR[] -> list<string>, STRUCT(...)[] -> list<struct<...>>). Columns the archive fills itself
(``first_seen_at``, ``last_seen_at``, ``deleted_at``, ``source``, channel ``status``...) are left out.

Example::

    rows = [normalize_message(m, channel_id=cid) for m in page]
    table = posts_table([r for r in rows if r is not None])   # exactly POSTS_SCHEMA
    con.register("page", table)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any

import pyarrow as pa

from .provenance import COLUMNS as PROVENANCE_GROUP_COLUMNS

_TS = pa.timestamp("us", tz="UTC")
_STRINGS = pa.list_(pa.string())

#: One element of ``posts.reactions_by``: STRUCT(reaction VARCHAR, count BIGINT).
REACTION_TYPE = pa.struct([("reaction", pa.string()), ("count", pa.int64())])
#: One element of ``restriction_reason``: STRUCT(platform VARCHAR, reason VARCHAR, text VARCHAR).
RESTRICTION_TYPE = pa.struct([("platform", pa.string()), ("reason", pa.string()), ("text", pa.string())])

#: Table ``posts`` as the migrations make it, column for column in the table's order: the one definition of
#: its Arrow types (tests/integration/test_archive.py compares it with a migrated archive). The writers' schemas
#: below are selections of it.
POSTS_TABLE_SCHEMA = pa.schema(
    [
        ("channel_id", pa.int64()),
        ("message_id", pa.int64()),
        ("posted_at", _TS),
        ("edited_at", _TS),
        ("text", pa.string()),
        ("grouped_id", pa.int64()),
        ("views", pa.int64()),
        ("forwards", pa.int64()),
        ("replies", pa.int64()),
        ("reactions", pa.int64()),
        ("reactions_by", pa.list_(REACTION_TYPE)),
        ("hashtags", _STRINGS),
        ("urls", _STRINGS),
        ("domains", _STRINGS),
        ("canonical_urls", _STRINGS),
        ("mentions", _STRINGS),
        ("fwd_channel_id", pa.int64()),
        ("fwd_message_id", pa.int64()),
        ("fwd_posted_at", _TS),
        ("fwd_from_name", pa.string()),
        ("fwd_post_author", pa.string()),
        ("reply_to_message_id", pa.int64()),
        ("post_author", pa.string()),
        ("via_bot_id", pa.int64()),
        ("replies_channel_id", pa.int64()),
        ("media_type", pa.string()),
        ("media_id", pa.int64()),
        ("media_mime", pa.string()),
        ("media_size", pa.int64()),
        ("media_duration", pa.float64()),
        ("media_width", pa.int32()),
        ("media_height", pa.int32()),
        ("media_filename", pa.string()),
        ("webpage_url", pa.string()),
        ("webpage_title", pa.string()),
        ("restriction_reason", pa.list_(RESTRICTION_TYPE)),
        ("factcheck", pa.string()),
        ("noforwards", pa.bool_()),
        ("pinned", pa.bool_()),
        ("ttl_period", pa.int32()),
        ("source", pa.string()),
        ("raw", pa.string()),
        ("tl_layer", pa.int32()),
        ("telethon_version", pa.string()),
        ("first_seen_at", _TS),
        ("last_seen_at", _TS),
        ("deleted_at", _TS),
        ("views_label", pa.string()),
        ("views_low", pa.int64()),
        ("views_high", pa.int64()),
        ("edited", pa.bool_()),
        ("fwd_username", pa.string()),
        ("author_pseudonym", pa.string()),
        ("import_sha256", pa.string()),
        ("reply_to_peer_id", pa.int64()),
        ("reply_to_peer_message_id", pa.int64()),
        # provenance by field (migration 0011; collector._archive.provenance)
        ("text_source", pa.string()),
        ("text_seen_at", _TS),
        ("counters_source", pa.string()),
        ("counters_seen_at", _TS),
        ("reactions_source", pa.string()),
        ("reactions_seen_at", _TS),
        ("header_source", pa.string()),
        ("header_seen_at", _TS),
    ]
)
#: The provenance columns of ``posts``: the writers compute them in SQL, no row carries them.
PROVENANCE_COLUMNS = PROVENANCE_GROUP_COLUMNS


def posts_columns(*, exclude: Sequence[str]) -> pa.Schema:
    """The columns of table ``posts`` but ``exclude``, in the table's order, typed as :data:`POSTS_TABLE_SCHEMA`."""
    return _columns(POSTS_TABLE_SCHEMA, "posts", exclude)


def _columns(table_schema: pa.Schema, table: str, exclude: Sequence[str]) -> pa.Schema:
    unknown = set(exclude) - set(table_schema.names)
    if unknown:
        raise ValueError(f"not columns of {table}: {sorted(unknown)}")
    return pa.schema([field for field in table_schema if field.name not in exclude])


#: What the API collector writes (``normalize.post_values`` fills it in this order): table ``posts`` without the
#: bookkeeping columns and the ones only web previews and Desktop exports fill.
POSTS_SCHEMA = posts_columns(exclude=(
    "source", "first_seen_at", "last_seen_at", "deleted_at", "views_label", "views_low", "views_high", "edited",
    "fwd_username", "author_pseudonym", "import_sha256", *PROVENANCE_COLUMNS,
))


#: Table ``channels`` as the migrations make it, column for column in the table's order: the one definition of
#: its Arrow types (tests/integration/test_archive.py compares it with a migrated archive). The writers' schemas
#: (:data:`CHANNELS_SCHEMA` here, ``upsert.CHANNEL_SCHEMA``) are selections of it.
CHANNELS_TABLE_SCHEMA = pa.schema(
    [
        ("channel_id", pa.int64()),
        ("access_hash", pa.int64()),
        ("username", pa.string()),
        ("title", pa.string()),
        ("about", pa.string()),
        ("participants_count", pa.int64()),
        ("created_at", _TS),
        ("linked_chat_id", pa.int64()),
        ("available_min_id", pa.int64()),
        ("megagroup", pa.bool_()),
        ("verified", pa.bool_()),
        ("scam", pa.bool_()),
        ("fake", pa.bool_()),
        ("restricted", pa.bool_()),
        ("restriction_reason", pa.list_(RESTRICTION_TYPE)),
        ("status", pa.string()),
        ("status_at", _TS),
        ("last_snapshot_at", _TS),
        ("first_seen_at", _TS),
        ("last_seen_at", _TS),
        ("source", pa.string()),
        ("raw", pa.string()),
        ("participants_label", pa.string()),
    ]
)


def channels_columns(*, exclude: Sequence[str]) -> pa.Schema:
    """The columns of table ``channels`` but ``exclude``, in the table's order, typed as
    :data:`CHANNELS_TABLE_SCHEMA`."""
    return _columns(CHANNELS_TABLE_SCHEMA, "channels", exclude)


#: What the API collector writes (``normalize.normalize_channel``): table ``channels`` without the bookkeeping
#: columns and the web preview's participants label.
CHANNELS_SCHEMA = channels_columns(exclude=(
    "status", "status_at", "last_snapshot_at", "first_seen_at", "last_seen_at", "source", "participants_label",
))

#: Table ``peers`` without first_seen_at and last_seen_at.
PEERS_SCHEMA = pa.schema(
    [
        ("channel_id", pa.int64()),
        ("username", pa.string()),
        ("title", pa.string()),
        ("megagroup", pa.bool_()),
    ]
)


def build_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build an Arrow table with exactly ``schema`` from row dicts, one column at a time.

    Every row must hold every column of the schema (a missing key raises ``KeyError``); extra keys are
    ignored. Column-wise conversion matches ``pa.Table.from_pylist`` on 100-row pages and beats it by
    10-20 % on batches of thousands (see ``benchmarks/normalize_bench.py``). An empty ``rows`` gives an
    empty table with the schema.
    """
    arrays = [pa.array(list(map(itemgetter(f.name), rows)), type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def posts_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows from `collector._parse.normalize.normalize_message` -> a table with exactly `POSTS_SCHEMA`."""
    return build_table(rows, POSTS_SCHEMA)


def channels_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows from `collector._parse.normalize.normalize_channel` -> a table with exactly `CHANNELS_SCHEMA`."""
    return build_table(rows, CHANNELS_SCHEMA)


def peers_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows from `collector._parse.normalize.normalize_peer` -> a table with exactly `PEERS_SCHEMA`."""
    return build_table(rows, PEERS_SCHEMA)


def _list_array(values: Sequence[Any], type_: pa.ListType) -> pa.Array:
    """A list column from per-row Python lists (of strings, or of (reaction, count) pairs for a struct item):
    the items flattened once and the offsets computed here, several times faster than ``pa.array`` of the
    nested lists. Rows holding None (a null list) go the general way."""
    if None in values:
        return pa.array(values, type=type_)
    offsets = pa.array(list(accumulate(map(len, values), initial=0)), type=pa.int32())
    flat = list(chain.from_iterable(values))
    item = type_.value_type
    if pa.types.is_struct(item):
        columns: list[Sequence[Any]] = list(zip(*flat, strict=True)) if flat else [() for _ in range(item.num_fields)]
        items: pa.Array = pa.StructArray.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, item, strict=True)], fields=list(item))
    else:
        items = pa.array(flat, type=item)
    return pa.ListArray.from_arrays(offsets, items, type=type_)


_FLAT_LISTS = frozenset({"reactions_by", "hashtags", "urls", "domains", "canonical_urls", "mentions"})


def posts_values_table(values: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows from `collector._parse.normalize.post_values` (tuples in `POSTS_SCHEMA` order) -> a table with exactly
    `POSTS_SCHEMA`: the table `posts_table` builds from the same messages' `normalize_message` dicts.

    ``reactions_by`` holds ``(reaction, count)`` pairs (dicts would do too for a row with a null list),
    ``raw`` may be UTF-8 bytes. Columns are transposed with ``zip`` and the list columns flattened once.
    """
    columns: list[Sequence[Any]] = list(zip(*values, strict=True)) if values else [()] * len(POSTS_SCHEMA)
    if len(columns) != len(POSTS_SCHEMA):
        raise ValueError(f"post rows hold {len(columns)} values, POSTS_SCHEMA has {len(POSTS_SCHEMA)} columns")
    arrays = [
        _list_array(column, f.type) if f.name in _FLAT_LISTS else pa.array(column, type=f.type)
        for column, f in zip(columns, POSTS_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=POSTS_SCHEMA)
