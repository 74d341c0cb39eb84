"""When archived posts and channels are due to be observed again. Pure: the clock is passed in.

A live post is due once its age has reached a checkpoint it had not reached at its last observation.
The default checkpoints (1 h, 6 h, 1 d, 3 d, 7 d, 30 d) are a floor: a configuration may add more, never
drop one. A channel's metadata snapshot is due once its last one is ``snapshot_every`` old (24 h at most).

Example::

    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> is_post_due(t0, last_seen_at=t0 + timedelta(minutes=5), now=t0 + timedelta(hours=2))
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

DEFAULT_CHECKPOINTS: tuple[timedelta, ...] = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=30),
)
DEFAULT_SNAPSHOT_EVERY = timedelta(hours=24)


def validate_checkpoints(checkpoints: Sequence[timedelta]) -> tuple[timedelta, ...]:
    """Sorted, de-duplicated checkpoints; refuses a set that drops one of the defaults or is not positive."""
    result = tuple(sorted(set(checkpoints)))
    if any(c <= timedelta(0) for c in result):
        raise ValueError("refresh checkpoints must be positive durations")
    missing = [c for c in DEFAULT_CHECKPOINTS if c not in result]
    if missing:
        raise ValueError(
            "refresh checkpoints may add to the defaults (1h, 6h, 1d, 3d, 7d, 30d) but not drop any; "
            f"missing: {', '.join(str(c) for c in missing)}"
        )
    return result


def is_post_due(
    posted_at: datetime,
    last_seen_at: datetime,
    now: datetime,
    checkpoints: Sequence[timedelta] = DEFAULT_CHECKPOINTS,
) -> bool:
    """True when the post's age crossed a checkpoint after ``last_seen_at`` and by ``now``."""
    return any(last_seen_at < posted_at + c <= now for c in checkpoints)


def is_snapshot_due(
    last_snapshot_at: datetime | None, now: datetime, every: timedelta = DEFAULT_SNAPSHOT_EVERY
) -> bool:
    """True when the channel has no snapshot or its last one is ``every`` old or more."""
    return last_snapshot_at is None or now - last_snapshot_at >= every
