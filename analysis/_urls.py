"""Canonical URLs: one spelling per web resource, computed once when a post is archived.

Shared by both sides: the collector computes ``posts.canonical_urls`` with it, analysis folds the rows that lack
them (and a user's own URLs) the same way. It lives here because the collector may import analysis, never the
reverse; it is pure and light (no Polars), and ``import analysis`` loads nothing until a function is used.

Posts name the same page in many spellings (``http://www.x.org/a/``, ``x.org/a?utm_source=tg``,
``https://X.org/a#top``). :func:`canonical_url` folds them into one by these rules:

1. No scheme -> ``https://`` (``example.org/x`` and ``//example.org/x`` are links too). Only web links
   have a canonical form: ``http``, ``https`` and ``ftp``; ``tg://``, ``mailto:``, ``tel:`` ... give None
   (a schemeless ``host:port`` is still a host).
2. Lower-case the scheme; ``http`` becomes ``https`` (the same resource, almost always).
3. Host: lower-case; drop ``user:pass@``, a leading ``www.`` and trailing dots; drop the port ``:80`` or
   ``:443`` (any other port stays in the URL). The host ends at the first ``/``, ``\\``, ``?`` or ``#``.
   IPv6 literals and percent-escaped hosts are read by ``urllib.parse`` (an invalid one gives None).
4. Path: kept as written (paths are case-sensitive), without trailing slashes.
5. Query: parameters kept in order, except empty ones and tracking parameters (``utm_*``, ``fbclid``,
   ``gclid``, ``yclid``, ``dclid``, ``gbraid``, ``wbraid``, ``mc_cid``, ``mc_eid``, ``igshid``, ``_ga``;
   names compared case-insensitively).
6. Fragment dropped. Surrounding whitespace ignored.

The *domain* of a URL is its canonical host without any port (no public-suffix folding:
``news.bbc.co.uk`` stays itself). ``posts.domains`` (`collector._parse.normalize.canonical_domain`) and the
analysis frames use exactly this domain.

The collector stores :func:`canonical_urls` of each post's ``urls`` in ``posts.canonical_urls``, so
analyses group by a stored string instead of re-parsing every URL in every query.

Example::

    >>> canonical_url("HTTP://www.Example.org:80/News/?utm_source=tg&id=3#top")
    ('https://example.org/News?id=3', 'example.org')
    >>> canonical_urls(["t.me/durov/1", "tg://resolve?domain=durov"])
    ['https://t.me/durov/1', '']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

#: Query parameter names (lower-cased) removed by canonicalisation, besides every ``utm_*``.
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "yclid", "dclid", "gbraid", "wbraid", "mc_cid", "mc_eid",
                             "igshid", "_ga"})

_WEB_SCHEMES = {"http": "https", "https": "https", "ftp": "ftp"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# A scheme without "//" (mailto:, tel:, news:...); "host:8080" is a host with a port, not a scheme.
_OPAQUE_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?!\d)")
_DEFAULT_PORTS = frozenset({"", "80", "443"})
_CACHE_SIZE = 1 << 16
# Fast path: an http(s) URL that is already canonical but for the scheme: lower-case dotted host without
# www., port, user info or trailing dot; a path not ending in "/"; no query, fragment or whitespace.
_PLAIN = re.compile(r"https?://(?!www\.)([a-z0-9\-]+(?:\.[a-z0-9\-]+)*)(?:/[^?#\\\s]*[^/?#\\\s])?")


def is_tracking_param(name: str) -> bool:
    """True when a query parameter called ``name`` only tracks the click (``utm_source``, ``fbclid``...)."""
    low = name.lower()
    return low.startswith("utm_") or low in TRACKING_PARAMS


def _host_port(netloc: str) -> tuple[str, str] | None:
    """(lower-cased host, port) of a URL's authority, user info dropped; None when unreadable."""
    hostport = netloc.rpartition("@")[2]
    if "[" in hostport or "%" in hostport:  # IPv6 literal or escapes: let the standard library decide
        try:
            parts = urlsplit("http://" + hostport)
            number = parts.port
        except ValueError:
            return None
        return (parts.hostname or ""), ("" if number is None else str(number))
    host, _, port = hostport.partition(":")
    return host.lower(), port


@lru_cache(maxsize=_CACHE_SIZE)
def canonical_url(url: str) -> tuple[str, str] | None:
    """``(canonical URL, domain)`` of ``url`` by the module's rules, or None when it names no web host.

    Pure and cached (the same URL is often posted many times); URLs already in canonical shape take a
    one-regex fast path.

    >>> canonical_url("t.me/durov/1/")
    ('https://t.me/durov/1', 't.me')
    >>> canonical_url("https://x.com:8080/p?fbclid=1")
    ('https://x.com:8080/p', 'x.com')
    >>> canonical_url("mailto:a@b.c") is None
    True
    """
    plain = _PLAIN.fullmatch(url)
    if plain is not None:
        return (url if url[4] == "s" else "https" + url[4:]), plain.group(1)
    return _canonical_url_parsed(url)


