"""How links travel: canonical URLs and their domains across channels.

URLs come from ``posts.urls`` (the text of URL entities and the targets of text links). They are
counted in their canonical form (`analysis._urls.canonical_url`: ``http``/``https`` folded, ``www.``,
default ports, trailing slashes, tracking parameters and fragments dropped), which the collector stores
once, when it archives a post, in ``posts.canonical_urls``. Queries group by that stored string instead
of parsing every URL again.

Rows whose ``canonical_urls`` is NULL (written by a source that does not fill it yet: web preview and
Desktop export rows) are canonicalised while the query runs, by the same Python function, registered
as a DuckDB function for the duration of the call. They are expected to be few: each costs a few
microseconds per distinct URL. Row groups without such rows are not read for it at all. Over a lake,
:func:`url_spread` first reads the stored lists alone and reads ``urls`` only when a post has none (docs/lake.md).

Speed (10M posts, 4M post-URL pairs, 1.6M distinct URLs; one thread's CPU seconds): reading and
unnesting the URL lists ~0.8 s, the (URL, channel) hash aggregation ~1.2-1.6 s, the URL aggregation
~0.5 s plus ~0.7 s for the per-URL list of the channels' first times (built for every URL, sorted and
kept for URLs in 3+ channels: the median lag is read from the sorted list); then in Polars the domains
~0.25 s and the ordering ~0.4 s. Storing canonical URLs removed the parsing, which made up most of the
former 33 s. Measured and not worth it: grouping by ``hash(url)`` (integer keys save ~25%, but DuckDB's
64-bit string hash collides, 75 times among the 1.6M synthetic URLs, and an exact check on the strings
costs more than it saves); grouping in Polars or dictionary-encoding the URLs (both slower); an integer
URL id stored at write time (~23%, measured with a prototype). Storing the result after every pass (migration
0007) was removed by 0009: its cost grew with the whole archive, not with what a pass changed.

The domain of a URL is its canonical host without port (``www.`` stripped, no public-suffix folding);
it is the same domain as ``posts.domains`` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import count

import duckdb
import numpy as np
import polars as pl

from analysis._urls import canonical_urls_column

from ._frames import (
    Params,
    channel_clause,
    conform,
    is_forward_sql,
    packed_int_key,
    posts_are_files,
    time_clauses,
    warn_use_summary,
    where_sql,
)

_UDF_PREFIX = "tgspread_canonical_urls_"
_udf_ids = count()

#: SQL for the domain of a canonical URL in column ``url``: the host, without brackets (IPv6) or port.
DOMAIN_SQL = """CASE
    WHEN starts_with(split_part(url, '://', 2), '[')
        THEN split_part(substr(split_part(url, '://', 2), 2), ']', 1)
    ELSE split_part(split_part(split_part(split_part(split_part(url, '://', 2), '/', 1), '?', 1), '\\', 1), ':', 1)
