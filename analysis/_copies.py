"""Unattributed copies: the same text posted by several channels without a forward header.

A forward names its source; a copy-paste does not. :func:`copies` finds near-duplicate texts across
channels among posts that carry no forward header at all, clusters them, and dates each copy against
the cluster's first appearance. :func:`copy_clusters` summarises one row per cluster.

How (all deterministic, fixed seeds):

1. **Candidates** (in DuckDB): posts that are not forwards (``analysis._frames.is_forward_sql``: no
   ``fwd_channel_id``, ``fwd_message_id``, ``fwd_posted_at`` or ``fwd_from_name``) whose *normalised* text
   has at least ``min_chars`` characters. Normalisation: lower-case, URLs (``http(s)://``, ``www.``,
   ``t.me/``) removed, every run of characters that are neither letters nor digits (punctuation, emoji,
   whitespace) turned into one space.
   The text is the post's current one (after edits; earlier versions in ``post_versions`` are not used).
   Deleted posts count (they were posted) unless ``include_deleted=False``.
2. **Exact duplicates** (identical normalised text, by a 64-bit hash) are grouped as the posts stream
   by; only one representative text per group (the first the scan meets) goes through the similarity
   search.
3. **Shingles**: character ``shingle_size``-grams (5 by default) of the normalised text; with
   ``shingle_unit="word"`` word n-grams instead (use ``shingle_size=3``): about 3x faster, but a one-word
   change costs a short post most of its word shingles, and Telegram posts are short. A text shorter than
   one shingle is one shingle. Tokens: the code points of the normalised text (decoded in C as UTF-32)
   or DuckDB's 64-bit hashes of its words; numpy rolls the shingle hashes over them.
4. **MinHash + LSH** (numpy): ``num_perm`` multiply-add-shift hash functions; the signature is cut into
   bands of ``r`` rows, with ``r`` the largest value for which a pair whose Jaccard similarity is exactly
   ``threshold`` still becomes a candidate with probability >= ``recall`` (see :func:`lsh_bands`).
5. **Verification**: a candidate pair must first share at least :func:`min_agreement` of the signatures'
   low bytes (a pair at ``threshold`` misses that with probability <= 1e-9; long texts in one language
   share enough common shingles that LSH proposes many pairs of unrelated posts, and this drops them
   without fetching their texts); the rest are checked with the *exact* Jaccard similarity of their
   shingle sets. Pairs below ``threshold`` are dropped, as are pairs within one channel (a channel
   reposting its own text is not spread).
6. **Clusters**: connected components (union-find) of the verified pairs; a cluster spans >= 2 channels.
   Because components are transitive, two members of a cluster can be less similar than ``threshold``
   to each other; ``similarity`` says how similar each is to the cluster's first post.

``threshold`` is the Jaccard similarity of the two texts' shingle sets, |A ∩ B| / |A ∪ B|: 1.0 is the same
normalised text. With character 5-grams, one word replaced in a 130-character post gives about 0.8, in a
60-character post about 0.65; a line appended to a short post can bring it below 0.5. Lower the threshold
(0.5-0.6) to catch lightly edited short copies, at the price of more templated false positives.

Cost: linear in the characters of the candidate posts, about 0.17-0.2 us of CPU per character (a third
each the normalisation in DuckDB, the shingles and the MinHash; measured on texts of 500-2,000
characters at load 12 on 2 cores): about 0.25 ms per post of 1,300 characters, so minutes for millions
of long posts. The posts stream through in batches of 10,000 (shingled in slices of 512K characters);
what stays is, per post, its ids, time and text hash, and per distinct text 12 band keys and 64 bytes.

Known limits: templated posts (e.g. automated alerts that differ by a place name) look like copies;
very large LSH buckets (more than ``max_bucket`` texts sharing a band) are paired as a chain plus a star
around their first member instead of all pairs, which may leave a few true pairs unverified.

Example::

    with analysis.connect("archive.duckdb") as con:
        posts = copies(con, threshold=0.8)
        clusters = copy_clusters(con, threshold=0.8)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import is_forward_sql

ShingleUnit = Literal["word", "char"]

_BATCH_ROWS = 10_000
_SLICE_CHARS = 1 << 19    # characters shingled at once (a few MiB of arrays per step)
_BLOCK_VALUES = 32_768   # shingle hashes per MinHash block (256 KiB: fits in L2)
_UTC = pl.Datetime("us", "UTC")

COPIES_SCHEMA: dict[str, pl.DataType] = {
    "cluster_id": pl.Int64(),
    "channel_id": pl.Int64(),
    "message_id": pl.Int64(),
    "posted_at": _UTC,
    "is_first": pl.Boolean(),
    "lag_s": pl.Float64(),
    "similarity": pl.Float64(),
}

CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "cluster_id": pl.Int64(),
    "first_channel_id": pl.Int64(),
    "first_message_id": pl.Int64(),
    "first_posted_at": _UTC,
    "posts": pl.Int64(),
    "channels": pl.Int64(),
    "max_lag_s": pl.Float64(),
    "median_lag_s": pl.Float64(),
    "min_similarity": pl.Float64(),
    "sample_text": pl.String(),
}


# -- SQL pieces --------------------------------------------------------------------------------------


def normalise_sql(column: str = "text") -> str:
    """The DuckDB expression that normalises ``column`` (see the module docstring, step 1).

    Written so that plain single spaces are never regex matches (the slow part of a global replace).
    """
    no_urls = rf"regexp_replace(lower({column}), '(https?://|www\.|t\.me/)\S*', ' ', 'g')"
    spaced = rf"regexp_replace({no_urls}, '[^\pL\pN ]+', ' ', 'g')"
    return f"trim(regexp_replace({spaced}, '  +', ' ', 'g'))"


def _tokens(con: duckdb.DuckDBPyConnection, norm: pa.Array, unit: ShingleUnit) -> tuple[np.ndarray, np.ndarray]:
    """The tokens of the normalised texts ``norm`` (flat uint64 values, start offsets): the characters'
    code points (decoded at C speed, as UTF-32), or 64-bit DuckDB hashes of the words (on ``con``, a
    connection no other result is pending on)."""
    if isinstance(norm, pa.ChunkedArray):
        norm = norm.combine_chunks()
    if unit == "word":
        name = "_tgspread_copies_norm"
        con.register(name, pa.table({"norm": norm}))
        try:
            tokens = con.sql(f"SELECT list_transform(string_split(norm, ' '), lambda x: hash(x)) AS t "
                             f"FROM {name}").to_arrow_table().column("t")
        finally:
            con.unregister(name)
        return _list_parts(tokens)
    lengths = pc.utf8_length(norm).to_numpy(zero_copy_only=False).astype(np.int64)
    text = "".join(norm.to_pylist())
    values = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return values, starts


def _candidates_sql(min_chars: int, include_deleted: bool) -> str:
    """Candidate posts (no forward header, long enough) with their normalised text ``norm``."""
    deleted = "" if include_deleted else "AND deleted_at IS NULL"
    return f"""
        SELECT channel_id, message_id, posted_at, norm
        FROM (
            SELECT channel_id, message_id, posted_at, {normalise_sql()} AS norm
            FROM posts
            WHERE NOT {is_forward_sql()} AND text IS NOT NULL AND length(text) >= {int(min_chars)} {deleted}
        )
        WHERE length(norm) >= {int(min_chars)}
    """


# -- MinHash and LSH (pure) --------------------------------------------------------------------------


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """``(bands, rows)`` for LSH over ``num_perm`` MinHash values.

    A pair with Jaccard similarity ``s`` shares at least one band with probability
    ``1 - (1 - s**rows)**bands``. The largest ``rows`` (fewest false candidates) is chosen for which that
    probability at ``s = threshold`` is still >= ``recall``; ``lsh_bands(0.8, 128)`` is ``(21, 6)``.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads the bits of uint64 values (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _shingle_hashes(tokens: np.ndarray, starts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the ``size``-token shingles of each text, and their start offsets.

    ``tokens[starts[i]:starts[i+1]]`` are text ``i``'s tokens (at least one). A text shorter than
    ``size`` tokens has one shingle, all of it. Duplicate shingles within a text are kept (a set is
    what MinHash and Jaccard see; repeats change neither). Hash: polynomial over the tokens, then mixed.

    Linear and branch-free: the polynomial is rolled over the whole token array at once (``size``
    shifted slices, no gathers), then the starts that do not begin a whole shingle are dropped; the few
    texts shorter than one shingle are hashed on their own (their missing tokens count as 0).
    """
    total = len(tokens)
    length = np.diff(np.append(starts, total))
    ends = starts + length
    padded = np.append(tokens, np.zeros(size, dtype=np.uint64))
    acc = np.zeros(total, dtype=np.uint64)
    mult = np.uint64(0x100000001B3)
    valid = np.ones(total, dtype=bool)
    longs = length >= size
    for k in range(1, size):            # the last size - 1 starts of a text begin no whole shingle
        valid[(ends - k)[longs]] = False
    short = np.flatnonzero(~longs)
    with np.errstate(over="ignore"):
        for j in range(size):
            acc *= mult
            acc += padded[j : j + total]
            acc += np.uint64(j + 1)
        if len(short):
            s_start, s_len = starts[short], length[short]
            for k in range(1, size):    # a short text: one shingle, at its start
                valid[(s_start + k)[k < s_len]] = False
            own = np.zeros(len(short), dtype=np.uint64)
            for j in range(size):
                tok = np.where(j < s_len, padded[s_start + j], np.uint64(0))
                own *= mult
                own += tok + np.uint64(j + 1)
            acc[s_start] = own
        keep = np.flatnonzero(valid)
        values = _mix(acc[keep])
    counts = np.where(longs, length - size + 1, 1)
    new_starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return values, new_starts


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters of ``num_perm`` multiply-add-shift hash functions (odd multipliers)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64 - 1, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
    b = rng.integers(0, 2**64 - 1, size=num_perm, dtype=np.uint64, endpoint=True)
    return a, b


def _minhash(values: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signatures (rows x len(a), uint32) of the sets ``values[starts[i]:starts[i+1]]`` (all non-empty).

    Hash function k is ``(a[k] * x + b[k]) mod 2**64 >> 32`` (multiply-add-shift, Dietzfelbinger et al.).
    Works through the texts in blocks that stay in the CPU cache, with in-place arithmetic; the shift
    is applied to each text's minimum (it is monotonic), not to every value.
    """
    n = len(starts)
    sig = np.empty((n, len(a)), dtype=np.uint32)
    bounds = np.append(starts, len(values))
    shift = np.uint64(32)
    lo = 0
    while lo < n:
        hi = min(n, int(np.searchsorted(bounds, bounds[lo] + _BLOCK_VALUES, side="right")) - 1)
        hi = max(hi, lo + 1)
        block = values[bounds[lo] : bounds[hi]]
        local = starts[lo:hi] - bounds[lo]
        tmp = np.empty_like(block)
        with np.errstate(over="ignore"):
            for k in range(len(a)):
                np.multiply(block, a[k], out=tmp)
                np.add(tmp, b[k], out=tmp)
                # the shift is monotonic: the minimum's high half is the minimum of the high halves
                sig[lo:hi, k] = np.minimum.reduceat(tmp, local) >> shift
        lo = hi
    return sig


def _band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band): a polynomial hash of the band's rows (wrapping arithmetic)."""
    mult = np.uint64(0x9E3779B97F4A7C15)
    keys = np.zeros((sig.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            keys = keys * mult + sig[:, r : bands * rows : rows].astype(np.uint64)
    return keys


def min_agreement(threshold: float, num_perm: int, miss: float = 1e-9) -> int:
    """How many of ``num_perm`` signature bytes two texts must share to be verified exactly.

    Two texts with Jaccard similarity ``s`` share each MinHash value with probability ``s`` (and an
    unequal value's low byte with probability 1/256), so at ``s >= threshold`` the count of equal low
    bytes is at least Binomial(``num_perm``, ``threshold``). The answer is the largest count that such a
    pair falls short of with probability <= ``miss`` (1e-9): the test drops background pairs that LSH
    proposed (long texts in one language share many common shingles) and, in effect, never a true one.
    ``min_agreement(0.8, 64)`` is 30.
    """
    p = min(max(threshold, 0.0), 1.0)
    below = 0.0
    for k in range(num_perm + 1):
        below_next = below + math.comb(num_perm, k) * p**k * (1.0 - p) ** (num_perm - k)
        if below_next > miss:
            return k
        below = below_next
    return num_perm


def _agreements(low: np.ndarray, pairs: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """Equal signature low bytes of each pair (rows of ``low``), in chunks of pairs."""
    out = np.empty(len(pairs), dtype=np.int64)
    for lo in range(0, len(pairs), chunk):
        part = pairs[lo : lo + chunk]
        out[lo : lo + chunk] = (low[part[:, 0]] == low[part[:, 1]]).sum(axis=1)
    return out


def _bucket_pairs(keys: np.ndarray, max_bucket: int) -> np.ndarray:
    """Pairs (i < j, as an (m, 2) array) of texts sharing a key in one band column ``keys``."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    n = len(sk)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    new_run = np.concatenate(([True], sk[1:] != sk[:-1]))
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.append(run_start, n))
    length = run_len[run_id]
    out: list[np.ndarray] = []
    big = length > max_bucket
    if big.any():   # a chain and a star around the first member, instead of all pairs
        pos = np.flatnonzero(big & ~new_run)
        out.append(np.stack([order[pos - 1], order[pos]], axis=1))
        out.append(np.stack([order[run_start[run_id[pos]]], order[pos]], axis=1))
    pos = np.flatnonzero((length >= 2) & ~big)
    d = 1
    while len(pos):
        pos = pos[pos + d < n]
        pos = pos[run_id[pos + d] == run_id[pos]]
        out.append(np.stack([order[pos], order[pos + d]], axis=1))
        d += 1
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(out).astype(np.int64)
    return np.sort(pairs, axis=1)


# -- the pipeline ------------------------------------------------------------------------------------


def _record_batches(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[pa.RecordBatch]:
    reader = con.sql(sql).to_arrow_reader(_BATCH_ROWS)
    yield from reader


def _list_parts(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Flat uint64 values and start offsets of a list<uint64> Arrow column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    starts = (offsets[:-1] - offsets[0]).astype(np.int64)
    return values, starts


@dataclass(frozen=True, slots=True)
class _Fetch:
    """How to fetch the tokens of candidate posts again, for the exact verification."""

    unit: ShingleUnit
    shingle_size: int


class _SeenHashes:
    """A set of uint64 text hashes in sorted numpy runs (8 bytes a hash, not a Python int's ~70): runs of
    doubling size, merged like a binary counter, so adding n hashes costs O(n log n) in all."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def unseen(self, values: np.ndarray) -> np.ndarray:
        """Which of ``values`` are not in the set (a boolean mask)."""
        out = np.ones(len(values), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, values), len(run) - 1)
            out &= run[at] != values
        return out

    def add(self, values: np.ndarray) -> None:
        """Add ``values`` (none of them in the set yet)."""
        if len(values) == 0:
            return
        run = np.sort(values)
        while self.runs and len(self.runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self.runs.pop(), run]))
        self.runs.append(run)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:
            p[i], i = root, p[i]
        return int(root)

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=COPIES_SCHEMA)


def copies(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: float = 0.8,
    min_chars: int = 40,
    shingle_size: int = 5,
    shingle_unit: ShingleUnit = "char",
    num_perm: int = 64,
    recall: float = 0.99,
    include_deleted: bool = True,
    max_bucket: int = 64,
    seed: int = 1,
) -> pl.DataFrame:
    """One row per post that belongs to a cluster of unattributed copies (see the module docstring).

    Columns: ``cluster_id`` (1.. in order of first appearance), ``channel_id``, ``message_id``,
    ``posted_at``, ``is_first`` (the cluster's earliest post; ties broken by channel and message id),
    ``lag_s`` (seconds after the cluster's first post), ``similarity`` (exact Jaccard similarity of the
    post's shingles with the first post's; 1.0 for the same normalised text). Sorted by cluster, time.
    """
    if min_chars < 1 or shingle_size < 1:
        raise ValueError("min_chars and shingle_size must be >= 1")
    con = con.cursor()    # its own connection: a result the caller left unfinished on ``con`` must not block this
    bands, rows = lsh_bands(threshold, num_perm, recall)
    perm_a, perm_b = _permutations(num_perm, seed)
    cand = _candidates_sql(min_chars, include_deleted)
    # One streamed pass: every candidate's ids, time, text hash and normalised text; tokens, shingles and a
    # signature only for the first post of each distinct text (its representative: exact duplicates cost
    # one signature). Nothing waits for the whole archive: memory is one batch plus the ids and keys.
    sql = f"SELECT channel_id, message_id, posted_at, hash(norm) AS text_hash, norm FROM ({cand})"
    tok_con = con.cursor()                  # the word tokens' queries run while the stream is open
    seen = _SeenHashes()
    meta: list[pl.DataFrame] = []
    rep_ids: list[np.ndarray] = []    # (channel_id, message_id) of each representative, in group order
    rep_hashes: list[np.ndarray] = []  # its text hash
    keys: list[np.ndarray] = []
    low: list[np.ndarray] = []        # the signatures' low bytes: a cheap first test of every LSH candidate
    for batch in _record_batches(con, sql):
        frame = pl.from_arrow(batch.select(["channel_id", "message_id", "posted_at", "text_hash"]))
        assert isinstance(frame, pl.DataFrame)
        meta.append(frame)
        hashes = batch.column("text_hash").to_numpy()
        uniq, first = np.unique(hashes, return_index=True)
        new = seen.unseen(uniq)
        if not new.any():
            continue
        seen.add(uniq[new])
        reps = batch.take(pa.array(np.sort(first[new])))
        # in slices of about _SLICE_CHARS characters: the arrays of a slice stay in the CPU cache
        chars = np.cumsum(pc.utf8_length(reps.column("norm")).to_numpy(zero_copy_only=False))
        cuts = np.unique(np.searchsorted(chars, np.arange(_SLICE_CHARS, chars[-1], _SLICE_CHARS)))
        for lo, hi in zip(np.r_[0, cuts + 1], np.r_[cuts + 1, len(chars)], strict=True):
            if hi <= lo:
                continue
            norm = reps.column("norm").slice(int(lo), int(hi - lo))
            values, starts = _shingle_hashes(*_tokens(tok_con, norm, shingle_unit), shingle_size)
            sig = _minhash(values, starts, perm_a, perm_b)
            keys.append(_band_keys(sig, bands, rows))
            low.append((sig & np.uint32(0xFF)).astype(np.uint8))
        ids = [reps.column(c).to_numpy() for c in ("channel_id", "message_id")]
        rep_ids.append(np.stack(ids, axis=1))
        rep_hashes.append(reps.column("text_hash").to_numpy())
    if not rep_hashes:
        return _empty()
    posts = pl.concat(meta).with_columns(pl.col("posted_at").dt.convert_time_zone("UTC"))
    return _cluster(
        con, posts, np.concatenate(rep_ids), np.concatenate(rep_hashes), np.concatenate(keys),
        np.concatenate(low), threshold, _Fetch(shingle_unit, shingle_size), max_bucket,
    )


def _cluster(
    con: duckdb.DuckDBPyConnection,
    posts: pl.DataFrame,
    rep_pairs: np.ndarray,
    rep_hash: np.ndarray,
    keys: np.ndarray,
    low: np.ndarray,
    threshold: float,
    fetch: _Fetch,
    max_bucket: int,
) -> pl.DataFrame:
    n = len(rep_hash)
    group_of = {int(h): g for g, h in enumerate(rep_hash)}
    posts = posts.with_columns(
        pl.col("text_hash").replace_strict(group_of, return_dtype=pl.Int64).alias("g")
    )
    chan = posts.group_by("g").agg(pl.col("channel_id").n_unique().alias("nc"), pl.col("channel_id").first())
    single = np.full(n, -1, dtype=np.int64)   # the one channel of a group, or -1 when it spans several
    one = chan.filter(pl.col("nc") == 1)
    single[one["g"].to_numpy()] = one["channel_id"].to_numpy()

    need = min_agreement(threshold, low.shape[1])
    found: list[np.ndarray] = []
    for j in range(keys.shape[1]):   # band by band, each band's candidates tested at once: memory stays small
        band = _bucket_pairs(keys[:, j], max_bucket)
        if len(band):
            same = (single[band[:, 0]] == single[band[:, 1]]) & (single[band[:, 0]] >= 0)
            band = band[~same]
            found.append(band[_agreements(low, band) >= need])
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), dtype=np.int64)
    sets = _shingle_sets(con, rep_pairs, np.unique(pairs), fetch)
    uf = _UnionFind(n)
    for i, j in pairs.tolist():
        if _jaccard(sets[i], sets[j]) >= threshold:
            uf.union(i, j)
    roots = np.fromiter((uf.find(g) for g in range(n)), dtype=np.int64, count=n)
    posts = posts.with_columns(pl.Series("root", roots[posts["g"].to_numpy()]))
    posts = (
        posts.sort(["posted_at", "channel_id", "message_id"])
        .with_columns(pl.col("channel_id").n_unique().over("root").alias("nc"))
        .filter(pl.col("nc") >= 2)
    )
    if posts.height == 0:
        return _empty()
    first = posts.group_by("root", maintain_order=True).agg(
        pl.col("posted_at").first().alias("first_at"),
        pl.col("g").first().alias("first_g"),
        pl.col("channel_id").first().alias("first_channel_id"),
        pl.col("message_id").first().alias("first_message_id"),
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("cluster_id"))
    posts = posts.join(first, on="root")
    sim = [
        1.0 if g == fg else _jaccard(sets[g], sets[fg])
        for g, fg in zip(posts["g"].to_list(), posts["first_g"].to_list(), strict=True)
    ]
    out = posts.with_columns(
        (
            (pl.col("channel_id") == pl.col("first_channel_id"))
            & (pl.col("message_id") == pl.col("first_message_id"))
        ).alias("is_first"),
        ((pl.col("posted_at") - pl.col("first_at")).dt.total_microseconds() / 1e6).alias("lag_s"),
        pl.Series("similarity", sim, dtype=pl.Float64),
    )
    out = out.select([pl.col(c).cast(t) for c, t in COPIES_SCHEMA.items()])
    return out.sort(["cluster_id", "posted_at", "channel_id", "message_id"])