def _canonical_url_parsed(url: str) -> tuple[str, str] | None:
    """:func:`canonical_url` by splitting the URL into its parts (any URL; the fast path's reference)."""
    u = url.strip()
    scheme, sep, rest = u.partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        canonical_scheme = _WEB_SCHEMES.get(scheme.lower())
        if canonical_scheme is None:
            return None  # tg://, chrome://, ... name no web resource
    elif u.startswith("//"):
        canonical_scheme, rest = "https", u[2:]
    elif _OPAQUE_SCHEME.match(u):
        return None  # mailto:, tel:, ...
    else:
        canonical_scheme, rest = "https", u
    # fragment first (it may hold '?'), then the query, then authority and path
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    slash = rest.find("/")
    backslash = rest.find("\\")  # browsers read a backslash as "/" in web URLs: it ends the host too
    if backslash >= 0 and (slash < 0 or backslash < slash):
        slash = backslash
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:].rstrip("/"))
    hp = _host_port(netloc)
    if hp is None:
        return None
    host, port = hp
    if host.startswith("www."):
        host = host[4:]
    host = host.rstrip(".")
    if not host:
        return None
    authority = f"[{host}]" if ":" in host else host
    if port not in _DEFAULT_PORTS:
        authority += ":" + port
    if query:
        kept = [p for p in query.split("&") if p and not is_tracking_param(p.partition("=")[0])]
        if kept:
            return f"{canonical_scheme}://{authority}{path}?{'&'.join(kept)}", host
    return f"{canonical_scheme}://{authority}{path}", host


def canonical_urls(urls: list[str]) -> list[str]:
    """The canonical form of each of ``urls``, in the same order (what ``posts.canonical_urls`` holds).

    A URL without a canonical form (no web host: ``tg://...``, ``mailto:...``, ``https://``) gives ``''``,
    so the list stays aligned with ``urls`` and free of nulls. Duplicates are kept (two spellings of one
    page give the same string twice).

    >>> canonical_urls(["http://www.x.org/a/", "x.org/a?utm_source=tg", "mailto:a@x.org"])
    ['https://x.org/a', 'https://x.org/a', '']
    """
    out: list[str] = []
    for u in urls:
        c = canonical_url(u)
        out.append(c[0] if c is not None else "")
    return out


def url_domains(urls: Iterable[str]) -> list[str]:
    """The distinct domains of ``urls`` in order of first appearance (what ``posts.domains`` holds), by the
    same rule as :func:`canonical_url`: API, web-preview and export rows all use this one function.

    >>> url_domains(["https://WWW.Example.org:8080/a", "example.org/b", "t.me/durov", "mailto:a@b.c"])
    ['example.org', 't.me']
    """
    seen: dict[str, None] = {}
    for u in urls:
        c = canonical_url(u)
        if c is not None:
            seen.setdefault(c[1])
    return list(seen)


def canonical_urls_column(lists: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`canonical_urls` of every list in an Arrow column of URL lists (``list<string>``), at once.

    For columnar writers (bulk imports, DuckDB functions): each distinct URL is canonicalised once, and
    the result keeps the input's list lengths and nulls (a null list stays null).

    >>> canonical_urls_column(pa.array([["http://x.org/a/"], None, []])).to_pylist()
    [['https://x.org/a'], None, []]
    """
    arr = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    if isinstance(arr.type, pa.LargeListType):
        arr = arr.cast(pa.list_(pa.string()))
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar([], arr.type))  # null lists become empty: no values to skip
        nulls = lists.is_null()
    else:
        nulls = None
    raw = arr.flatten()
    offsets = pc.subtract(arr.offsets, arr.offsets[0]) if len(arr) else arr.offsets
    seen: dict[str, str] = {}
    out: list[str] = []
    append = out.append
    for u in raw.to_pylist():
        c = seen.get(u)
        if c is None:
            hit = canonical_url(u) if u is not None else None
            c = seen[u] = hit[0] if hit is not None else ""
        append(c)
    values = pa.array(out, pa.string())
    if nulls is None:
        return pa.ListArray.from_arrays(offsets, values)
    return pa.ListArray.from_arrays(offsets, values, mask=nulls.combine_chunks()
                                    if isinstance(nulls, pa.ChunkedArray) else nulls)
