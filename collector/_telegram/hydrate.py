"""``tgspread hydrate``: re-collect a dehydrated id list through the normal collector.

Each channel of the list (:mod:`collector._parse.id_list`) is resolved the way ``collect`` resolves it (the
archive's cache first: a channel id the archive knows, else the username, resolved once and cached), its
channel snapshot taken when due, and its ids fetched with ``channels.getMessages``, 100 per request: new
posts are archived, archived ones observed again, and ids Telegram answers with an empty message are
deleted posts (marked ``deleted_at`` when archived; listed in ``ChannelResult.deleted_ids`` either way).
A channel that is unknown, private or whose username now names another channel is reported per channel
and nothing of it is fetched. The pass is a ``runs`` row like any other; channel cursors never move (an
id list is not a contiguous stretch of history), so a later ``collect`` of the channel still reads its
whole history.

Example::

    from collector._parse.id_list import read_id_list

    report = await hydrate(client, read_id_list(Path("ids.csv")), archive)
    print(report.summary(), sum(c.deletions for c in report.channels))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from telethon import TelegramClient

from collector._archive.archive import Archive
from collector._parse.id_list import ChannelIds

from .collect import ChannelResult, CollectReport, CollectSettings, _Pass, run_pass


def input_for(archive: Archive, channel: ChannelIds) -> tuple[str, int | None]:
    """How to name a listed channel to the collector, and the channel id it must resolve to (if the list says).

    A channel id the archive knows needs no request; otherwise the username (resolved once, then cached);
    a bare id the archive does not know is reported as not found (an id alone cannot be resolved).
    """
    if channel.channel_id is not None and archive.lookup_id(channel.channel_id) is not None:
        return str(channel.channel_id), channel.channel_id
    if channel.username is not None:
        return f"@{channel.username}", channel.channel_id
    return str(channel.channel_id), None


async def hydrate(
    client: TelegramClient,
    channels: Sequence[ChannelIds],
    archive: Archive,
    *,
    now: datetime | None = None,
    settings: CollectSettings | None = None,
    progress: Callable[[str, ChannelResult], None] | None = None,
) -> CollectReport:
    """One pass over an id list; one :class:`ChannelResult` per listed channel (``deleted_ids`` filled)."""

    async def work(run: _Pass, report: CollectReport) -> None:
        seen: set[str] = set()
        # a bare id the archive does not know last: rows naming its channel by username (the list may name one
        # channel both ways, never on one row) resolve it first, and the archive then knows the id
        bare = [c.channel_id for c in channels if c.username is None and c.channel_id is not None]
        reachable = archive.reachable_ids(bare)
        for listed in sorted(channels, key=lambda c: c.username is None and c.channel_id not in reachable):
            raw, expect = input_for(archive, listed)
            label = raw
            if label in seen:     # two entries named alike: each its own result (run_channels key), the same name
                label = f"{raw} (id {listed.channel_id})" if listed.channel_id is not None else f"{raw} (by name)"
            seen.add(label)
            result = await run.channel(raw, ids=listed.message_ids, expect=expect, label=label)
            run.archive.record_run_channel(run.run_id, result.as_row())
            report.channels.append(result)
            run.archive.release(held_for=run.settings.hold_seconds)

    return await run_pass(client, archive, work, now=now, settings=settings, progress=progress, kind="hydrate")