def _jaccard(x: frozenset[int], y: frozenset[int]) -> float:
    inter = len(x & y)
    return inter / (len(x) + len(y) - inter)


def _shingle_sets(
    con: duckdb.DuckDBPyConnection, rep_pairs: np.ndarray, groups: np.ndarray, fetch: _Fetch
) -> dict[int, frozenset[int]]:
    """Exact shingle sets of the representatives ``groups`` (indexes into ``rep_pairs``), fetched again."""
    if len(groups) == 0:
        return {}
    wanted = pa.table({
        "channel_id": pa.array(rep_pairs[groups, 0], pa.int64()),
        "message_id": pa.array(rep_pairs[groups, 1], pa.int64()),
        "g": pa.array(groups, pa.int64()),
    })
    name = "_tgspread_copies_wanted"
    con.register(name, wanted)
    try:   # only the wanted posts are normalised again (the same expression as the candidates')
        table = con.sql(f"""
            SELECT w.g, {normalise_sql("p.text")} AS norm
            FROM posts p JOIN {name} w ON p.channel_id = w.channel_id AND p.message_id = w.message_id
        """).to_arrow_table()
    finally:
        con.unregister(name)
    values, starts = _shingle_hashes(*_tokens(con, table.column("norm"), fetch.unit), fetch.shingle_size)
    bounds = np.append(starts, len(values)).tolist()
    return {
        int(g): frozenset(values[bounds[k] : bounds[k + 1]].tolist())
        for k, g in enumerate(table.column("g").to_pylist())
    }


