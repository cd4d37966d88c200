"""Time bounds: upstream's ``s3Interval`` (log file names) and falconet's ``since``/``until``
(event times).

``s3Interval`` keeps upstream's syntax: one endpoint (``5d``, ``2021-03-30T18:07:17Z``) meaning
from then until now, or a range ``A-B`` of two endpoints (``5d-2d``,
``2023-04-05T06:00:00Z-2023-04-05T12:00:10Z``, ``2023-04-05T06:00:00Z-5d``); durations are a
positive integer and one of ``w d h m s``, counted back from now. It selects log files by the
time in their *name* (``..._CloudTrail_<region>_YYYYMMDDTHHmmZ_...``, the minute the file was
written), as upstream does; files whose name carries no such time are kept.

``since``/``until`` bound the *events*: a record is kept when ``since <= eventTime < until``.
They accept the same endpoints (``2024-05-01T10:00:00Z`` with optional fraction and offset, or
a duration back from now). They also prune the files read: a file written before ``since``
holds only earlier events, and a file written more than :data:`DELIVERY_MARGIN_S` after
``until`` is taken to hold only later ones (CloudTrail delivers within minutes).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .report import Reporter

__all__ = ["DELIVERY_MARGIN_S", "TimeBoundError", "TimeBounds", "TimeWindow", "bound_replay",
           "bound_stream", "parse_endpoint", "parse_interval", "with_command_line"]

#: how long after ``until`` a log file may still hold events from before ``until``
DELIVERY_MARGIN_S = 3600

_DURATION = re.compile(r"^(\d+)([wdhms])$")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# upstream's interval syntax: anything, a dash, then a duration or a whole RFC 3339 time
_INTERVAL = re.compile(r"^(.*?)\s*-\s*(\d+[wdhms]|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$")
_SIMPLE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
#: the time in a CloudTrail log file name: ``<account>_CloudTrail_<region>_<YYYYMMDDTHHmm>Z_``
_NAME_TIME = re.compile(r"_CloudTrail_[^_/]+_(\d{8}T\d{4})Z_")
_NAME_FORMAT = "%Y%m%dT%H%M"


class TimeBoundError(ValueError):
    """A time bound that cannot be read; the message names the key and the accepted forms."""


Endpoint = tuple[str, Any]  # ("duration", seconds) or ("time", aware datetime)


def parse_endpoint(text: str, *, strict: bool = True) -> Endpoint:
    """A duration back from now, or a time. ``strict``: upstream's ``YYYY-MM-DDTHH:MM:SSZ``
    only (``s3Interval``); otherwise any RFC 3339 time (``since``/``until``)."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return ("duration", int(match.group(1)) * _UNITS[match.group(2)])
    if strict and not _SIMPLE_TIME.match(text):
        raise TimeBoundError(f"'{text}' is neither a duration (5d, 12h, 30m: w d h m s) nor "
                             "a time like 2021-03-30T18:07:17Z")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TimeBoundError(f"'{text}' is neither a duration (5d, 12h, 30m: w d h m s) nor "
                             "an RFC 3339 time like 2024-05-01T10:00:00Z") from None
    if when.tzinfo is None:
        raise TimeBoundError(f"'{text}' has no time zone: end it with Z or an offset (+02:00)")
    return ("time", when)


def parse_interval(text: str) -> tuple[Endpoint | None, Endpoint | None]:
    """``s3Interval``: (start, end); end is None for "from start until now"."""
    text = text.strip()
    if not text:
        return None, None
    match = _INTERVAL.match(text)
    if match:
        return parse_endpoint(match.group(1)), parse_endpoint(match.group(2))
    return parse_endpoint(text), None


def _resolve(endpoint: Endpoint | None, now: datetime) -> datetime | None:
    if endpoint is None:
        return None
    kind, value = endpoint
    return now - timedelta(seconds=value) if kind == "duration" else value


