"""Planted coordination in the simulated world: groups of channels that act together, with known labels.

Opt-in (``generate_world(..., coordination=CoordinationPlan())``); the default world has none. The
plan adds, on top of the organic history, among the collected channels:

- ``forward_groups`` groups that **co-forward**: at each of ``acts`` moments a leader forwards an
  origin post of a channel outside the group (posted 5 min to 24 h earlier) and every member forwards
  the same origin within ``forward_delay_s`` seconds of the leader;
- ``url_groups`` groups that **co-post a link**: each member posts its own text with the same new
  URL (tracking parameters vary by member, so only the canonical URL is shared) within
  ``url_delay_s`` seconds;
- ``text_groups`` groups that **copy a text**: the leader posts a text and every member posts a
  near-copy (one word changed, no forward header) ``text_delay_s`` later (minutes);
- ``busy`` channels that are **not** coordinated but forward very often (``busy_per_day``), each at
  its own independent times, always a popular origin (one of the last 1000 forwards' origins, drawn
  in proportion to how often they were forwarded): they share many objects with each other, at times
  that are not synchronised.

Act moments are uniform over ``[start + 1 day, now]``, independently per group. Planted posts are
never edited or deleted. Randomness comes from a generator of its own (seeded from the world's
seed), so planting never changes which draws the organic history makes before its first act.

The labels are in ``World.coordination`` (:class:`PlantedGroup`: kind, member channel ids, the
objects and the delays). Example::

    world = generate_world(5, channels=20, days=12, coordination=CoordinationPlan())
    [(g.kind, len(g.members)) for g in world.coordination]
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .model import SimForward, SimMessage, Version

_DAY = 86400


@dataclass(frozen=True, slots=True)
class CoordinationPlan:
    """How much coordination to plant (see the module docstring). Delays are (low, high) seconds."""

    forward_groups: int = 2
    url_groups: int = 1
    text_groups: int = 1
    group_size: int = 3
    acts: int = 10
    busy: int = 2
    busy_per_day: float = 12.0
    forward_delay_s: tuple[float, float] = (5.0, 45.0)
    url_delay_s: tuple[float, float] = (5.0, 90.0)
    text_delay_s: tuple[float, float] = (30.0, 240.0)

    def channels_needed(self) -> int:
        return (self.forward_groups + self.url_groups + self.text_groups) * self.group_size + self.busy


@dataclass(slots=True)
class PlantedGroup:
    """Ground truth of one planted group. ``kind``: 'forward', 'url', 'text' or 'busy' (not coordinated).

    ``objects``: per act, the shared object ('<channel_id>/<message_id>' of a forwarded origin or of
    the leader's text post, or the URL as posted by the leader); ``delays_s``: each member's delay
    after the act's first post, in seconds (one list per act, members in order).
    """

    kind: str
    members: tuple[int, ...]
    objects: list[str] = field(default_factory=list)
    delays_s: list[tuple[float, ...]] = field(default_factory=list)

    @property
    def coordinated(self) -> bool:
        return self.kind != "busy"


@dataclass(frozen=True, slots=True)
class PlantTools:
    """The generator's helpers the planter writes with, passed in by the generator (this module imports
    nothing of it, so the import graph has no loop): a draw factory, epoch seconds -> datetime, text
    pieces -> (text, entities), and the near-copy mutation."""

    draw: Callable[[random.Random], Any]
    dt: Callable[[float], Any]
    render: Callable[[list[Any]], tuple[str, Any]]
    mutate: Callable[..., tuple[str, Any]]


class Planter:
    """Runs the plan inside the generator's single time-ordered pass over all channels.

    The generator calls :meth:`run_until` before each organic slot, and once at the end: every
    planted action due before that moment is applied through the builder, so message ids stay in
    time order within each channel.
    """

    def __init__(self, plan: CoordinationPlan, builder: Any, tools: PlantTools, *, seed: int, start: int,
                 now: int) -> None:
        self.plan = plan
        self.b = builder              # generate._Builder: specs, writer, _append, _forwardable, ...
        self.tools = tools
        self.d = tools.draw(random.Random(seed * 7919 + 13))
        collected = [i for i, s in enumerate(builder.specs) if s.role == "collected"]
        if len(collected) < plan.channels_needed():
            raise ValueError(f"the coordination plan needs {plan.channels_needed()} collected channels, "
                             f"the world has {len(collected)}")
        chosen = self.d.rnd.sample(collected, plan.channels_needed())
        self.groups: list[PlantedGroup] = []
        self._members: list[list[int]] = []          # spec indexes, by group
        self._queue: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = 0
        k = plan.group_size
        kinds = ["forward"] * plan.forward_groups + ["url"] * plan.url_groups + ["text"] * plan.text_groups
        lo, hi = start + _DAY, max(start + _DAY + 1, now)
        for g, kind in enumerate(kinds):
            idx = chosen[g * k:(g + 1) * k]
            self._members.append(idx)
            self.groups.append(PlantedGroup(kind, tuple(builder.specs[i].ch.channel_id for i in idx)))
            for t in sorted(self.d.randint(lo, hi) for _ in range(plan.acts)):
                self._push(t, partial(self._act, g))
        busy = chosen[len(kinds) * k:]
        if busy:
            self.groups.append(PlantedGroup("busy", tuple(builder.specs[i].ch.channel_id for i in busy)))
            n = int((hi - lo) / _DAY * plan.busy_per_day)
            for ci in busy:
                for t in sorted(self.d.randint(lo, hi) for _ in range(n)):
                    self._push(t, partial(self._busy, ci))

    # -- the queue ---------------------------------------------------------------------------------
    def _push(self, t: int, action: Callable[[int], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, action))

    def run_until(self, t: float) -> None:
        """Apply every planted action due strictly before ``t`` (epoch seconds)."""
        q = self._queue
        while q and q[0][0] < t:
            at, _, action = heapq.heappop(q)
            action(at)

    # -- acts ----------------------------------------------------------------------------------------
    def _delays(self, kind: str) -> list[int]:
        lo, hi = {"forward": self.plan.forward_delay_s, "url": self.plan.url_delay_s,
                  "text": self.plan.text_delay_s}[kind]
        return [0] + [round(self.d.uniform(lo, hi)) for _ in range(self.plan.group_size - 1)]

    def _act(self, g: int, t: int) -> None:
        group, members = self.groups[g], self._members[g]
        delays = self._delays(group.kind)
        if group.kind == "forward":
            origin = self._origin_for(members, t)
            if origin is None:
                return
            group.objects.append(f"{origin.channel_id}/{origin.message_id}")
            for ci, dt in zip(members, delays, strict=True):
                self._push(t + dt, partial(self._forward_at, ci, origin))
        elif group.kind == "url":
            url = f"https://planted-{g}.example.org/story/{self.d.randint(10_000, 99_999)}-{len(group.objects)}"
            group.objects.append(url)
            for j, (ci, dt) in enumerate(zip(members, delays, strict=True)):
                tagged = url if j == 0 else f"{url}?utm_source=tg&utm_campaign=c{j}"
                self._push(t + dt, partial(self._post_at, ci, tagged))
        else:
            lead = self._post(members[0], t, url=None, long=True)
            group.objects.append(f"{lead.channel_id}/{lead.message_id}")
            for ci, dt in zip(members[1:], delays[1:], strict=True):
                self._push(t + dt, partial(self._copy_at, ci, lead))
        group.delays_s.append(tuple(float(x) for x in delays))

    def _origin_for(self, members: list[int], t: int) -> SimMessage | None:
        """A post of a channel outside the group, 5 min to 24 h old at ``t``, that every member may forward."""
        b, when = self.b, self.tools.dt(t)
        outside = [s for i, s in enumerate(b.specs)
                   if i not in members and s.role in ("collected", "external") and len(s.messages) > 1]
        for _ in range(20):
            src = self.d.pick(outside)
            cands = [m for m in b._before(src, t - 300, 20)
                     if m.fwd is None and m.grouped_id is None and t - m.posted_at.timestamp() < _DAY]
            cands = [m for m in cands if all(b._forwardable(b.specs[ci], m, when) for ci in members)]
            if cands:
                return self.d.pick(cands)
        return None

    def _post_at(self, ci: int, url: str, t: int) -> None:
        self._post(ci, t, url=url)

    def _forward_at(self, ci: int, origin: SimMessage, t: int) -> None:
        self._forward(ci, t, origin)

    def _copy_at(self, ci: int, lead: SimMessage, t: int) -> None:
        self._copy(ci, t, lead)

    def _forward(self, ci: int, t: int, origin: SimMessage) -> None:
        b = self.b
        spec = b.specs[ci]
        when = self.tools.dt(t)
        if not b._forwardable(spec, origin, when):
            return
        v = origin.version_at(when)
        header = SimForward(origin.channel_id, origin.message_id, origin.posted_at, post_author=origin.post_author)
        b._append(spec, t, when, b._fitness(), versions=[Version(when, None, v.text, v.entities)],
                  media=origin.media, fwd=header)
        root = (origin.channel_id, origin.message_id)
        spec.forwarded.add(root)
        b.nfwd[root] = b.nfwd.get(root, 0) + 1

    def _post(self, ci: int, t: int, *, url: str | None, long: bool = False) -> SimMessage:
        b = self.b
        spec = b.specs[ci]
        when = self.tools.dt(t)
        lang = spec.lang if spec.lang != "mix" else "en"
        pieces = b.writer.post(self.d, lang, url=url)
        if long:                       # long enough for copy detection: three sentences at least
            while sum(len(p[0].split()) for p in pieces) < 30:
                pieces = [*b.writer.sentence(self.d, lang), (" ", None, None), *pieces]
        text, ents = self.tools.render(pieces)
        return b._append(spec, t, when, b._fitness(), versions=[Version(when, None, text, ents)])

    def _copy(self, ci: int, t: int, lead: SimMessage) -> None:
        b = self.b
        spec = b.specs[ci]
        when = self.tools.dt(t)
        v = lead.version_at(when)
        lang = spec.lang if spec.lang in ("en", "ru", "ar") else "en"
        text, ents = self.tools.mutate(v.text, v.entities, self.d, lang)
        b._append(spec, t, when, b._fitness(), versions=[Version(when, None, text, ents)])

    def _busy(self, ci: int, t: int) -> None:
        """Forward a popular origin: one of the last 1000 forwards' origins, drawn in proportion to how
        often they were forwarded there (never one already forwarded). Each busy channel draws at its
        own times, so two busy channels share many origins without reacting to one at the same moment."""
        b = self.b
        when = self.tools.dt(t)
        spec = b.specs[ci]
        counts = Counter(b.events[-1000:])
        cands: list[SimMessage] = []
        weights: list[int] = []
        for key, n in sorted(counts.items()):
            si = b.index.get(key[0])
            if si is None:
                continue
            m = b.specs[si].messages[key[1] - 1]
            if m.fwd is None and m.grouped_id is None and b._forwardable(spec, m, when):
                cands.append(m)
                weights.append(n)
        if cands:
            self._forward(ci, t, self.d.rnd.choices(cands, weights)[0])
