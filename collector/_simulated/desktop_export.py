"""A generated Telegram Desktop export (``result.json``) of any size: for the import tests and ``make bench``.

Deterministic from ``seed``; messages carry edits, forwards, replies, photos, videos, hashtags, links and
reactions at fixed strides, and every 97th is a service message.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_WORDS = ("claim", "report", "video", "новости", "заявление", "фото", "source", "verified", "😀", "🔥", "evidence",
          "official", "according", "sanctions", "regional", "breaking")


def write_generated_export(path: Path, messages: int, *, channel_id: int = 1_500_000_001, seed: int = 7,
                           revision: int = 0) -> Path:
    """Write a single-chat ``result.json`` of a public channel with ``messages`` messages, as Telegram
    Desktop lays it out (1-space indent, one key per line), streaming so any size fits in memory.

    ``revision`` > 0: the same channel exported later. Every 4th post (shifted by the revision) was edited
    since (a new text and a later ``edited_unixtime``) and every post with reactions has more of them, so
    importing it over an earlier revision merges texts, versions and counters, not only new ids.
    """
    rng = random.Random(seed)
    t0 = 1_700_000_000
    with path.open("w", encoding="utf-8") as f:
        f.write(f'{{\n "name": "Generated Channel",\n "type": "public_channel",\n "id": {channel_id},\n'
                ' "messages": [\n')
        for i in range(1, messages + 1):
            ts = t0 + i * 37
            local = datetime.fromtimestamp(ts + 3 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            msg: dict[str, Any] = {"id": i, "type": "message", "date": local, "date_unixtime": str(ts)}
            if i % 97 == 0:
                msg.update(type="service", actor="Generated Channel", actor_id=f"channel{channel_id}",
                           action="pin_message", message_id=i - 1, text="", text_entities=[])
            else:
                msg.update({"from": "Generated Channel", "from_id": f"channel{channel_id}"})
                if i % 11 == 0:
                    msg["edited"] = local
                    msg["edited_unixtime"] = str(ts + 600)
                if i % 7 == 0:
                    msg["forwarded_from"] = f"Source {i % 50}"
                if i % 13 == 0:
                    msg["reply_to_message_id"] = i - 3
                    if i % 65 == 0:                        # a reply to a post of another channel
                        msg["reply_to_peer_id"] = "channel1006503122"
                if i % 5 == 0:
                    msg.update(photo=f"photos/photo_{i}.jpg", photo_file_size=100_000 + i, width=1280, height=720)
                elif i % 17 == 0:
                    msg.update(file=f"video_files/v{i}.mp4", file_name=f"v{i}.mp4", file_size=2_000_000 + i,
                               media_type="video_file", mime_type="video/mp4", duration_seconds=30, width=1280,
                               height=720)
                words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 40)))
                entities: list[dict[str, Any]] = [{"type": "plain", "text": words + " "}]
                if i % 3 == 0:
                    entities.append({"type": "hashtag", "text": f"#tag{i % 30}"})
                if i % 4 == 0:
                    entities.append({"type": "plain", "text": " see "})
                    entities.append({"type": "link", "text": f"https://example{i % 40}.org/a/{i}"})
                if i % 9 == 0:
                    entities.append({"type": "text_link", "text": "here", "href": f"https://news{i % 9}.example/{i}"})
                if revision and (i + revision) % 4 == 0:
                    entities[0] = {"type": "plain", "text": f"{words} (update {revision}) "}
                    msg["edited"] = local
                    msg["edited_unixtime"] = str(ts + 600 + revision * 86_400)
                msg["text"] = [e["text"] if e["type"] == "plain" else e for e in entities]
                msg["text_entities"] = entities
                if i % 2 == 0:
                    msg["reactions"] = [{"type": "emoji", "count": rng.randint(1, 500) + 7 * revision, "emoji": "👍"},
                                        {"type": "emoji", "count": rng.randint(1, 50) + revision, "emoji": "🔥"}]
            body = json.dumps(msg, ensure_ascii=False, indent=1)
            f.write("  " + body.replace("\n", "\n  "))
            f.write(",\n" if i < messages else "\n")
        f.write(" ]\n}\n")
    return path
