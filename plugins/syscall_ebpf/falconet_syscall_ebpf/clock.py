"""The kernel's boot clock against the wall clock: records carry ``CLOCK_BOOTTIME`` ns."""

from __future__ import annotations

import time

__all__ = ["boot_time_ns"]


def boot_time_ns() -> int:
    """Epoch ns at which ``CLOCK_BOOTTIME`` was zero (the smallest of a few samples' offsets is
    kept: the two clocks are read one after the other)."""
    best = None
    for _ in range(5):
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
        span = after - before
        if best is None or span < best[0]:
            best = (span, before + span // 2 - boot)
    assert best is not None
    return best[1]
