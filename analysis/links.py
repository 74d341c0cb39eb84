"""How links travel: canonical URLs and their domains across channels.

URLs come from ``posts.urls`` (the text of URL entities and the targets of text links). Before
counting, each distinct URL is canonicalised, in SQL for speed, by the rules of
:func:`canonical_url` (its pure-Python twin, for use on other data and for tests):

1. No scheme -> ``https://`` (``example.org/x`` and ``//example.org/x`` are links too).
2. Lower-case the scheme; ``http`` becomes ``https`` (the same resource, almost always).
3. Host: lower-case, drop ``user:pass@``, a default port (``:80``, ``:443``), a trailing dot and a
   leading ``www.``.
4. Path: kept as written (paths are case-sensitive) without trailing slashes.
5. Query: parameters kept in order, except empty ones and tracking parameters (``utm_*``, ``fbclid``,
   ``gclid``, ``yclid``, ``dclid``, ``gbraid``, ``wbraid``, ``mc_cid``, ``mc_eid``, ``igshid``, ``_ga``).
6. Fragment dropped.

The domain of a URL is its canonical host (``www.`` stripped, no public-suffix folding).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import duckdb
import polars as pl

from .frames import Params, channel_clause, conform, time_clauses, where_sql

__all__ = ["HOST_RE", "PARTS_RE", "TRACKING_PARAMS_RE", "canonical_url", "domain_spread", "url_ctes", "url_spread"]

#: Query parameter names (lower-cased) removed by canonicalisation.
TRACKING_PARAMS_RE = r"^(utm_.*|fbclid|gclid|yclid|dclid|gbraid|wbraid|mc_cid|mc_eid|igshid|_ga)$"

#: The parts of a URL with a scheme: scheme, host, path without trailing slashes, query (fragment dropped).
PARTS_RE = r"^([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^?#]*?)/*(?:\?([^#]*))?(?:#.*)?$"
#: The canonical host inside a lower-cased host: no user info, leading ``www.``, trailing dots, default port.
HOST_RE = r"^(?:.*@)?(?:www\.)?(.*?)\.*(?::(?:80|443))?$"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_PARTS = re.compile(PARTS_RE)
_HOST = re.compile(HOST_RE)
_TRACKING = re.compile(TRACKING_PARAMS_RE)


def canonical_url(url: str) -> tuple[str, str] | None:
    """``(canonical URL, domain)`` of ``url`` by the module's rules, or None when it has no host.

    URLs are taken as written (entity URLs carry no surrounding whitespace).

    >>> canonical_url("HTTP://www.Example.org:80/News/?utm_source=tg&id=3#top")
    ('https://example.org/News?id=3', 'example.org')
    >>> canonical_url("t.me/durov/1")
    ('https://t.me/durov/1', 't.me')
    """
    if not url:
        return None
    if not _SCHEME.match(url):
        url = ("https:" if url.startswith("//") else "https://") + url
    m = _PARTS.match(url)
    if m is None:  # pragma: no cover - every string with a scheme matches
        return None
    scheme, path, query = m.group(1).lower(), m.group(3), m.group(4) or ""
    if scheme == "http":
        scheme = "https"
    h = _HOST.match(m.group(2).lower())
    host = h.group(1) if h else ""
    if not host:
        return None
    kept = [p for p in query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0].lower())]
    canonical = f"{scheme}://{host}{path}" + ("?" + "&".join(kept) if kept else "")
    return canonical, host


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _canonical_sql(source: str, carry: str = "") -> str:
    """SQL turning ``source`` (a relation with a ``url`` column) into ``url, canonical, domain``.

    Equivalent to :func:`canonical_url`, written for speed on millions of distinct URLs: plain string
    functions split the URL (regular expressions with several groups cost microseconds per URL); the
    host pattern and the query filter run only on URLs that need them; each step is a materialised
    CTE, because the optimiser would otherwise inline every step into the next and evaluate the same
    expressions many times over. ``carry``: extra columns of ``source`` passed through (", key").
    """
    return f"""
    WITH s_scheme AS MATERIALIZED (
        SELECT url{carry},
               CASE WHEN regexp_matches(url, '^[A-Za-z][A-Za-z0-9+.\\-]*://') THEN url
                    WHEN starts_with(url, '//') THEN 'https:' || url
                    ELSE 'https://' || url END AS u
        FROM ({source})
    ),
    s_split AS MATERIALIZED (
        SELECT url{carry}, lower(left(u, position('://' IN u) - 1)) AS scheme,
               substring(u, position('://' IN u) + 3) AS rest
        FROM s_scheme
    ),
    s_nofrag AS MATERIALIZED (
        SELECT url{carry}, scheme,
               CASE WHEN contains(rest, '#') THEN left(rest, position('#' IN rest) - 1) ELSE rest END AS rest
        FROM s_split
    ),
    s_query AS MATERIALIZED (
        SELECT url{carry}, scheme,
               CASE WHEN contains(rest, '?') THEN left(rest, position('?' IN rest) - 1) ELSE rest END AS hp,
               CASE WHEN contains(rest, '?') THEN substring(rest, position('?' IN rest) + 1) ELSE '' END AS query
        FROM s_nofrag
    ),
    s_host AS MATERIALIZED (
        SELECT url{carry}, scheme, query,
               lower(CASE WHEN contains(hp, '/') THEN left(hp, position('/' IN hp) - 1) ELSE hp END) AS h,
               CASE WHEN contains(hp, '/') THEN substring(hp, position('/' IN hp)) ELSE '' END AS path
        FROM s_query
    ),
    s_clean AS MATERIALIZED (
        SELECT url{carry},
               CASE WHEN scheme = 'http' THEN 'https' ELSE scheme END AS scheme,
               CASE WHEN contains(h, '@') OR contains(h, ':') OR starts_with(h, 'www.') OR ends_with(h, '.')
                    THEN regexp_extract(h, {_sql_literal(HOST_RE)}, 1) ELSE h END AS host,
               CASE WHEN ends_with(path, '/') THEN rtrim(path, '/') ELSE path END AS path,
               CASE WHEN query = '' THEN []
                    ELSE list_filter(string_split(query, '&'),
                                     lambda q: q <> '' AND NOT regexp_full_match(
                                         lower(split_part(q, '=', 1)), {_sql_literal(TRACKING_PARAMS_RE)}))
               END AS params
        FROM s_host
    )
    SELECT url{carry},
           scheme || '://' || host || path
               || CASE WHEN len(params) > 0 THEN '?' || array_to_string(params, '&') ELSE '' END AS canonical,
           host AS domain
    FROM s_clean
    WHERE host <> ''
    """


def url_ctes(
    channels: Iterable[int] | None,
    since: datetime | None,
    until: datetime | None,
    include_forwards: bool,
    params: Params,
    *,
    exact: bool = False,
) -> str:
    """CTEs (for a ``WITH``) ending in three relations:

    - ``url_ids(url_id, url, domain)``: one row per canonical URL, numbered;
    - ``pu(channel_id, message_id, t_us, url_id)``: one row per (post, canonical URL), ``t_us`` the
      post's ``posted_at`` in epoch microseconds;
    - ``hash_collision(collided)``: one row, true when two distinct raw URLs share a 64-bit hash.

    Raw URLs are keyed by their 64-bit hash, so every join and count runs on integers (hashing,
    grouping and joining millions of strings is what makes URL analyses slow). A collision (about
    1e-7 for two million distinct URLs) would merge two URLs: it is detected, and the caller then
    reruns with ``exact=True``, which keys by the strings themselves.
    """
    where = where_sql([
        "len(urls) > 0",
        None if include_forwards else "fwd_posted_at IS NULL AND fwd_channel_id IS NULL",
        channel_clause("channel_id", channels, params, "channels"),
        *time_clauses("posted_at", since, until, params),
    ])
    key = "raw" if exact else "hash(raw)"
    return f"""
    u AS (
        SELECT channel_id, message_id, t_us, n, {key} AS h
        FROM (SELECT channel_id, message_id, epoch_us(posted_at) AS t_us, len(urls) AS n, unnest(urls) AS raw
              FROM posts {where})
        WHERE raw <> ''
    ),
    dist AS MATERIALIZED (
        SELECT {key} AS h, min(raw) AS url, min(raw) <> max(raw) AS collided
        FROM (SELECT unnest(urls) AS raw FROM posts {where})
        WHERE raw <> ''
        GROUP BY h
    ),
    hash_collision AS (SELECT coalesce(bool_or(collided), false) AS collided FROM dist),
    c AS MATERIALIZED ({_canonical_sql("SELECT url, h AS url_key FROM dist", carry=", url_key")}),
    c2 AS MATERIALIZED (
        SELECT url_key AS h, canonical, domain, dense_rank() OVER (ORDER BY canonical) AS url_id FROM c
    ),
    url_ids AS (SELECT url_id, any_value(canonical) AS url, any_value(domain) AS domain FROM c2 GROUP BY url_id),
    j AS (SELECT u.channel_id, u.message_id, u.t_us, u.n, c2.url_id FROM u JOIN c2 ON c2.h = u.h),
    -- only a post with several URLs can name one canonical URL twice: deduplicate just those
    pu AS MATERIALIZED (
        SELECT channel_id, message_id, t_us, url_id FROM j WHERE n = 1
        UNION ALL
        SELECT DISTINCT channel_id, message_id, t_us, url_id FROM j WHERE n > 1
    )
    """


def url_spread(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_forwards: bool = True,
) -> pl.DataFrame:
    """One row per canonical URL posted in the archive.

    ``domain``; ``first_channel_id``/``first_message_id``/``first_posted_at``: the earliest post with it
    (ties: lowest channel id, then message id); ``last_posted_at``; ``posts``: posts containing it (a
    post naming it twice counts once; deleted posts count); ``channels``: distinct channels;
    ``median_lag_s``: over the other channels, median seconds from the URL's first post to the
    channel's own first post with it (null when only one channel posted it).
    Forwards carry their origin's links and count as posts of the forwarding channel unless
    ``include_forwards=False``. ``channels``/``since``/``until`` select the posts. Ordered by channels
    reached (descending), then URL.
    """
    return _run_hashed(con, _URL_SPREAD_SQL, "url_spread", channels, since, until, include_forwards)


def _run_hashed(
    con: duckdb.DuckDBPyConnection,
    template: str,
    name: str,
    channels: Iterable[int] | None,
    since: datetime | None,
    until: datetime | None,
    include_forwards: bool,
) -> pl.DataFrame:
    """Run ``template`` over the hashed URL CTEs; rerun keyed by strings if a hash collision showed up."""
    for exact in (False, True):
        params: Params = {}
        ctes = url_ctes(channels, since, until, include_forwards, params, exact=exact)
        df = con.sql(template.replace("{ctes}", ctes), params=params or None).pl()
        if exact or df.height == 0 or not df["collided"][0]:
            break
    return conform(df, name)


_URL_SPREAD_SQL = """
    WITH {ctes},
    agg AS MATERIALIZED (
        SELECT url_id,
               arg_min(channel_id, (t_us, channel_id, message_id)) AS first_channel_id,
               arg_min(message_id, (t_us, channel_id, message_id)) AS first_message_id,
               min(t_us) AS first_us, max(t_us) AS last_us, count(*) AS posts
        FROM pu GROUP BY url_id
    ),
    per_channel AS (SELECT url_id, channel_id, min(t_us) AS first_us FROM pu GROUP BY url_id, channel_id),
    lags AS (
        SELECT pc.url_id, count(*) AS channels,
               median(pc.first_us - a.first_us) FILTER (WHERE pc.channel_id <> a.first_channel_id) / 1e6
                   AS median_lag_s
        FROM per_channel pc JOIN agg a ON a.url_id = pc.url_id
        GROUP BY pc.url_id
    )
    SELECT i.url, i.domain, a.first_channel_id, a.first_message_id,
           make_timestamptz(a.first_us) AS first_posted_at, make_timestamptz(a.last_us) AS last_posted_at,
           a.posts, l.channels, l.median_lag_s, (SELECT collided FROM hash_collision) AS collided
    FROM agg a JOIN lags l ON l.url_id = a.url_id JOIN url_ids i ON i.url_id = a.url_id
    ORDER BY l.channels DESC, i.url
