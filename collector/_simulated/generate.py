"""Deterministic generator of the simulated Telegram world.

:func:`generate_world` builds the demo/test world: collected broadcast channels with heavy-tailed
activity, external channels they forward from, one closed channel, one public group and one username
that does not exist. Posts carry realistic text (hashtags, mentions, URLs, text links, bold, non-BMP
emoji, Cyrillic and Arabic words; entity offsets in UTF-16 code units), media, albums, replies,
signatures, forwards that form cascades (the header always names the first source), hidden-sender
forwards, unattributed near-copies (ground truth in ``World.copies``), edits and deletions spread over
time, and counters that grow with age. Messages are generated up to ``now + future_days``, so moving
the clock (``World.advance``) makes new posts, edits and deletions appear.

:func:`generate_channel_world` builds a one-channel world with a huge lazy history (a million posts
in about 20 MB) for benchmarks.

Everything is a pure function of the seed: explicitly seeded ``random.Random`` / numpy generators,
no global random state, no ``hash()`` of strings, so the same seed gives the same world in every
process.

Example::

    world = generate_world(seed=7)             # 20 channels, 30 days of history, 30 days ahead
    world.advance(timedelta(days=2))           # new posts, edits and deletions become visible
    lazy = generate_channel_world(1, posts=1_000_000)
"""

from __future__ import annotations

import gc
import hashlib
import math
import random
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any, TypeVar, overload

import numpy as np

from .model import Entity, Media, SimChannel, SimForward, SimMessage, Version
from .plant import CoordinationPlan, Planter, PlantTools
from .world import World

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
_DAY = 86400
_MIN_CHANNEL_ID = 2_150_000_000     # bare channel ids above 2**31, as for channels created since 2021
_MAX_CHANNEL_ID = 2_950_000_000

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_WORDS: dict[str, tuple[str, ...]] = {
    "en": _split(
        "government minister said officials report attack city region forces army talks peace deal "
        "sanctions economy prices inflation bank market oil gas energy election vote president "
        "parliament court law police protest crowd border refugees aid drone missile strike ceasefire "
        "statement sources video footage photo exclusive update latest interview analysis opinion "
        "experts warn crisis emergency storm flood fire heat record weather health vaccine hospital "
        "school students workers union company shares tech startup hackers leak data privacy platform "
        "ban channel news world local today tonight morning week month year million billion percent "
        "people children families victims claims denied confirmed according reports unverified rumours "
        "official spokesman capital north south east west coast river bridge airport station railway "
        "road highway village town district province state federal national international global "
        "summit meeting agreement treaty negotiations"
    ),
    "ru": _split(
        "правительство министр заявил сообщают атака город регион войска армия переговоры мир сделка "
        "санкции экономика цены инфляция банк рынок нефть газ энергия выборы президент парламент суд "
        "закон полиция протест граница беженцы помощь дрон ракета удар перемирие заявление источники "
        "видео фото эксклюзив срочно новости обновление интервью анализ мнение эксперты кризис шторм "
        "наводнение пожар жара рекорд погода здоровье больница школа студенты рабочие компания акции "
        "утечка данные платформа блокировка канал сегодня вечером утром неделя месяц год миллион "
        "процентов люди дети семьи жертвы подтвердили опровергли официально столица север юг восток "
        "запад мост аэропорт вокзал дорога село район область"
    ),
    "ar": _split(
        "الحكومة الوزير قال تقارير هجوم مدينة منطقة القوات الجيش محادثات السلام اتفاق عقوبات الاقتصاد "
        "الأسعار البنك النفط الغاز الطاقة الانتخابات الرئيس البرلمان المحكمة الشرطة احتجاج الحدود "
        "اللاجئين مساعدات صاروخ غارة هدنة بيان مصادر فيديو صور عاجل أخبار تحديث مقابلة تحليل خبراء "
        "أزمة عاصفة فيضان حريق الطقس الصحة مستشفى مدرسة طلاب شركة بيانات قناة اليوم مساء صباح أسبوع "
        "شهر سنة مليون الناس أطفال عائلات ضحايا رسمي العاصمة شمال جنوب شرق غرب"
    ),
}
_HASHTAGS: dict[str, tuple[str, ...]] = {
    "en": ("news", "breaking", "politics", "economy", "world", "war", "tech", "crypto", "sport",
           "weather", "update", "video", "opinion", "factcheck"),
    "ru": ("новости", "срочно", "политика", "экономика", "мир", "видео", "важно"),
    "ar": ("عاجل", "أخبار", "سياسة", "اقتصاد"),
}
_ANCHORS: dict[str, tuple[str, ...]] = {
    "en": ("read more", "source", "full story", "here", "watch the video", "details"),
    "ru": ("подробнее", "источник", "читать", "видео"),
    "ar": ("المصدر", "التفاصيل"),
}
_UPDATE_PREFIX = {"en": "UPD:", "ru": "Обновление:", "ar": "تحديث:"}
# Astral-plane emoji (2 UTF-16 units each, the flag 4) mixed with BMP ones (1 unit) on purpose.
_EMOJI = ("🔥", "🚨", "📢", "👉", "⚡", "✅", "📌", "💥", "🇺🇦", "🤔", "😱", "🙏", "❗", "📷", "🎥",
          "💬", "🧵", "👀")
_DOMAINS = (
    "reuters.com", "apnews.com", "bbc.com", "bbc.co.uk", "nytimes.com", "theguardian.com",
    "aljazeera.com", "dw.com", "france24.com", "bloomberg.com", "ft.com", "washingtonpost.com",
    "ria.ru", "tass.ru", "meduza.io", "rbc.ru", "lenta.ru", "kyivindependent.com", "youtube.com",
    "youtu.be", "t.me", "telegra.ph", "x.com", "twitter.com", "facebook.com", "instagram.com",
    "tiktok.com", "en.wikipedia.org", "substack.com", "rumble.com", "vk.com",
)
_TOPICS = ("news", "daily", "politics", "world", "tech", "crypto", "sport", "economy", "culture",
           "science", "frontline", "local", "memes", "insider", "breaking", "analytics")
_TITLE_WORDS = {
    "en": ("News", "Daily", "Insider", "Monitor", "Report", "Today", "Wire", "Digest", "Watch", "Brief"),
    "ru": ("Новости", "Сводка", "Вести", "Взгляд", "Дайджест", "Хроника"),
    "ar": ("أخبار", "عاجل", "نشرة", "تقرير"),
}
_PEOPLE = ("Anna K.", "Олег Петров", "Ahmad", "Field Reporter", "Мария С.", "J. Smith", "أحمد علي",
           "Editorial desk", "Ivan", "Leila H.")
