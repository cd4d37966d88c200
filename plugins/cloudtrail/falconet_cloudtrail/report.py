"""Counting and logging the problems of the S3 and SQS readers without flooding the log.

A reader that polls for days meets the same problem many times (a throttled account, a bucket
it may not read). Each occurrence is counted in ``counters.rejected[reason]`` (and in
``malformed`` for input that cannot become events), so ``/metrics`` has the totals; the log gets
the first :data:`MAX_LOGGED` of each reason, then one line every :data:`LOG_EVERY` with the
count so far, so a problem that persists stays visible without drowning everything else.
"""

from __future__ import annotations

from typing import Any

from falconet.api import SourceCounters

__all__ = ["LOG_EVERY", "MAX_LOGGED", "Reporter"]

MAX_LOGGED = 10
LOG_EVERY = 100


class Reporter:
    """The source's counters and logger, with per-reason log limiting."""

    def __init__(self, counters: SourceCounters, log: Any) -> None:
        self.counters = counters
        self.log = log
        self._seen: dict[str, int] = {}

    def count(self, reason: str) -> None:
        """Count one occurrence of ``reason`` in ``counters.rejected``."""
        rejected = self.counters.rejected
        rejected[reason] = rejected.get(reason, 0) + 1

    def problem(self, reason: str, message: str, *, malformed: bool = False,
                level: str = "warning", **details: Any) -> None:
        """Count ``reason`` (and ``malformed`` when the input cannot become events) and log
        ``message`` unless this reason was logged often already."""
        if malformed:
            self.counters.malformed += 1
        self.count(reason)
        self.log_counted(reason, message, level=level, **details)

    def log_counted(self, reason: str, message: str, *, level: str = "warning",
                    **details: Any) -> None:
        """Log ``message`` about an occurrence of ``reason`` counted already, unless this
        reason was logged often already."""
        seen = self._seen[reason] = self._seen.get(reason, 0) + 1
        if seen <= MAX_LOGGED or seen % LOG_EVERY == 0:
            if seen > MAX_LOGGED:
                details["occurrences"] = seen
            getattr(self.log, level)(message, reason=reason, **details)
            if seen == MAX_LOGGED:
                self.log.warning(f"further '{reason}' problems are counted in /metrics and "
                                 f"logged once every {LOG_EVERY}", reason=reason)

    def info(self, message: str, **details: Any) -> None:
        self.log.info(message, **details)