"""


def domain_spread(
    con: duckdb.DuckDBPyConnection,
    *,
    channels: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_forwards: bool = True,
) -> pl.DataFrame:
    """One row per domain: distinct canonical ``urls``, ``posts`` linking to it (once per post),
    ``channels`` reached, and the first channel and time. Same selection rules as :func:`url_spread`.
    Ordered by channels (descending), then domain.
    """
    return _run_hashed(con, _DOMAIN_SPREAD_SQL, "domain_spread", channels, since, until, include_forwards)


_DOMAIN_SPREAD_SQL = """
    WITH {ctes},
    per_post AS (
        SELECT DISTINCT i.domain, pu.channel_id, pu.message_id, pu.t_us
        FROM pu JOIN url_ids i ON i.url_id = pu.url_id
    ),
    d AS (
        SELECT domain, count(*) AS posts, count(DISTINCT channel_id) AS channels,
               arg_min(channel_id, (t_us, channel_id, message_id)) AS first_channel_id,
               make_timestamptz(min(t_us)) AS first_posted_at
        FROM per_post GROUP BY domain
    ),
    n AS (SELECT domain, count(*) AS urls FROM url_ids WHERE url_id IN (SELECT url_id FROM pu) GROUP BY domain)
    SELECT d.domain, n.urls, d.posts, d.channels, d.first_channel_id, d.first_posted_at,
           (SELECT collided FROM hash_collision) AS collided
    FROM d JOIN n ON n.domain = d.domain
    ORDER BY d.channels DESC, d.domain
"""