_BOT_IDS = (1_341_194_997, 5_101_233_321, 6_044_812_559, 1_985_737_506)
_REACTIONS = ("👍", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩", "🤮", "🙏", "👎")
_RESTRICTIONS = (
    ("all", "copyright", "This message couldn't be displayed due to copyright infringement."),
    ("ios", "porn", "This message couldn't be displayed on your device because it violates App Store rules."),
    ("android", "terms", "This message couldn't be displayed on your device because it violates Google Play rules."),
)
_FACTCHECKS = (
    "Independent fact-checkers say this claim is missing context.",
    "This video is from 2019 and shows a different event.",
    "Fact-checkers found no evidence for the figures quoted in this post.",
)
_DOC_TYPES = (
    ("application/pdf", "pdf"), ("application/zip", "zip"), ("text/plain", "txt"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
)
# Local-time posting intensity by hour: quiet nights, busy days.
_DIURNAL = np.array([0.25, 0.12, 0.07, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0,
                     1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.9, 0.7, 0.45])
_WORD_RE = re.compile(r"[^\W\d_]{3,}")

Piece = tuple[str, str | None, str | None]   # text, entity kind (None: plain), url of a text link


# --------------------------------------------------------------------------------------------------
# UTF-16 helpers
# --------------------------------------------------------------------------------------------------

def utf16_len(s: str) -> int:
    """Length of ``s`` in UTF-16 code units, the unit of Telegram's entity offsets.

    >>> utf16_len("a🔥b")
    4
    """
    return len(s.encode("utf-16-le")) >> 1


def utf16_slice(s: str, offset: int, length: int) -> str:
    """The part of ``s`` that an entity with this UTF-16 ``offset`` and ``length`` covers.

    >>> utf16_slice("🔥 #news", 3, 5)
    '#news'
    """
    return s.encode("utf-16-le")[2 * offset: 2 * (offset + length)].decode("utf-16-le")


def _render(pieces: list[Piece]) -> tuple[str, tuple[Entity, ...]]:
    """Join pieces into a text and its entities, offsets counted in UTF-16 code units."""
    parts: list[str] = []
    entities: list[Entity] = []
    offset = 0
    cache = _ENTITY_CACHE
    for text, kind, url in pieces:
        n = len(text) if text.isascii() else len(text.encode("utf-16-le")) >> 1
        if kind is not None:
            if url is None:                       # entities are immutable: share the common ones
                key = (kind, offset, n)
                e = cache.get(key)
                if e is None:
                    e = cache[key] = Entity(kind, offset, n)
                entities.append(e)
            else:
                entities.append(Entity(kind, offset, n, url))
        parts.append(text)
        offset += n
    return "".join(parts), tuple(entities)


_ENTITY_CACHE: dict[tuple[str, int, int], Entity] = {}


# --------------------------------------------------------------------------------------------------
# Random draws
# --------------------------------------------------------------------------------------------------

_T = TypeVar("_T")


class _Draw:
    """Every random draw of one build goes through one instance (seeded explicitly, never global).

    Built on ``random.Random``; the helpers avoid its slow pure-Python paths (``choices``,
    ``lognormvariate``) because the generator draws millions of values.
    """

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.random = rnd.random

    def pick(self, seq: Sequence[_T]) -> _T:
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        """An integer in [a, b]."""
        return a + int(self.random() * (b - a + 1))

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def weighted(self, seq: Sequence[_T], cum: Sequence[float]) -> _T:
        """One of ``seq`` with cumulative weights ``cum``."""
        return seq[bisect_right(cum, self.random() * cum[-1])]

    def normal(self) -> float:
        return self.rnd.gauss(0.0, 1.0)

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.normal())

    def pareto(self, alpha: float) -> float:
        return (1.0 - self.random()) ** (-1.0 / alpha)

    def bits(self, k: int) -> int:
        return self.rnd.getrandbits(k)

    def words(self, lang: str, n: int) -> list[str]:
        vocab = _WORDS[lang]
        r, size = self.random, len(vocab)
        return [vocab[int(r() * size)] for _ in range(n)]


class _TapeDraw(_Draw):
    """The bulk variant: normals and vocabulary words come from a numpy generator in batches."""

    _BATCH = 1 << 15

    def __init__(self, rnd: random.Random, nrng: np.random.Generator) -> None:
        super().__init__(rnd)
        self.nrng = nrng
        self._z: list[float] = []
        self._zi = 0
        self._w: dict[str, list[str]] = {lang: [] for lang in _WORDS}
        self._wi: dict[str, int] = dict.fromkeys(_WORDS, 0)

    def normal(self) -> float:
        i = self._zi
        if i >= len(self._z):
            self._z = self.nrng.standard_normal(self._BATCH).tolist()
            i = 0
        self._zi = i + 1
        return self._z[i]

    def lognormal(self, median: float, sigma: float) -> float:
        i = self._zi
        if i >= len(self._z):
            self._z = self.nrng.standard_normal(self._BATCH).tolist()
            i = 0
        self._zi = i + 1
        return median * math.exp(sigma * self._z[i])

    def words(self, lang: str, n: int) -> list[str]:
        i = self._wi[lang]
        tape = self._w[lang]
        if i + n > len(tape):
            vocab = _WORDS[lang]
            tape = self._w[lang] = [vocab[j] for j in self.nrng.integers(0, len(vocab), self._BATCH).tolist()]
            i = 0
        self._wi[lang] = i + n
        return tape[i: i + n]


def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return tuple(out)


def _lag(d: _Draw, median_s: float, sigma: float) -> float:
    """A heavy-tailed delay in seconds: lognormal, at least a minute, at most 20 days."""
    return min(20.0 * _DAY, max(60.0, d.lognormal(median_s, sigma)))


def _grouped_id(d: _Draw) -> int:
    return (1 << 59) + d.bits(59)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(int(t), UTC)


def _ts(d: datetime) -> int:
    return int(d.timestamp())


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------

_LANG_MIX = ("en", "ru", "ru", "ar")
_TAG_COUNTS, _TAG_CUM = (0, 1, 2, 3), _cum((50, 25, 15, 10))
_VIDEO_ID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _lang(d: _Draw, lang: str) -> str:
    return d.pick(_LANG_MIX) if lang == "mix" else lang


class _Writer:
    """Writes post texts as pieces (plain text or one entity each); draws only from the given ``d``."""

    def __init__(self, usernames: Sequence[str]) -> None:
        self.usernames = tuple(usernames) or ("durov",)

    def url(self, d: _Draw) -> str:
        domain = d.pick(_DOMAINS)
        if domain == "t.me":
            return f"https://t.me/{d.pick(self.usernames)}/{d.randint(2, 4000)}"
        if domain in ("youtube.com", "youtu.be"):
            vid = "".join(d.pick(_VIDEO_ID) for _ in range(11))
            return f"https://www.youtube.com/watch?v={vid}" if domain == "youtube.com" else f"https://youtu.be/{vid}"
        slug = "-".join(d.words("en", d.randint(2, 5)))
        host = domain if domain.count(".") > 1 or d.random() < 0.5 else "www." + domain
        scheme = "https://" if d.random() < 0.9 else ""      # bare domains are detected as URLs too
        return f"{scheme}{host}/2026/{d.randint(1, 12):02d}/{d.randint(1, 28):02d}/{slug}-{d.randint(1, 99999)}"

    def headline(self, d: _Draw, lang: str) -> str:
        text = " ".join(d.words(_lang(d, lang), d.randint(2, 6)))
        return text.upper() if d.random() < 0.3 else text.capitalize()

    def sentence(self, d: _Draw, lang: str, lead: str = "") -> list[Piece]:
        """A sentence preceded by ``lead``; sometimes with a text link on a few words inside."""
        lang = _lang(d, lang)
        words = d.words(lang, d.randint(5, 18))
        words[0] = words[0].capitalize()
        if d.random() < 0.1:
            words.insert(d.randint(1, len(words) - 1), d.pick(_EMOJI))
        if d.random() < 0.12:
            at = d.randint(1, len(words) - 1)
            return [(lead + " ".join(words[:at]) + " ", None, None),
                    (d.pick(_ANCHORS[lang]), "text_url", self.url(d)),
                    (" " + " ".join(words[at:]) + ".", None, None)]
        return [(lead + " ".join(words) + ".", None, None)]

    def post(self, d: _Draw, lang: str, *, url: str | None = None) -> list[Piece]:
        """A channel post: maybe a bold headline, 1-4 sentences, maybe a URL, a mention, hashtags."""
        pieces: list[Piece] = []
        r = d.random()
        lead = ""
        if r < 0.25:
            if d.random() < 0.5:
                pieces.append((d.pick(_EMOJI) + " ", None, None))
            pieces.append((self.headline(d, lang), "bold", None))
            lead = "\n\n"
        elif r < 0.4:
            lead = d.pick(_EMOJI) + " "
        n = 1 + min(3, int(-math.log(1.0 - d.random()) / 1.2))
        for i in range(n):
            pieces += self.sentence(d, lang, " " if i else lead)
        if url is not None or d.random() < 0.18:
            pieces += [("\n", None, None), (url or self.url(d), "url", None)]
        if d.random() < 0.1:
            pieces += [("\nvia " if d.random() < 0.5 else " ", None, None),
                       ("@" + d.pick(self.usernames), "mention", None)]
        k = d.weighted(_TAG_COUNTS, _TAG_CUM)
        if k:
            tags = _HASHTAGS[_lang(d, lang)]
            first = int(d.random() * len(tags))
            for j in range(min(k, len(tags))):        # distinct tags: consecutive in the list
                pieces.append(("\n\n" if j == 0 else " ", None, None))
                pieces.append(("#" + tags[(first + j) % len(tags)], "hashtag", None))
        return pieces

    def chatter(self, d: _Draw, lang: str) -> list[Piece]:
        """A short group message."""
        text = " ".join(d.words(_lang(d, lang), d.randint(1, 12)))
        if d.random() < 0.2:
            text += " " + d.pick(_EMOJI)
        return [(text, None, None)]


def _mutate(text: str, entities: tuple[Entity, ...], d: _Draw, lang: str,
           *, append: bool = False) -> tuple[str, tuple[Entity, ...]]:
    """A slightly changed text: one plain word replaced or inserted, or (``append``) a line added.

    Entities keep covering the same characters: those after the change move by its UTF-16 length.
    Used for edits and for unattributed copies.
    """
    lang = _lang(d, lang)
    if append or not text:
        addition = " ".join(d.words(lang, d.randint(3, 10)))
        if text:
            addition = f"\n\n{_UPDATE_PREFIX[lang]} {addition}"
        return text + addition, entities
    matches = list(_WORD_RE.finditer(text))
    for _ in range(8):
        if not matches:
            break
        m = d.pick(matches)
        a16 = utf16_len(text[: m.start()])
        b16 = a16 + utf16_len(m.group())
        if any(e.offset < b16 and a16 < e.offset + e.length for e in entities):
            continue
        word = d.pick(_WORDS[lang])
        if word == m.group():
            continue
        if d.random() < 0.6:        # replace the word
            new_text = text[: m.start()] + word + text[m.end():]
            delta = utf16_len(word) - (b16 - a16)
        else:                       # insert a word after it
            new_text = text[: m.end()] + " " + word + text[m.end():]
            delta = utf16_len(word) + 1
        shifted = tuple(e if e.offset < b16 else replace(e, offset=e.offset + delta) for e in entities)
        return new_text, shifted
    return f"{text} {d.pick(_WORDS[lang])}", entities          # no plain word to change: add one


# --------------------------------------------------------------------------------------------------
# Media, edits, deletions
# --------------------------------------------------------------------------------------------------

_MEDIA_KINDS = ("none", "photo", "video", "document", "audio", "voice", "webpage", "poll")
_MEDIA_CUM = _cum((48, 24, 9, 4, 2, 1, 10, 1))
_PHOTO_SIZES = ((1280, 720), (1280, 960), (960, 1280), (1080, 1080), (800, 600))
_VIDEO_SIZES = ((1280, 720), (720, 1280), (640, 360), (1920, 1080))


def _make_media(d: _Draw, writer: _Writer, lang: str, kind: str, url: str = "") -> Media | None:
    """Media of ``kind`` with plausible mime type, size, duration, dimensions or file name."""
    if kind == "none":
        return None
    mid = d.bits(62)
    if kind == "photo":
        w, h = d.pick(_PHOTO_SIZES)
        return Media("photo", mid, "image/jpeg", d.randint(40_000, 400_000), width=w, height=h)
    if kind == "video":
        w, h = d.pick(_VIDEO_SIZES)
        dur = round(min(3600.0, d.lognormal(45.0, 1.0)), 1)
        return Media("video", mid, "video/mp4", int(dur * d.randint(80_000, 400_000)) + 10_000,
                     duration=dur, width=w, height=h)
    if kind == "document":
        mime, ext = d.pick(_DOC_TYPES)
        name = "_".join(d.words("en", d.randint(1, 3)))
        return Media("document", mid, mime, d.randint(5_000, 20_000_000), filename=f"{name}.{ext}")
    if kind == "audio":
        dur = round(d.uniform(60, 600), 1)
        name = "_".join(d.words("en", 2))
        return Media("audio", mid, "audio/mpeg", int(dur * 16_000), duration=dur, filename=f"{name}.mp3")
    if kind == "voice":
        dur = round(d.uniform(3, 180), 1)
        return Media("voice", mid, "audio/ogg", int(dur * 4_000), duration=dur)
    if kind == "webpage":
        return Media("webpage", mid, url=url, title=writer.headline(d, lang))
    if kind == "poll":
        return Media("poll", mid, title=writer.headline(d, lang) + "?")
    return None


def _decide_life(d: _Draw, lang: str, m: SimMessage, t: int, *, editable: bool, delete: bool = True) -> None:
    """When (if ever) a message is deleted (~2%) and edited (~5% of editable ones, once or twice).

    ``delete=False`` leaves ``deleted_at`` as it is (decided elsewhere); edits stay before it.
    """
    if delete and d.random() < 0.02:
        m.deleted_at = _dt(t + _lag(d, 6 * 3600, 1.7))
    if editable and m.versions[0].text and d.random() < 0.05:
        at = float(t)
        v = m.versions[0]
        for _ in range(1 if d.random() < 0.75 else 2):
            at += _lag(d, 3600, 2.2)
            when = _dt(at)
            if m.deleted_at is not None and when >= m.deleted_at:
                break
            text, ents = _mutate(v.text, v.entities, d, lang, append=d.random() < 0.3)
            v = Version(effective_at=when, edited_at=when, text=text, entities=ents)
            m.versions.append(v)


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Spec:
    """A channel plus what the generator needs about it while it writes its history."""

    ch: SimChannel
    role: str                      # 'collected', 'external', 'closed', 'group'
    lang: str                      # 'en', 'ru', 'ar' or 'mix'
    rate: float                    # mean posts per day
    tz: int                        # hours east of UTC of its audience (diurnal pattern)
    community: int
    p_forward: float
    view_frac: float               # share of subscribers that views an ordinary post
    authors: tuple[str, ...] = ()  # post signatures; empty when the channel does not sign
    protected_from: float = math.inf
    reactions: tuple[str, ...] = ()
    shares: tuple[float, ...] = ()  # share of all reactions each of ``reactions`` gets
    created: float = 0.0
    posted: list[int] = field(default_factory=list)     # epoch seconds by message index
    fitness: list[float] = field(default_factory=list)  # how forwardable, by message index
    forwarded: set[tuple[int, int]] = field(default_factory=set)   # roots this channel forwarded

    @property
    def messages(self) -> list[SimMessage]:
        return self.ch.messages  # type: ignore[return-value]

    def participants(self, t: float) -> float:
        return self.ch.base_participants + self.ch.participants_per_day * max(0.0, t - self.created) / _DAY


def _slot_times(nrng: np.random.Generator, t0: int, t1: int, rate: float, tz: int) -> np.ndarray:
    """Posting times in (t0, t1], sorted: Poisson per day, bursty days, a diurnal profile."""
    if t1 <= t0 or rate <= 0:
        return np.zeros(0, dtype=np.int64)
    day0 = t0 // _DAY * _DAY
    n_days = (t1 - day0) // _DAY + 1
    factors = nrng.gamma(4.0, 0.25, n_days)
    factors[nrng.random(n_days) < 0.04] *= 3.0              # news days
    counts = nrng.poisson(rate * factors)
    t = _times_in_days(nrng, day0, np.repeat(np.arange(n_days, dtype=np.int64), counts), tz)
    return t[(t > t0) & (t <= t1)]


def _times_in_days(nrng: np.random.Generator, day0: int, days: np.ndarray, tz: int) -> np.ndarray:
    """One time per entry of ``days`` (day numbers since ``day0``), hour from the diurnal profile."""
    profile = np.roll(_DIURNAL, -tz)
    hours = nrng.choice(24, size=len(days), p=profile / profile.sum())
    t = day0 + days * _DAY + hours * 3600 + nrng.integers(0, 3600, len(days))
    t.sort(kind="stable")
    return t.astype(np.int64)


def _make_channel(d: _Draw, *, cid: int, role: str, username: str, title: str, lang: str,
                  created: datetime, linked: int | None) -> SimChannel:
    base = int(min(3_000_000, max(300, d.lognormal(15_000, 1.3))))
    about = " ".join(d.words(_lang(d, lang), d.randint(4, 14))).capitalize()
    if d.random() < 0.5:
        about += f"\nContact: @{username}_bot"
    return SimChannel(
        channel_id=cid, access_hash=d.bits(64) - (1 << 63), title=title, about=about,
        created_at=created, usernames=[(created, username)], base_participants=base,
        participants_per_day=base * d.uniform(0.0005, 0.01), megagroup=role == "group",
        linked_chat_id=linked, closed=role == "closed", messages=[],
    )


def _make_spec(d: _Draw, ch: SimChannel, role: str, lang: str, rate: float, n_comm: int) -> _Spec:
    reactions = tuple(d.rnd.sample(_REACTIONS, d.randint(3, 7)))
    shares, s = [], 1.0
    for _ in reactions:
        s *= d.uniform(0.3, 0.7)
        shares.append(s)
    return _Spec(
        ch=ch, role=role, lang=lang, rate=rate, tz=d.pick((0, 1, 2, 3, 3, 3, 4, -5)),
        community=int(d.random() * n_comm),
        p_forward=0.0 if role == "group" else min(0.6, max(0.03, d.lognormal(0.18, 0.5))),
        view_frac=d.uniform(0.08, 0.6),
        authors=tuple(d.rnd.sample(_PEOPLE, 3)) if role != "group" and d.random() < 0.25 else (),
        reactions=reactions, shares=tuple(shares), created=ch.created_at.timestamp(),
    )


def _make_specs(d: _Draw, nrng: np.random.Generator, *, channels: int, external: int,
                posts_per_day: float, start: datetime, now: datetime, special: bool) -> list[_Spec]:
    """The channels of the world with their roles, rates, languages and communities."""
    roles = ["collected"] * channels + ["external"] * external + (["closed", "group"] if special else [])
    n = len(roles)
    ids = d.rnd.sample(range(_MIN_CHANNEL_ID, _MAX_CHANNEL_ID), n + channels)
    linked_pool = ids[n:]                                  # ids of discussion groups
    # Heavy-tailed activity, normalised so that collected channels average exactly posts_per_day.
    weights = nrng.lognormal(0.0, 1.1, channels)
    rates = (weights / weights.mean() * posts_per_day).tolist() if channels else []
    n_comm = max(2, (channels + external) // 8)
    topics = list(_TOPICS)
    d.rnd.shuffle(topics)
    specs: list[_Spec] = []
    counts: dict[str, int] = {}
    for i, role in enumerate(roles):
        k = counts.get(role, 0) + 1
        counts[role] = k
        lang = d.weighted(("en", "ru", "ar", "mix"), _cum((45, 30, 10, 15)))
        topic = topics[i % len(topics)]
        if role == "collected":
            username, rate, back = f"sim_{topic}_{k:02d}", rates[k - 1], d.uniform(2.0, 6.0)
        elif role == "external":
            username, rate = f"sim_ext_{topic}_{k:02d}", posts_per_day * 0.15 * d.lognormal(1.0, 0.6)
            back = d.uniform(4.0, 10.0)
        elif role == "closed":
            username, rate, back = f"sim_closed_{k:02d}", posts_per_day * 0.1, d.uniform(4.0, 10.0)
        else:
            username, rate, back = f"sim_chat_{k:02d}", posts_per_day * 0.3, d.uniform(4.0, 10.0)
        created = (start - timedelta(days=back)).replace(microsecond=0)
        word = d.pick(_TITLE_WORDS[lang if lang != "mix" else "ru"])
        title = f"{topic.capitalize()} chat" if role == "group" else f"{topic.capitalize()} {word} {k}"
        linked = linked_pool[k - 1] if role == "collected" and d.random() < 0.4 else None
        ch = _make_channel(d, cid=ids[i], role=role, username=username, title=title, lang=lang,
                           created=created, linked=linked)
        specs.append(_make_spec(d, ch, role, lang, rate, n_comm))
    collected = [s for s in specs if s.role == "collected"]
    if collected:
        # One channel protects its content part-way through: its later posts are noforwards.
        collected[-1].protected_from = (start + timedelta(days=d.uniform(0.0, 5.0))).timestamp()
        # One channel is renamed 36 hours after `now`: a collector must not need to resolve it again.
        renamed = collected[0].ch
        renamed.usernames.append((now + timedelta(hours=36), renamed.usernames[0][1] + "_new"))
    if len(collected) > 1:
        # One was renamed in the past: its old name resolves to nothing now.
        prev = collected[1].ch
        name = prev.usernames[0][1]
        prev.usernames[:] = [(prev.created_at, name.replace("sim_", "sim_old_", 1)),
                             (start + min(timedelta(days=2), (now - start) / 2), name)]
    return specs


# --------------------------------------------------------------------------------------------------
# The history writer
# --------------------------------------------------------------------------------------------------

_RootKey = tuple[int, int]


class _Builder:
    """Writes every channel's history in one global time order, so a forward can pick earlier posts."""

    def __init__(self, d: _Draw, specs: list[_Spec], writer: _Writer) -> None:
        self.d = d
        self.specs = specs
        self.writer = writer
        self.index = {s.ch.channel_id: i for i, s in enumerate(specs)}
        self.copies: list[tuple[_RootKey, _RootKey]] = []
        self.nfwd: dict[_RootKey, int] = {}
        self.events: list[_RootKey] = []       # the root of every forward, in time order
        self.event_root_t: list[int] = []      # and when that root was posted
        self.custom_emoji = [(1 << 62) + d.bits(60) for _ in range(3)]
        # Forward affinity: channels of one community forward each other far more, and every forward
        # reinforces the pair, so channels keep forwarding the channels they forwarded before.
        self.affinity = [
            [0.0 if j == i or o.role == "group" or s.role == "group"
             else (1.0 if s.community == o.community else 0.1) for j, o in enumerate(specs)]
            for i, s in enumerate(specs)
        ]

    # -- building blocks ---------------------------------------------------------------------------
    def _append(self, spec: _Spec, t: int, when: datetime, fit: float, **kw: Any) -> SimMessage:
        """Append a message with the next id to the channel."""
        msgs = spec.messages
        m = SimMessage(channel_id=spec.ch.channel_id, message_id=len(msgs) + 1,
                       posted_at=when, **kw)
        msgs.append(m)
        spec.posted.append(t)
        spec.fitness.append(fit)
        return m

    def _fitness(self) -> float:
        f = self.d.lognormal(1.0, 0.8)
        if self.d.random() < 0.02:                         # the occasional viral post
            f *= 3.0 * self.d.pareto(1.2)
        return f

    def _kw(self, spec: _Spec, t: int, *, sign: bool = True) -> dict[str, Any]:
        """Signature and noforwards of a new post (its counters are set in :meth:`finish`)."""
        kw: dict[str, Any] = {}
        if sign and spec.authors:
            kw["post_author"] = self.d.pick(spec.authors)
        if t >= spec.protected_from:
            kw["noforwards"] = True
        return kw

    def _recent_post(self, spec: _Spec, when: datetime, back: int = 40) -> SimMessage | None:
        msgs = spec.messages
        for _ in range(4):
            m = msgs[len(msgs) - 1 - int(self.d.random() * min(back, len(msgs)))]
            if not m.is_service and m.visible_at(when):
                return m
        return None

    def _other_chat_post(self, spec: _Spec, when: datetime) -> SimMessage | None:
        """The newest visible post of another channel (chosen by the channel's size, so no draw is spent and
        the rest of the world stays as it was): what a cross-chat reply answers."""
        others = [s for s in self.specs if s is not spec and s.role != "group" and s.messages]
        if not others:
            return None
        src = others[len(spec.messages) % len(others)]
        for m in reversed(src.messages[-20:]):
            if not m.is_service and m.visible_at(when):
                return m
        return None

    # -- one slot of a channel's timeline ----------------------------------------------------------
    def slot(self, ci: int, t: int, pin: bool) -> None:
        spec = self.specs[ci]
        d = self.d
        when = _dt(t)
        if pin:
            target = self._recent_post(spec, when, back=20)
            if target is not None:
                self._append(spec, t, when, 0.0, versions=[Version(when, None, "")], action="pin",
                             pinned_message_id=target.message_id)
            return
        if spec.role == "group":
            self._original(spec, t, when, chatter=True)
            return
        u = d.random()
        if u < spec.p_forward:
            if d.random() < 0.05:
                self._hidden_forward(spec, t, when)
            elif not self._forward(ci, t, when):
                self._original(spec, t, when)
        elif u < spec.p_forward + 0.03 and spec.role == "collected":
            if not self._copy(ci, t, when):
                self._original(spec, t, when)
        elif u < spec.p_forward + 0.07:
            self._album(spec, t, when)
        else:
            self._original(spec, t, when)

    def _original(self, spec: _Spec, t: int, when: datetime, *, chatter: bool = False) -> None:
        d = self.d
        kind = "none" if chatter else d.weighted(_MEDIA_KINDS, _MEDIA_CUM)
        url = self.writer.url(d) if kind == "webpage" else None
        if chatter:
            pieces = self.writer.chatter(d, spec.lang)
        elif kind == "poll" or (kind in ("photo", "video") and d.random() < 0.12):
            pieces = []                                    # media without a caption
        else:
            pieces = self.writer.post(d, spec.lang, url=url)
        text, ents = _render(pieces)
        fit = self._fitness()
        kw = self._kw(spec, t, sign=not chatter)
        if d.random() < 0.04 and len(spec.messages) > 2:
            target = self._recent_post(spec, when)
            other = self._other_chat_post(spec, when) if len(spec.messages) % 4 == 0 else None
            if other is not None:                          # a reply to a post of another channel
                kw["reply_to_message_id"], kw["reply_to_peer_id"] = other.message_id, other.channel_id
            elif target is not None:
                kw["reply_to_message_id"] = target.message_id
        if not chatter:
            r = d.random()
            if r < 0.005:
                kw["via_bot_id"] = d.pick(_BOT_IDS)
            elif r < 0.0065:
                kw["restriction_reason"] = (d.pick(_RESTRICTIONS),)
            elif r < 0.0095 and spec.role == "collected":
                kw["factcheck"] = d.pick(_FACTCHECKS)
        media = _make_media(d, self.writer, spec.lang, kind, url or "")
        m = self._append(spec, t, when, fit, versions=[Version(when, None, text, ents)], media=media, **kw)
        _decide_life(d, spec.lang, m, t, editable=True)

    def _album(self, spec: _Spec, t: int, when: datetime) -> None:
        """2-5 consecutive messages with one grouped_id, each with media, the caption on the first."""
        d = self.d
        k = d.weighted((2, 3, 4, 5), _cum((40, 25, 15, 20)))
        gid = _grouped_id(d)
        text, ents = _render(self.writer.post(d, spec.lang)) if d.random() < 0.85 else ("", ())
        fit = self._fitness()
        kw = self._kw(spec, t)
        for j in range(k):
            media = _make_media(d, self.writer, spec.lang, "photo" if d.random() < 0.7 else "video")
            version = Version(when, None, text, ents) if j == 0 else Version(when, None, "")
            m = self._append(spec, t, when, fit, versions=[version], media=media, grouped_id=gid, **kw)
            _decide_life(d, spec.lang, m, t, editable=j == 0)

    def _hidden_forward(self, spec: _Spec, t: int, when: datetime) -> None:
        """A forward whose original sender hides itself: only a name and a date in the header."""
        d = self.d
        header = SimForward(None, None, _dt(t - _lag(d, 3 * 3600, 1.6)), from_name=d.pick(_PEOPLE))
        text, ents = _render(self.writer.post(d, spec.lang))
        kind = d.pick(("photo", "video", "none", "none", "none"))
        media = _make_media(d, self.writer, spec.lang, kind)
        fit = self._fitness()
        kw = self._kw(spec, t, sign=False)
        m = self._append(spec, t, when, fit, versions=[Version(when, None, text, ents)], media=media,
                         fwd=header, **kw)
        _decide_life(d, spec.lang, m, t, editable=False)

    # -- forwards and copies -----------------------------------------------------------------------
    @staticmethod
    def _root(m: SimMessage) -> _RootKey | None:
        """The (channel, id) a forward of ``m`` names: ``m`` itself, or the origin ``m`` forwards."""
        if m.fwd is None:
            return (m.channel_id, m.message_id)
        if m.fwd.channel_id is None or m.fwd.message_id is None:
            return None
        return (m.fwd.channel_id, m.fwd.message_id)

    def _forwardable(self, spec: _Spec, m: SimMessage, when: datetime) -> bool:
        if m.is_service or m.noforwards or m.posted_at >= when:
            return False
        if m.deleted_at is not None and m.deleted_at <= when:
            return False
        if m.grouped_id is not None:                          # only an album's first item
            src = self.specs[self.index[m.channel_id]]
            if src.messages[m.message_id - 2].grouped_id == m.grouped_id:
                return False
        root = self._root(m)
        return root is None or (root[0] != spec.ch.channel_id and root not in spec.forwarded)

    def _source(self, ci: int) -> _Spec | None:
        cum = list(accumulate(self.affinity[ci]))
        if not cum or cum[-1] <= 0:
            return None
        return self.specs[bisect_right(cum, self.d.random() * cum[-1])]

    @staticmethod
    def _before(src: _Spec, t: float, n: int = 10) -> list[SimMessage]:
        """The ``n`` latest messages of ``src`` posted at or before ``t``, newest first."""
        k = bisect_right(src.posted, t)
        return [src.messages[i] for i in range(k - 1, max(0, k - n) - 1, -1)]

    def _pick_origin(self, ci: int, t: int, when: datetime) -> SimMessage | None:
        """What a channel forwards at ``t``: an origin trending among recent forwards (preferential
        attachment) or a post of a channel it likes from minutes to days earlier (heavy-tailed lag)."""
        d = self.d
        spec = self.specs[ci]
        n = len(self.events)
        if n and d.random() < 0.45:
            row = self.affinity[ci]
            top = max(row)
            for _ in range(4):
                # A recent forward event, picked uniformly: origins forwarded often are picked often.
                j = n - 1 - int(d.random() * min(n, 300))
                key = self.events[j]
                si = self.index[key[0]]
                if d.random() * top > row[si]:             # prefer the channels it likes
                    continue
                if d.random() > math.exp((self.event_root_t[j] - t) / (6 * 3600)):    # news ages
                    continue
                m = self.specs[si].messages[key[1] - 1]
                if self._forwardable(spec, m, when):
                    return m
        src = self._source(ci)
        if src is None:
            return None
        cands = [m for m in self._before(src, t - _lag(d, 3600, 1.8), 4) if self._forwardable(spec, m, when)]
        if not cands:
            return None
        cum = list(accumulate(src.fitness[m.message_id - 1] * (1 + self.nfwd.get(self._root(m) or (0, 0), 0))
                              for m in cands))
        return cands[min(len(cands) - 1, bisect_right(cum, d.random() * cum[-1]))]

    def _forward(self, ci: int, t: int, when: datetime) -> bool:
        spec = self.specs[ci]
        hop = self._pick_origin(ci, t, when)
        if hop is None:
            return False
        d = self.d
        src = self.specs[self.index[hop.channel_id]]
        items = [hop]
        if hop.grouped_id is not None:                        # forwarding an album forwards all of it
            j = hop.message_id
            while j < len(src.messages) and src.messages[j].grouped_id == hop.grouped_id:
                items.append(src.messages[j])
                j += 1
        gid = _grouped_id(d) if len(items) > 1 else None
        fit = self._fitness()
        kw = self._kw(spec, t, sign=False)
        for item in items:
            # Telegram names the first source, never the hop: keep the hop's own header if it has one.
            header = item.fwd or SimForward(item.channel_id, item.message_id, item.posted_at,
                                            post_author=item.post_author)
            v = item.version_at(when)
            m = self._append(spec, t, when, fit, versions=[Version(when, None, v.text, v.entities)],
                             media=item.media, fwd=header, grouped_id=gid, **kw)
            _decide_life(d, spec.lang, m, t, editable=False)
        root = self._root(hop)
        if root is not None:
            self.nfwd[root] = self.nfwd.get(root, 0) + 1
            self.events.append(root)
            self.event_root_t.append(_ts(hop.fwd.posted_at) if hop.fwd else _ts(hop.posted_at))
            spec.forwarded.add(root)
        self.affinity[ci][self.index[hop.channel_id]] += 0.3
        return True

    def _copy(self, ci: int, t: int, when: datetime) -> bool:
        """An unattributed copy: another channel's earlier text, slightly changed, no forward header."""
        d = self.d
        spec = self.specs[ci]
        src = self._source(ci)
        if src is None:
            return False
        cands = [m for m in self._before(src, t - _lag(d, 2 * 3600, 1.5))
                 if not m.is_service and m.fwd is None and len(m.version_at(when).text.split()) >= 12]
        if not cands:
            return False
        orig = d.pick(cands)
        v = orig.version_at(when)
        text, ents = _mutate(v.text, v.entities, d, src.lang)
        if d.random() < 0.3:
            text, ents = _mutate(text, ents, d, src.lang)
        media = orig.media
        if media is not None:                                  # re-uploaded: same kind, a new file
            media = replace(media, media_id=d.bits(62))
        fit = self._fitness()
        kw = self._kw(spec, t)
        m = self._append(spec, t, when, fit, versions=[Version(when, None, text, ents)], media=media, **kw)
        _decide_life(d, spec.lang, m, t, editable=True)
        self.copies.append(((m.channel_id, m.message_id), (orig.channel_id, orig.message_id)))
        return True

    def finish(self, nrng: np.random.Generator) -> None:
        """Set every message's final counters, vectorised per channel.

        Views scale with the subscribers at posting time and the post's fitness (heavy-tailed);
        forwards, replies (only with a discussion group) and reactions are small shares of them;
        an origin's forward counter is at least the number of forwards it got in this world.
        """
        for spec in self.specs:
            _set_counters(spec, nrng, self.custom_emoji)
        for (cid, mid), n in self.nfwd.items():
            m = self.specs[self.index[cid]].messages[mid - 1]
            m.final_forwards = max(m.final_forwards, n)


def _set_counters(spec: _Spec, nrng: np.random.Generator, custom_emoji: Sequence[int]) -> None:
    msgs = spec.messages
    n = len(msgs)
    if spec.role == "group" or n == 0:                    # group messages show no counters
        for m in msgs:
            m.tau_s = 3600.0
        return
    t = np.asarray(spec.posted, dtype=np.float64)
    participants = spec.ch.base_participants + spec.ch.participants_per_day * np.maximum(0.0, t - spec.created) / _DAY
    views = np.maximum(1, (participants * spec.view_frac * np.asarray(spec.fitness)).astype(np.int64))
    z = nrng.standard_normal((4, n))
    forwards = (views * 0.004 * np.exp(z[0])).astype(np.int64)
    replies = (views * 0.002 * np.exp(z[1])).astype(np.int64) if spec.ch.linked_chat_id else np.zeros(n, np.int64)
    total = views * 0.012 * np.exp(0.8 * z[2])
    tau = 3600.0 * 3.5 * np.exp(0.4 * z[3])
    counts = (total[:, None] * np.asarray(spec.shares)[None, :]).astype(np.int64).tolist()
    custom = ((nrng.random(n) < 0.08) & (total > 20)).tolist()
    custom_id = nrng.integers(0, len(custom_emoji), n).tolist()
    emoji = spec.reactions
    for i, (m, v, f, r, tau_s, row) in enumerate(zip(msgs, views.tolist(), forwards.tolist(), replies.tolist(),
                                                       tau.tolist(), counts, strict=True)):
        if m.action is not None:
            continue
        m.final_views, m.final_forwards, m.final_replies, m.tau_s = v, f, r, tau_s
        reactions = [(e, c) for e, c in zip(emoji, row, strict=False) if c > 0]
        if custom[i]:
            reactions.append((f"custom:{custom_emoji[custom_id[i]]}", max(1, int(total[i]) // 50)))
        m.final_reactions = tuple(reactions)


# --------------------------------------------------------------------------------------------------
# The demo / test world
# --------------------------------------------------------------------------------------------------

@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the world is ~10^5 acyclic records, and repeated full
    collections while they are created cost a sizeable share of the build time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate_world(
    seed: int = 1,
    *,
    channels: int = 20,
    days: float = 30.0,
    future_days: float = 30.0,
    posts_per_day: float = 80.0,
    start: datetime = DEFAULT_START,
    external_channels: int | None = None,
    special_seeds: bool = True,
    coordination: CoordinationPlan | None = None,
) -> World:
    """A deterministic world of ``channels`` collected channels whose clock reads ``start + days``.

    Messages exist from each channel's creation (a few days before ``start``) up to
    ``now + future_days``. ``external_channels`` (default ``channels // 2``) are public channels that
    are forwarded from but not in ``world.seeds``. With ``special_seeds`` the seeds also hold a closed
    channel (resolvable, content fails with CHANNEL_PRIVATE), a public megagroup and a username that
    does not exist (``world.missing_usernames``). ``coordination`` plants groups of channels that act
    together, and busy channels that do not, with their labels in ``world.coordination``
    (:mod:`collector._simulated.plant`); None (the default) plants nothing.

    Example::

        world = generate_world(seed=3, channels=5, days=7, future_days=3)
        sum(len(ch.posts(world.now)) for ch in world.seed_channels())
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    with _gc_paused():
        return _generate_world(seed, channels=channels, days=days, future_days=future_days,
                               posts_per_day=posts_per_day, start=start, external_channels=external_channels,
                               special_seeds=special_seeds, coordination=coordination)


def _generate_world(seed: int, *, channels: int, days: float, future_days: float, posts_per_day: float,
                    start: datetime, external_channels: int | None, special_seeds: bool,
                    coordination: CoordinationPlan | None = None) -> World:
    nrng = np.random.default_rng(seed)
    d = _TapeDraw(random.Random(seed), nrng)
    now = start + timedelta(days=days)
    end = _ts(now + timedelta(days=future_days))
    n_ext = channels // 2 if external_channels is None else external_channels
    specs = _make_specs(d, nrng, channels=channels, external=n_ext, posts_per_day=posts_per_day,
                        start=start, now=now, special=special_seeds)
    writer = _Writer([s.ch.usernames[-1][1] for s in specs if s.role in ("collected", "external")])
    builder = _Builder(d, specs, writer)
    tools = PlantTools(draw=_Draw, dt=_dt, render=_render, mutate=_mutate)
    planter = None if coordination is None else Planter(coordination, builder, tools, seed=seed,
                                                          start=_ts(start), now=_ts(now))

    times: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    pins: list[np.ndarray] = []
    for ci, spec in enumerate(specs):
        t0 = int(spec.created) + 60
        slots = _slot_times(nrng, t0, end, spec.rate, spec.tz)
        n_pins = 0 if spec.role == "group" or end <= t0 + 3600 else 1 + int(nrng.poisson((end - t0) / _DAY / 10))
        pin_t = np.sort(nrng.integers(t0 + 3600, max(end, t0 + 3601), n_pins))
        times += [slots, pin_t]
        owners += [np.full(len(slots), ci, np.int64), np.full(len(pin_t), ci, np.int64)]
        pins += [np.zeros(len(slots), bool), np.ones(len(pin_t), bool)]
        created = spec.ch.created_at
        spec.messages.append(SimMessage(spec.ch.channel_id, 1, created, [Version(created, None, "")],
                                        action="channel_create"))
        spec.posted.append(int(spec.created))
        spec.fitness.append(0.0)
    all_t = np.concatenate(times).astype(np.int64)
    order = np.argsort(all_t, kind="stable")
    for t, ci, pin in zip(all_t[order].tolist(), np.concatenate(owners)[order].tolist(),
                          np.concatenate(pins)[order].tolist(), strict=True):
        if planter is not None:
            planter.run_until(t)
        builder.slot(ci, t, pin)
    if planter is not None:
        planter.run_until(end + 1)
    builder.finish(nrng)

    forms = ("{}", "@{}", "https://t.me/{}")
    collected = [s.ch for s in specs if s.role == "collected"]
    seeds = [forms[i % 3].format(ch.username_at(now)) for i, ch in enumerate(collected)]
    missing: set[str] = set()
    if special_seeds:
        seeds += [s.ch.usernames[-1][1] for s in specs if s.role in ("closed", "group")]
        missing.add("sim_gone_01")
        seeds.append("@sim_gone_01")
    return World(channels={s.ch.channel_id: s.ch for s in specs}, now=now, seeds=seeds,
                 missing_usernames=missing, seed=seed, copies=builder.copies,
                 coordination=[] if planter is None else planter.groups)


def collected_channels(world: World) -> list[SimChannel]:
    """The public broadcast channels named in ``world.seeds`` (not closed, not groups), in seed order."""
    return [ch for ch in world.seed_channels() if not ch.closed and not ch.megagroup]


# --------------------------------------------------------------------------------------------------
# A huge channel for benchmarks: messages built on access
# --------------------------------------------------------------------------------------------------

class LazyMessages(Sequence[SimMessage]):
    """A channel's message list whose items are built on access, deterministically from (seed, id).

    Holds only the posting times (numpy int64, ascending) and album ids, so a million messages cost
    about 16 MB; a small cache keeps recently built messages. ``messages[i].message_id == i + 1``
    and ``posted_at`` ascends with the id, as for an ordinary list. Iterating builds every message:
    page through ids (``top_id``, slices) instead.
    """

    def __init__(self, *, seed: int, spec: _Spec, times: np.ndarray, groups: np.ndarray,
                 deleted: dict[int, int], source: _Spec | None, writer: _Writer,
                 cache_size: int = 4096) -> None:
        self._seed = seed
        self._deleted = deleted
        self._spec = spec
        self._times = times
        self._groups = groups
        self._source = source
        self._writer = writer
        self._get = lru_cache(maxsize=cache_size)(self._build)

    def __len__(self) -> int:
        return len(self._times)

    @overload
    def __getitem__(self, index: int) -> SimMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[SimMessage]: ...

    def __getitem__(self, index: int | slice) -> SimMessage | list[SimMessage]:
        n = len(self._times)
        if isinstance(index, slice):
            return [self._get(i + 1) for i in range(*index.indices(n))]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        return self._get(index + 1)

    def __iter__(self) -> Iterator[SimMessage]:
        for mid in range(1, len(self._times) + 1):
            yield self._build(mid)

    @property
    def posted_at(self) -> np.ndarray:
        """Posting times as epoch seconds (int64), index ``message_id - 1``."""
        return self._times

    def top_id(self, t: datetime) -> int:
        """The highest id posted at or before ``t``: what ``SimChannel.top_id`` answers, without builds."""
        return int(np.searchsorted(self._times, t.timestamp(), side="right"))

    def deletions(self) -> dict[int, datetime]:
        """``deleted_at`` of every message that gets deleted, by id, without building messages.

        (The lazy channel has no pin service messages.)
        """
        return {mid: _dt(t) for mid, t in self._deleted.items()}

    def _build(self, mid: int) -> SimMessage:
        spec = self._spec
        cid = spec.ch.channel_id
        if mid == 1:
            created = spec.ch.created_at
            return SimMessage(cid, 1, created, [Version(created, None, "")], action="channel_create")
        d = _Draw(random.Random(self._seed * 1_000_003 + mid))
        t = int(self._times[mid - 1])
        when = _dt(t)
        fit = d.lognormal(1.0, 0.8)
        views = max(1, int(spec.participants(t) * spec.view_frac * fit))
        kw: dict[str, Any] = {
            "final_views": views,
            "final_forwards": int(views * 0.004 * d.lognormal(1.0, 1.0)),
            "final_replies": int(views * 0.002 * d.lognormal(1.0, 1.0)) if spec.ch.linked_chat_id else 0,
            "final_reactions": tuple((e, int(views * 0.012 * s)) for e, s in
                                     zip(spec.reactions, spec.shares, strict=False) if views * 0.012 * s >= 1),
            "tau_s": 3600.0 * d.lognormal(3.5, 0.4),
        }
        if spec.authors:
            kw["post_author"] = d.pick(spec.authors)
        gid = int(self._groups[mid - 1])
        if gid:                                            # album item: media, caption on the first
            first = int(self._groups[mid - 2]) != gid
            text, ents = _render(self._writer.post(d, spec.lang)) if first else ("", ())
            media = _make_media(d, self._writer, spec.lang, "photo" if d.random() < 0.7 else "video")
            m = SimMessage(cid, mid, when, [Version(when, None, text, ents)], grouped_id=gid, media=media,
                           **kw)
            return self._life(d, m, t, editable=first)
        origin = self._origin(d, t, when) if d.random() < 0.15 else None
        if origin is not None:
            v = origin.version_at(when)
            header = origin.fwd or SimForward(origin.channel_id, origin.message_id, origin.posted_at,
                                              post_author=origin.post_author)
            kw.pop("post_author", None)
            m = SimMessage(cid, mid, when, [Version(when, None, v.text, v.entities)], media=origin.media,
                           fwd=header, **kw)
            return self._life(d, m, t, editable=False)
        kind = d.weighted(_MEDIA_KINDS, _MEDIA_CUM)
        url = self._writer.url(d) if kind == "webpage" else None
        pieces = [] if kind == "poll" else self._writer.post(d, spec.lang, url=url)
        text, ents = _render(pieces)
        if mid > 2 and d.random() < 0.03:
            kw["reply_to_message_id"] = max(2, mid - d.randint(1, 50))
        m = SimMessage(cid, mid, when, [Version(when, None, text, ents)],
                       media=_make_media(d, self._writer, spec.lang, kind, url or ""), **kw)
        return self._life(d, m, t, editable=True)

    def _life(self, d: _Draw, m: SimMessage, t: int, *, editable: bool) -> SimMessage:
        gone = self._deleted.get(m.message_id)
        if gone is not None:
            m.deleted_at = _dt(gone)
        _decide_life(d, self._spec.lang, m, t, editable=editable, delete=False)
        return m

    def _origin(self, d: _Draw, t: int, when: datetime) -> SimMessage | None:
        """A post of the source channel from minutes to days before ``t`` that can be forwarded."""
        src = self._source
        if src is None:
            return None
        k = bisect_right(src.posted, t - _lag(d, 3 * 3600, 1.6)) - 1
        if k < 1:
            return None
        m = src.messages[k]
        if m.is_service or m.noforwards or m.grouped_id is not None or not m.visible_at(when):
            return None
        return m


def generate_channel_world(
    seed: int = 1,
    *,
    posts: int = 1_000_000,
    days: float = 365.0,
    future_days: float = 1.0,
    start: datetime = DEFAULT_START,
    source_posts: int = 2_000,
) -> World:
    """A world with one collected channel of ``posts`` posts (plus its creation message) built lazily.

    Posts spread over ``start`` .. ``start + days + future_days`` with a diurnal pattern; ``now`` is
    ``start + days``. About 3% of posts start albums, 15% forward a post of a small eager source channel
    (``source_posts`` posts, not in the seeds), ~2% get deleted and ~5% edited, as in
    :func:`generate_world`. Memory stays around 20 MB for a million posts.

    Example::

        world = generate_channel_world(1, posts=1_000_000)
        big = world.seed_channels()[0]
        big.messages[499_999].message_id   # 500000, built on access
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    nrng = np.random.default_rng([seed, 7])
    d = _TapeDraw(random.Random(seed), nrng)
    now = start + timedelta(days=days)
    t0, t1 = _ts(start), _ts(now + timedelta(days=future_days))
    span_days = (t1 - t0) / _DAY
    created = start - timedelta(days=1)
    ids = d.rnd.sample(range(_MIN_CHANNEL_ID, _MAX_CHANNEL_ID), 3)
    big = _make_channel(d, cid=ids[0], role="collected", username="sim_big_01", title="Big Wire 1",
                        lang="en", created=created, linked=ids[2])
    big.base_participants = max(big.base_participants, 50_000)
    big_spec = _make_spec(d, big, "collected", "mix", posts / max(span_days, 1e-9), 2)
    src = _make_channel(d, cid=ids[1], role="external", username="sim_ext_source_01", title="Source 1",
                        lang="en", created=created, linked=None)
    src_spec = _make_spec(d, src, "external", "en", source_posts / max(span_days, 1e-9), 2)
    writer = _Writer(["sim_big_01", "sim_ext_source_01"])

    # The source channel is small: write it eagerly (it cannot forward: it has nobody to forward from).
    builder = _Builder(d, [src_spec], writer)
    src.messages.append(SimMessage(src.channel_id, 1, created, [Version(created, None, "")],  # type: ignore[attr-defined]
                                   action="channel_create"))
    src_spec.posted.append(_ts(created))
    src_spec.fitness.append(0.0)
    for t in _slot_times(nrng, _ts(created) + 60, t1, src_spec.rate, src_spec.tz).tolist():
        builder.slot(0, t, False)
    builder.finish(nrng)

    # The big channel: posting times for exactly `posts` posts, then albums sharing their first time.
    n_days = max(1, math.ceil(span_days))
    times = _times_in_days(nrng, t0 // _DAY * _DAY, nrng.integers(0, n_days, posts, dtype=np.int64), big_spec.tz)
    np.clip(times, t0 + 1, t1, out=times)
    times = np.concatenate([np.array([_ts(created)], dtype=np.int64), times])
    groups = np.zeros(len(times), dtype=np.int64)
    starts = np.flatnonzero(nrng.random(len(times)) < 0.03).tolist()
    sizes = nrng.integers(2, 6, len(starts)).tolist()
    gids = nrng.integers(1 << 59, 1 << 60, len(starts)).tolist()
    free = 1                                               # index 0 is the creation message
    for s, k, gid in zip(starts, sizes, gids, strict=True):
        if s < free or s + k > len(times):
            continue
        times[s: s + k] = times[s]
        groups[s: s + k] = gid
        free = s + k
    # ~2% of posts get deleted, minutes to days after posting (decided here so the server can count
    # a history without building every message).
    doomed = (np.flatnonzero(nrng.random(len(times)) < 0.02) + 1).tolist()
    lags = np.clip(np.exp(np.log(6 * 3600) + 1.7 * nrng.standard_normal(len(doomed))), 120.0, 20.0 * _DAY)
    deleted = {mid: int(times[mid - 1]) + int(lag) for mid, lag in zip(doomed, lags.tolist(), strict=True)
               if mid > 1}
    big.messages = LazyMessages(seed=seed, spec=big_spec, times=times, groups=groups, deleted=deleted,
                                source=src_spec, writer=writer)
    return World(channels={big.channel_id: big, src.channel_id: src}, now=now, seeds=["sim_big_01"], seed=seed)


# --------------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------------

def fingerprint(world: World, *, max_messages: int | None = None) -> str:
    """A SHA-256 over everything the world holds (channels, messages, seeds, copies, clock).

    Two worlds with the same fingerprint answer every request the same way; the generator's
    determinism tests compare fingerprints across processes. ``max_messages`` caps the messages read
    per channel (for lazy channels).

    Example::

        assert fingerprint(generate_world(5, channels=3, days=2)) == fingerprint(generate_world(5, channels=3, days=2))
    """
    h = hashlib.sha256()
    h.update(repr((world.now, world.seeds, sorted(world.missing_usernames), world.copies)).encode())
    for cid in sorted(world.channels):
        ch = world.channels[cid]
        head = (ch.channel_id, ch.access_hash, ch.title, ch.about, ch.created_at, ch.usernames,
                ch.base_participants, ch.participants_per_day, ch.megagroup, ch.private_from,
                ch.linked_chat_id, ch.available_min_id, ch.closed, len(ch.messages))
        h.update(repr(head).encode())
        n = len(ch.messages) if max_messages is None else min(max_messages, len(ch.messages))
        for i in range(n):
            h.update(repr(ch.messages[i]).encode())
    return h.hexdigest()