END"""


def _has_canonical_column(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'posts' "
        "AND column_name = 'canonical_urls' AND table_schema = current_schema()"
    ).fetchall()
    return bool(rows and rows[0][0])


@contextmanager
def _canonical_function(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """A DuckDB function ``name(VARCHAR[]) -> VARCHAR[]`` = `analysis._urls.canonical_urls`, while in use."""
    name = f"{_UDF_PREFIX}{next(_udf_ids)}"
    con.create_function(name, canonical_urls_column, ["VARCHAR[]"], "VARCHAR[]", type="arrow")  # type: ignore[call-overload]
    try:
        yield name
    finally:
        con.remove_function(name)


def url_occurrences_sql(
    channels: Iterable[int] | None,
    since: datetime | None,
    until: datetime | None,
    include_forwards: bool,
    params: Params,
    *,
    canonical_fn: str,
    stored: bool = True,
    one_scan: bool = False,
    stored_only: bool = False,
) -> str:
    """SQL for one row per (post, canonical URL): ``channel_id, message_id, t_us, url``.

    ``t_us`` is the post's ``posted_at`` in epoch microseconds; a post naming one canonical URL twice
    gives one row; URLs naming no web host are left out. ``canonical_urls`` is read where the writer
    stored it, and computed by the DuckDB function ``canonical_fn`` where it is NULL (``stored=False``:
    the archive has no such column, compute it everywhere). ``one_scan``: read the posts once, the stored list
    or else the computed one in a ``CASE`` (for a lake, :func:`analysis._frames.posts_are_files`), instead of
    once for rows with a stored list and once more for those without (cheaper over a table).
    ``stored_only``: read only the stored lists (never ``urls``); a post without one gives a row whose ``url`` is
    NULL instead, so the caller can tell that the answer needs the full query (:func:`url_spread` over a lake).
    """
    common = [
        None if include_forwards else f"NOT {is_forward_sql()}",
        channel_clause("channel_id", channels, params, "channels"),
        *time_clauses("posted_at", since, until, params),
    ]
    if stored and stored_only:
        # Only the stored lists: ``urls`` is never decoded (over a lake of 10M posts reading it too costs ~0.6 s
        # CPU of a scan of ~1 s). A post without a stored list gives one NULL url, which the caller looks for.
        union = ("SELECT channel_id, message_id, posted_at, coalesce(canonical_urls, [NULL::VARCHAR]) AS cu "
                 "FROM posts " + where_sql(["(canonical_urls IS NULL OR len(canonical_urls) > 0)", *common]))
    elif stored and one_scan:
        # The stored list where there is one, else the computed one (DuckDB calls the function only for rows
        # that reach its branch of the CASE: none, where every row has a stored list). Over a lake a second
        # scan opens every file again, although the rows without a stored list skip every row group by their
        # statistics: this halves url_spread over a lake of 1M posts. Over a table it reads ``urls`` for
        # nothing, and the two scans below are cheaper.
        cu = f"CASE WHEN canonical_urls IS NULL THEN {canonical_fn}(urls) ELSE canonical_urls END"
        union = (f"SELECT channel_id, message_id, posted_at, {cu} AS cu FROM posts "
                 + where_sql(["len(coalesce(canonical_urls, urls)) > 0", *common]))
    else:
        computed = where_sql(["canonical_urls IS NULL" if stored else None, "len(urls) > 0", *common])
        branches = [f"SELECT channel_id, message_id, posted_at, {canonical_fn}(urls) AS cu FROM posts {computed}"]
        if stored:
            branches.insert(0, "SELECT channel_id, message_id, posted_at, canonical_urls AS cu FROM posts "
                               + where_sql(["len(canonical_urls) > 0", *common]))
        union = "\n        UNION ALL\n        ".join(branches)
    # A post naming a URL twice gives one row: list_distinct only for the rare lists of 3+ URLs; the
    # common lists of one URL need nothing and those of two a comparison (half the cost of list_distinct).
    return f"""
    SELECT channel_id, message_id, t_us, url FROM (
        SELECT channel_id, message_id, epoch_us(posted_at) AS t_us,
               unnest(CASE WHEN len(cu) = 1 OR (len(cu) = 2 AND cu[1] <> cu[2]) THEN cu
                           WHEN len(cu) = 2 THEN [cu[1]]
                           ELSE list_distinct(cu) END) AS url
        FROM ({union})
    ) WHERE url <> ''{" OR url IS NULL" if stored and stored_only else ""}
    """


def _run(con: duckdb.DuckDBPyConnection, template: str, channels: Iterable[int] | None, since: datetime | None,
         until: datetime | None, include_forwards: bool, *, stored_first: bool = False) -> pl.DataFrame:
    """``template`` with ``{occ}`` replaced by the occurrences, run with the canonicalising function.

    ``stored_first`` (a template grouping by ``url``, over a lake): first read only the stored canonical lists;
    when a post has none (a NULL ``url`` group comes back), run again reading ``urls`` too for those posts.
    """
    con = con.cursor()          # its own: a result the caller left unfinished on ``con`` must not block this
    stored = _has_canonical_column(con)
    files = posts_are_files(con)
    with _canonical_function(con) as fn:
        if stored and files and stored_first:
            params: Params = {}
            occ = url_occurrences_sql(channels, since, until, include_forwards, params, canonical_fn=fn,
                                      stored=True, stored_only=True)
            df = con.sql(template.replace("{occ}", occ), params=params or None).pl()
            if df["url"].null_count() == 0:
                return df
        params = {}
        occ = url_occurrences_sql(channels, since, until, include_forwards, params, canonical_fn=fn, stored=stored,
                                  one_scan=files)
        return con.sql(template.replace("{occ}", occ), params=params or None).pl()


def url_spread(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_forwards: bool = True,
    use_summary: bool | None = None,
) -> pl.DataFrame:
    """One row per canonical URL posted in the archive.

    ``domain``; ``first_channel_id``/``first_message_id``/``first_posted_at``: the earliest post with it
    (ties: lowest channel id, then message id); ``last_posted_at``; ``posts``: posts containing it (a
    post naming it twice counts once; deleted posts count); ``channels``: distinct channels;
    ``median_lag_s``: over the other channels, median seconds from the URL's first post to the
    channel's own first post with it (null when only one channel posted it).
    Forwards carry their origin's links and count as posts of the forwarding channel unless
    ``include_forwards=False`` (a forward as ``analysis._frames.is_forward_sql`` defines it: imported
    forwards, which lack the origin post and date, are forwards too). ``channels``/``since``/``until``
    select the posts. Ordered by channels reached (descending), then first post (time, channel, message), then URL.

    ``use_summary`` is deprecated and ignored (nothing is stored since migration 0009; the result is always
    computed from the posts); passing it warns, and it will be removed in the next release.

    Example::

        analysis.url_spread(con).head(20)      # the links that reached the most channels
    """
    warn_use_summary(use_summary, "url_spread")
    try:
        df = _run(con, _url_spread_sql(True), channels, since, until, include_forwards, stored_first=True)
        packed = bool(df["fits"].all())
    except (duckdb.OutOfRangeException, duckdb.ConversionException):   # a time or id past the packed key
        packed = False
    if not packed:
        df = _run(con, _url_spread_sql(False), channels, since, until, include_forwards, stored_first=True)
    out = df.with_columns(
        _domains(df["url"]),
        (pl.col("median_lag_us") / 1e6).alias("median_lag_s"),   # here: DuckDB's `/ 1e6` may differ by an ulp
        pl.from_epoch(pl.col("first_us"), "us").dt.replace_time_zone("UTC").alias("first_posted_at"),
        pl.from_epoch(pl.col("last_us"), "us").dt.replace_time_zone("UTC").alias("last_posted_at"),
    )
    return conform(_ordered(out), "url_spread")


#: Bit layout of the packed first-post key: posted_at (epoch us) << 72 | channel_id << 32 | message_id.
_CH_BITS, _MSG_BITS = 40, 32
_CH_MASK, _MSG_MASK = (1 << _CH_BITS) - 1, (1 << _MSG_BITS) - 1


def _fits_sql() -> str:
    """SQL true when an occurrence's ids and time fit the packed key (always, for Telegram's ids today)."""
    return (f"(channel_id BETWEEN 0 AND {_CH_MASK} AND message_id BETWEEN 0 AND {_MSG_MASK} "
            f"AND t_us > -(2::BIGINT << 53) AND t_us < (2::BIGINT << 53))")


def _url_spread_sql(packed: bool) -> str:
    """Two aggregation levels: (URL, channel), then URL.

    The earliest post is a plain ``min()`` of a key ordered by (posted_at, channel_id, message_id), the
    tie rule itself: a packed HUGEINT (fast), else a STRUCT. The packed query also returns ``fits``, per
    URL: whether every occurrence's ids and time fit the packed key (:func:`_fits_sql`); the caller runs
    the STRUCT query when one does not. (Checked in the query, not by a ``min``/``max`` over ``posts``
    first: DuckDB answers that from a table's statistics, but over a lake it reads three columns of every
    file, 0.4 s at 10M posts.)
    The channels' first times come back as a list only for URLs with 3+ channels (the median lag).
    """
    if packed:
        key = f"(t_us::HUGEINT << {_CH_BITS + _MSG_BITS}) + (channel_id::HUGEINT << {_MSG_BITS}) + message_id"
        t_of = f"(fk >> {_CH_BITS + _MSG_BITS})::BIGINT"
        ch_of = f"((fk >> {_MSG_BITS}) & {_CH_MASK})::BIGINT"
        msg_of = f"(fk & {_MSG_MASK})::BIGINT"
    else:
        key = "{'t': t_us, 'c': channel_id, 'm': message_id}"
        t_of, ch_of, msg_of = "fk.t", "fk.c", "fk.m"
    fits, fits_all, fits_out = ((f", bool_and({_fits_sql()}) AS fits", ", bool_and(fits) AS fits", ", fits")
                                if packed else ("", "", ""))
    # median_lag_s, over the channels other than the first: the channels' sorted first times s[1..n]
    # without s[1] (the URL's first post); the median of s[2..n] is s[n/2 + 1] for even n, else the
    # mean of s[(n+1)/2] and s[(n+3)/2]; for n = 2 it is s[2] - s[1], the largest minus the first.
    return f"""
    WITH occ AS ({{occ}}),
    pc AS (
        SELECT url, min({key}) AS fk, max(t_us) AS last_us, count(*) AS posts{fits}
        FROM occ GROUP BY url, channel_id
    ),
    pc2 AS (SELECT url, fk, {t_of} AS first_us, last_us, posts{fits_out} FROM pc),
    agg AS (
        SELECT url, min(fk) AS fk, max(first_us) AS max_first_us, max(last_us) AS last_us,
               sum(posts)::BIGINT AS posts, count(*) AS channels,
               CASE WHEN count(*) > 2 THEN list_sort(list(first_us)) END AS s{fits_all}
        FROM pc2 GROUP BY url
    ),
    out AS (SELECT url, {t_of} AS first_us, {ch_of} AS first_channel_id, {msg_of} AS first_message_id,
                   max_first_us, last_us, posts, channels, s{fits_out} FROM agg)
    SELECT url, first_us, first_channel_id, first_message_id, last_us, posts, channels{fits_out},
           CASE WHEN channels = 2 THEN (max_first_us - first_us)::DOUBLE
                WHEN channels > 2 AND channels % 2 = 0 THEN (s[channels // 2 + 1] - first_us)::DOUBLE
                WHEN channels > 2 THEN (s[(channels + 1) // 2] + s[(channels + 3) // 2]) / 2 - first_us
           END AS median_lag_us
    FROM out
    """


def _ordered(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by channels (descending), first post (time, channel id, message id), then URL.

    Sorting 1.5 million rows by several keys (a URL last) costs seconds; one packed integer key holding
    (channels, time, channel, message) sorts in a fraction of that, and only the rows where it ties
    (URLs of one first post: neighbours after the sort) are sorted further by URL. The frame is made
    contiguous first: DuckDB hands over a dozen chunks per column, and gathering rows across chunks
    costs several times more than the sort.
    """
    if df.height == 0:
        return df
    df = df.rechunk()
    key = packed_int_key(df, [("channels", True), ("first_us", False), ("first_channel_id", False),
                              ("first_message_id", False)])
    if key is None:
        return df.sort(["channels", "first_us", "first_channel_id", "first_message_id", "url"],
                       descending=[True, False, False, False, False], nulls_last=True)
    out = df.with_columns(key.alias("_key")).sort("_key")
    k = out["_key"]
    tied = ((k == k.shift(1)) | (k == k.shift(-1))).fill_null(False)
    if tied.any():
        positions = tied.arg_true().to_numpy()
        order = (out.filter(tied).select("_key", "url").with_row_index("_j")
                 .sort(["_key", "url"])["_j"].to_numpy())
        index = np.arange(out.height)
        index[positions] = positions[order]
        out = out[index]
    return out.drop("_key")


def _domains(urls: pl.Series) -> pl.Series:
    """The domain of each canonical URL in ``urls`` (Polars twin of :data:`DOMAIN_SQL`, several times faster).

    A plain split gives the authority of almost every URL; the few with a query right after the host,
    a backslash, a port or an IPv6 literal go through a regular expression.
    """
    authority = urls.str.split_exact("/", 2).struct.field("field_2")      # "https:", "", authority
    special = authority.str.contains_any(["?", "\\", ":", "["]).fill_null(False)
    if not special.any():
        return authority.alias("domain")
    rows = special.arg_true()
    auth = urls.gather(rows).str.extract(r"://([^/?\\]*)", 1)
    host = (pl.DataFrame({"a": auth}).select(
        pl.coalesce(pl.col("a").str.extract(r"^\[([^\]]*)\]", 1), pl.col("a").str.extract(r"^([^:]*)", 1))
    ).to_series())
    return authority.scatter(rows, host).alias("domain")


def domain_spread(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_forwards: bool = True,
) -> pl.DataFrame:
    """One row per domain: distinct canonical ``urls``, ``posts`` linking to it (once per post),
    ``channels`` reached, and the first channel and time (ties: lowest channel id). Same selection
    rules as :func:`url_spread`. Ordered by channels (descending), then domain.
    """
    df = _run(con, _DOMAIN_SPREAD_SQL, channels, since, until, include_forwards)
    return conform(df, "domain_spread")


_DOMAIN_SPREAD_SQL = f"""
    WITH occ AS ({{occ}}),
    od AS MATERIALIZED (SELECT channel_id, message_id, t_us, url, {DOMAIN_SQL} AS domain FROM occ),
    per_post AS (SELECT DISTINCT domain, channel_id, message_id, t_us FROM od),
    d AS (
        SELECT domain, count(*) AS posts, count(DISTINCT channel_id) AS channels,
               (min((t_us::HUGEINT << 63) + channel_id) & 9223372036854775807)::BIGINT AS first_channel_id,
               make_timestamptz(min(t_us)) AS first_posted_at
        FROM per_post GROUP BY domain
    ),
    n AS (SELECT domain, count(DISTINCT url) AS urls FROM od GROUP BY domain)
    SELECT d.domain, n.urls, d.posts, d.channels, d.first_channel_id, d.first_posted_at
    FROM d JOIN n ON n.domain = d.domain
    ORDER BY d.channels DESC, d.domain
"""