def _text(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


@dataclass(frozen=True)
class TimeWindow:
    """The bounds resolved at one moment (relative endpoints counted back from it)."""

    #: log file names: keep ``name_start <= name time <= name_end`` ("YYYYMMDDTHHmm" strings)
    name_start: str = ""
    name_end: str = ""
    #: the earliest time a kept file can be named at (the listings start after its day)
    earliest: datetime | None = None
    #: event times in ns: keep ``since_ns <= ts < until_ns``
    since_ns: int | None = None
    until_ns: int | None = None

    def accepts_key(self, key: str) -> bool:
        """Whether a log file is inside the window by the time in its name."""
        if not (self.name_start or self.name_end):
            return True
        match = _NAME_TIME.search(key)
        if match is None:
            return True  # not named as CloudTrail names its files: read it
        stamp = match.group(1)
        return not ((self.name_start and stamp < self.name_start)
                    or (self.name_end and stamp > self.name_end))

    def named_before_start(self, key: str, margin_s: int) -> bool:
        """The file's name says it was written more than ``margin_s`` before the start."""
        match = _NAME_TIME.search(key)
        if match is None or self.earliest is None:
            return False
        limit = (self.earliest - timedelta(seconds=margin_s)).strftime(_NAME_FORMAT)
        return match.group(1) < limit

    def start_after_day(self) -> str:
        """``YYYY/MM/DD/``: in a ``.../CloudTrail/<region>/`` listing, every key of an earlier
        day sorts before it (S3 ``StartAfter`` need not be a real key)."""
        return self.earliest.strftime("%Y/%m/%d/") if self.earliest is not None else ""

    @property
    def bounds_events(self) -> bool:
        return self.since_ns is not None or self.until_ns is not None

    def keep(self, events: Sequence[Any], reporter: Reporter, origin: str) -> list[Any]:
        """The events inside ``since``/``until``; the others are counted
        (``out_of_time_range``) and the first ones logged."""
        since, until = self.since_ns, self.until_ns
        kept = [e for e in events
                if (since is None or e.ts >= since) and (until is None or e.ts < until)]
        skipped = len(events) - len(kept)
        for _ in range(skipped):
            reporter.problem("out_of_time_range", "records outside since/until skipped",
                             level="info", file=origin)
        return kept


@dataclass(frozen=True)
class TimeBounds:
    """``s3Interval``, ``since`` and ``until`` as configured (relative endpoints unresolved)."""

    interval: tuple[Endpoint | None, Endpoint | None] = (None, None)
    since: Endpoint | None = None
    until: Endpoint | None = None

    @property
    def sliding(self) -> bool:
        """The start is a duration back from now: it moves forward as time passes."""
        return any(e is not None and e[0] == "duration" for e in (self.interval[0], self.since))

    @classmethod
    def from_init_config(cls, config: Any) -> TimeBounds:
        def read(key: str, parse: Any) -> Any:
            text = str(config.get(key, "") or "")
            try:
                return parse(text) if text.strip() else None
            except TimeBoundError as exc:
                raise TimeBoundError(f"invalid {key} \"{text}\": {exc}") from None

        interval = read("s3Interval", parse_interval) or (None, None)
        bounds = cls(interval=interval,
                     since=read("since", lambda t: parse_endpoint(t, strict=False)),
                     until=read("until", lambda t: parse_endpoint(t, strict=False)))
        bounds.at(datetime.now(UTC))  # an empty range is an error at start-up
        return bounds

    def at(self, now: datetime) -> TimeWindow:
        """The window as seen at ``now``; raises when it is empty."""
        start, end = (_resolve(e, now) for e in self.interval)
        since, until = _resolve(self.since, now), _resolve(self.until, now)
        if start is not None and end is not None and end < start:
            raise TimeBoundError(f"s3Interval: start time {_text(start)} must be before end "
                                 f"time {_text(end)}")
        if since is not None and until is not None and until <= since:
            raise TimeBoundError(f"since {_text(since)} must be before until {_text(until)}")
        name_start = max((t for t in (start, since) if t is not None), default=None)
        late = until + timedelta(seconds=DELIVERY_MARGIN_S) if until is not None else None
        name_end = min((t for t in (end, late) if t is not None), default=None)
        return TimeWindow(
            name_start=name_start.astimezone(UTC).strftime(_NAME_FORMAT) if name_start else "",
            name_end=name_end.astimezone(UTC).strftime(_NAME_FORMAT) if name_end else "",
            earliest=name_start.astimezone(UTC) if name_start is not None else None,
            since_ns=_ns(since) if since is not None else None,
            until_ns=_ns(until) if until is not None else None,
        )


def with_command_line(bounds: TimeBounds, ctx: Any) -> TimeBounds:
    """``bounds`` with ``falconet --since/--until`` (``ctx.since_ns``/``until_ns``) where
    ``init_config`` sets no ``since``/``until``: S3 and SQS then skip the files outside them by
    name, not only the events (which the engine drops anyway)."""
    def endpoint(ns: int | None) -> Endpoint | None:
        return None if ns is None else ("time", datetime.fromtimestamp(ns / 1e9, UTC))

    since, until = getattr(ctx, "since_ns", None), getattr(ctx, "until_ns", None)
    return replace(bounds, since=bounds.since or endpoint(since),
                   until=bounds.until or endpoint(until))


def _replay_window(ctx: Any) -> TimeWindow | None:
    """The ``since``/``until`` window of a local input, None when neither is set. Raises
    :class:`TimeBoundError` (start-up)."""
    bounds = TimeBounds.from_init_config(
        {k: v for k, v in ctx.init_config.items() if k in ("since", "until")})
    return bounds.at(datetime.now(UTC)) if bounds.since or bounds.until else None


def bound_replay(batches: Iterator[Any], ctx: Any) -> Iterator[Any]:
    """A local replay's batches within ``since``/``until`` (local files are not pruned by
    name: their names are whatever the user gave them)."""
    window = _replay_window(ctx)
    if window is None:
        return batches
    reporter = Reporter(ctx.counters, ctx.log)

    def kept() -> Iterator[Any]:
        for batch in batches:
            inside = window.keep(batch, reporter, ctx.open_params)
            if inside:
                yield inside

    return kept()


def bound_stream(batches: AsyncIterator[Any], ctx: Any) -> AsyncIterator[Any]:
    """:func:`bound_replay` for the live stream of a local input."""
    window = _replay_window(ctx)
    if window is None:
        return batches
    reporter = Reporter(ctx.counters, ctx.log)

    async def kept() -> AsyncIterator[Any]:
        async for batch in batches:
            inside = window.keep(batch, reporter, ctx.open_params)
            if inside:
                yield inside

    return kept()
