"""``--since``/``--until``: the event-time window of a run.

An endpoint is an RFC 3339 time (``2024-05-01T10:00:00Z``, with an optional fraction and
offset) or a duration back from now (``5d``, ``12h``, ``30m``, ``45s``, ``2w``). The engine
skips the events outside ``since <= evt.time < until`` before any rule sees them, and counts them
(``rejected["out_of_time_range"]``); a source that can avoid reading input outside the window
(CloudTrail files by the time in their names) reads ``SourceContext.since_ns``/``until_ns``.
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["TimeBoundError", "parse_bound"]

_DURATION = re.compile(r"^(\d+)([wdhms])$")
_UNIT_S = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


class TimeBoundError(ValueError):
    """An endpoint that is neither a time nor a duration."""


def parse_bound(text: str, now_ns: int) -> int:
    """``text`` as ns since the epoch; durations count back from ``now_ns``."""
    word = text.strip()
    if match := _DURATION.match(word):
        return now_ns - int(match.group(1)) * _UNIT_S[match.group(2)] * 1_000_000_000
    try:
        when = datetime.fromisoformat(word.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise TimeBoundError(f"'{text}' is neither a time with its zone (2024-05-01T10:00:00Z) "
                             "nor a duration back from now (5d, 12h, 30m, 45s, 2w)")
    seconds = int(when.timestamp())
    return seconds * 1_000_000_000 + when.microsecond * 1000