def copy_clusters(
    con: duckdb.DuckDBPyConnection, *, sample_chars: int = 200, **options: object
) -> pl.DataFrame:
    """One row per cluster of :func:`copies` (same keyword options, e.g. ``threshold``, ``min_chars``).

    Columns: ``cluster_id``, ``first_channel_id``, ``first_message_id``, ``first_posted_at``, ``posts``,
    ``channels`` (distinct), ``max_lag_s``, ``median_lag_s`` (over the copies, first post excluded),
    ``min_similarity`` (to the first post), ``sample_text`` (the first post's text, cut at ``sample_chars``).
    """
    con = con.cursor()
    members = copies(con, **options)  # type: ignore[arg-type]
    if members.height == 0:
        return pl.DataFrame(schema=CLUSTERS_SCHEMA)
    summary = members.group_by("cluster_id").agg(
        pl.col("channel_id").filter(pl.col("is_first")).first().alias("first_channel_id"),
        pl.col("message_id").filter(pl.col("is_first")).first().alias("first_message_id"),
        pl.col("posted_at").min().alias("first_posted_at"),
        pl.len().cast(pl.Int64).alias("posts"),
        pl.col("channel_id").n_unique().cast(pl.Int64).alias("channels"),
        pl.col("lag_s").max().alias("max_lag_s"),
        pl.col("lag_s").filter(~pl.col("is_first")).median().alias("median_lag_s"),
        pl.col("similarity").min().alias("min_similarity"),
    )
    firsts = summary.select("first_channel_id", "first_message_id").to_arrow()
    name = "_tgspread_copies_firsts"
    con.register(name, firsts)
    try:
        texts = con.sql(f"""
            SELECT p.channel_id AS first_channel_id, p.message_id AS first_message_id,
                   left(p.text, {int(sample_chars)}) AS sample_text
            FROM posts p JOIN {name} f
              ON p.channel_id = f.first_channel_id AND p.message_id = f.first_message_id
        """).pl()
    finally:
        con.unregister(name)
    out = summary.join(texts, on=["first_channel_id", "first_message_id"], how="left")
    return out.select([pl.col(c).cast(t) for c, t in CLUSTERS_SCHEMA.items()]).sort("cluster_id")
