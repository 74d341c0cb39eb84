"""Provenance by field: which route (API, web preview, Desktop export) gave each group of a post's fields, and when.

A post's fields fall into four groups (:data:`GROUPS`); each has two columns in ``posts`` (migration 0011):
``<group>_source`` (``'api'``, ``'web'``, ``'export'``, or two routes joined by ``+`` when the second only
filled fields the first lacked) and ``<group>_seen_at`` (when that route observed the values; for an export, when
the file was imported). Fields in no group (media, author, album, ...) follow the row's ``source``.

This module is the one place that says how a write records them. It is pure: it builds SQL and checks SQL.
:func:`collector._archive.post_writes.execute_posts`, the one path of every statement that writes ``posts``,
calls :func:`check_statement` before it runs a statement, so a statement that writes a group's fields without
saying where they came from is refused, whoever wrote it.

The rules (docs/sources.md, "Provenance by field"):

* An API write sets every group to ``api`` at the observation time: the API's answer is complete and
  authoritative (an empty group from the API is an observation that the post has none).
* A web or export row sets a group where it gives the group a value (:data:`LEADERS`) and its value is stored:
  it *replaced* the group (the merge preferred the row: same or higher rank, not older) -> its own route; it
  only *filled* fields the stored group lacked -> the stored route ``+`` its own (``export+web``).
* The API is authoritative for counters, reactions and the forward header: on a post the API wrote, a row of
  a lower rank (an export) fills none of them (the API's answer is complete; an empty one means "none").
* A merge that keeps the stored values keeps the stored provenance.

Example: ``insert_values("b")["text_source"]`` is the SQL of a new row's text route
(``CASE WHEN (b.text IS NOT NULL) THEN b.source END``); a statement setting ``views`` without
``counters_source`` and ``counters_seen_at`` makes :func:`check_statement` raise :class:`ProvenanceError`
(tests/integration/test_provenance.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache

#: Route names as ``posts.source`` spells them.
ROUTES = ("api", "web", "export")

#: Group -> the ``posts`` columns whose provenance it records.
GROUPS: Mapping[str, tuple[str, ...]] = {
    "text": ("text", "edited_at", "edited", "hashtags", "urls", "domains", "canonical_urls", "mentions"),
    "counters": ("views", "views_label", "views_low", "views_high", "forwards", "replies"),
    "reactions": ("reactions", "reactions_by"),
    "header": ("fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name", "fwd_post_author",
               "fwd_username"),
}
#: Group -> the columns that say a row gives the group a value (any of them not NULL).
LEADERS: Mapping[str, tuple[str, ...]] = {
    "text": ("text",),
    "counters": ("views", "forwards", "replies"),
    "reactions": ("reactions",),
    "header": ("fwd_channel_id", "fwd_message_id", "fwd_posted_at", "fwd_from_name", "fwd_username"),
}
#: Groups the API is authoritative for: a lower-ranked row never fills them on a post the API wrote.
API_AUTHORITATIVE = ("counters", "reactions", "header")
#: The eight provenance columns of ``posts``, in table order.
COLUMNS: tuple[str, ...] = tuple(f"{g}_{part}" for g in GROUPS for part in ("source", "seen_at"))

_OWNER = {col: group for group, cols in GROUPS.items() for col in cols}


class ProvenanceError(Exception):
    """A statement writes a group of post fields without recording where they came from (a bug in tgspread)."""


def has_value(group: str, row: str) -> str:
    """SQL: true when row alias ``row`` gives ``group`` a value.

    >>> has_value("header", "b")[:60]
    '(b.fwd_channel_id IS NOT NULL OR b.fwd_message_id IS NOT NUL'
    """
    return "(" + " OR ".join(f"{row}.{c} IS NOT NULL" for c in LEADERS[group]) + ")"


def api_values(at: str) -> dict[str, str]:
    """Column -> SQL of an API write: every group from the API at ``at`` (e.g. ``'$now'``)."""
    out: dict[str, str] = {}
    for group in GROUPS:
        out[f"{group}_source"] = "'api'"
        out[f"{group}_seen_at"] = at
    return out


def insert_values(row: str) -> dict[str, str]:
    """Column -> SQL for a new web or export row ``row`` (its ``source`` and ``last_seen_at`` name the route and
    the time): each group it gives a value is recorded; the others stay NULL."""
    out: dict[str, str] = {}
    for group in GROUPS:
        given = has_value(group, row)
        out[f"{group}_source"] = f"CASE WHEN {given} THEN {row}.source END"
        out[f"{group}_seen_at"] = f"CASE WHEN {given} THEN {row}.last_seen_at END"
    return out


def _joined(first: str, then: str) -> str:
    """SQL: the routes of ``first`` followed by those of ``then`` it does not name (``export`` and ``web`` ->
    ``export+web``); ``then`` when ``first`` is NULL. Both may be joined routes already."""
    extra = " || ".join(
        f"CASE WHEN contains('+' || {then} || '+', '+{r}+') AND NOT contains('+' || {first} || '+', '+{r}+') "
        f"THEN '+{r}' ELSE '' END" for r in ROUTES)
    return f"CASE WHEN {first} IS NULL THEN {then} ELSE {first} || {extra} END"


def merge_values(new: str, old: str, replaces: Mapping[str, str], fillable: Mapping[str, str]) -> dict[str, str]:
    """Column -> SQL of a merge of row ``new`` (a web or export row) into stored row ``old``.

    ``replaces``: group -> SQL true when the merge prefers ``new``'s values for the group over ``old``'s (its
    rule: same or higher rank, not older). Then the group is ``new``'s route, followed by ``old``'s where
    ``old`` still gives columns ``new`` lacks. Otherwise ``new`` may fill columns ``old`` lacks: its route
    follows ``old``'s, where ``fillable[group]`` (SQL) allows it. The time is ``new.last_seen_at`` whenever
    ``new`` contributed.
    """
    out: dict[str, str] = {}
    for group in GROUPS:
        given = has_value(group, new)
        fills = ("(" + " OR ".join(f"{old}.{c} IS NULL AND {new}.{c} IS NOT NULL" for c in LEADERS[group])
                 + f") AND {fillable[group]}")
        keeps = "(" + " OR ".join(f"{new}.{c} IS NULL AND {old}.{c} IS NOT NULL" for c in LEADERS[group]) + ")"
        replaced = f"({given} AND {replaces[group]})"
        src, at = f"{group}_source", f"{group}_seen_at"
        out[src] = (f"CASE WHEN {replaced} AND {keeps} THEN {_joined(f'{new}.source', f'{old}.{src}')} "
                    f"WHEN {replaced} THEN {new}.source "
                    f"WHEN {fills} THEN {_joined(f'{old}.{src}', f'{new}.source')} ELSE {old}.{src} END")
        out[at] = f"CASE WHEN {replaced} OR {fills} THEN {new}.last_seen_at ELSE {old}.{at} END"
    return out


# -- the check execute_posts runs ------------------------------------------------------------------------------
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+posts\s*\(([^)]*)\)\s*(.*)$", re.I | re.S)
_UPDATE = re.compile(r"^\s*UPDATE\s+posts\s+SET\s+(.*)$", re.I | re.S)
_DO_UPDATE = re.compile(r"\bDO\s+UPDATE\s+SET\s+(.*)$", re.I | re.S)
_SELECT = re.compile(r"^\s*SELECT\s+(.*)$", re.I | re.S)
_CLAUSE_END = re.compile(r"\b(FROM|WHERE|RETURNING)\b", re.I)
_ASSIGN = re.compile(r"^\s*(\w+)\s*=\s*(.*)$", re.S)


def _top_level(text: str) -> Iterator[tuple[int, str]]:
    """(position, character) of ``text`` outside parentheses and string literals."""
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif depth == 0:
                yield i, ch


def _split(text: str) -> list[str]:
    """``text`` cut at its top-level commas, up to its first top-level FROM/WHERE/RETURNING keyword."""
    cut = len(text)
    top = dict(_top_level(text))
    for m in _CLAUSE_END.finditer(text):
        if m.start() in top:
            cut = m.start()
            break
    parts, start = [], 0
    for i, ch in _top_level(text[:cut]):
        if ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:cut])
    return [p.strip() for p in parts if p.strip()]


def _written(sql: str) -> dict[str, str] | None:
    """Column -> SQL of its new value for the statement's writes of ``posts``; None when it writes no columns
    (a DELETE) or is not a form this check reads."""
    m = _INSERT.match(sql)
    written: dict[str, str] = {}
    if m:
        cols = [c.strip().lower() for c in m.group(1).split(",")]
        rest = m.group(2)
        sel = _SELECT.match(rest)
        values = _split(sel.group(1)) if sel else []
        if len(values) == len(cols):
            written.update(zip(cols, values, strict=True))
        else:
            written.update({c: "?" for c in cols})
        upd = _DO_UPDATE.search(rest)
        if upd:
            for part in _split(upd.group(1)):
                a = _ASSIGN.match(part)
                if a:
                    written[a.group(1).lower()] = a.group(2)
        return written
    m = _UPDATE.match(sql)
    if m:
        for part in _split(m.group(1)):
            a = _ASSIGN.match(part)
            if a:
                written[a.group(1).lower()] = a.group(2)
        return written
    return None


@lru_cache(maxsize=256)
def check_statement(sql: str) -> None:
    """Refuse (:class:`ProvenanceError`) a statement that writes a group's fields of ``posts`` without writing
    the group's ``_source`` and ``_seen_at`` (as anything but a bare NULL). Statements are checked once each."""
    written = _written(sql)
    if not written:
        return
    for group, cols in GROUPS.items():
        touched = [c for c in cols if c in written and written[c].strip().upper() != "NULL"]
        if not touched:
            continue
        missing = [p for p in (f"{group}_source", f"{group}_seen_at")
                   if p not in written or written[p].strip().upper() == "NULL"]
        if missing:
            raise ProvenanceError(
                f"a statement writes the {group} fields of posts ({', '.join(touched)}) without "
                f"{' and '.join(missing)}; build it with collector._archive.provenance")
