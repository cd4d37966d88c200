"""Audit events out of JSON, by upstream's rules (k8saudit ``source.go``), for every reader.

A document (a webhook body, a line of a file) holds events as the API server writes them:

- a JSON array: each element is read by these same rules;
- an object with ``"kind": "EventList"``: each element of its ``items`` array is one event;
- an object with ``"kind": "Event"``: one event;
- anything else is refused: ``data not recognized as a k8s audit event``.

Each event must have a ``stageTimestamp`` in RFC 3339 (``can't read stageTimestamp`` otherwise),
which becomes the event time, and its compact JSON must fit ``maxEventSize``
(``event larger than maxEventSize: size=N`` otherwise). A refused part never takes the rest of
its document with it; unlike upstream, this holds for an unrecognized element of an array too.

Parsing only collects refusals; :class:`Reporter` counts and logs them, so the webhook can leave
uncounted a body it answers with "retry later".
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from falconet.api import JsonEvent, SourceCounters

from .fields import SOURCE

__all__ = [
    "EVENT_TOO_LARGE",
    "INVALID_JSON",
    "MAX_LOGGED",
    "NOT_AUDIT_EVENT",
    "NOT_RECOGNIZED",
    "NO_STAGE_TIMESTAMP",
    "NO_TIMESTAMP",
    "AuditParser",
    "Parsed",
    "Refusal",
    "Reporter",
    "stage_timestamp_ns",
]

# reasons, as counted in SourceCounters.rejected
INVALID_JSON = "invalid_json"
NOT_AUDIT_EVENT = "not_audit_event"
NO_STAGE_TIMESTAMP = "bad_stage_timestamp"
EVENT_TOO_LARGE = "event_too_large"

# upstream's messages
NOT_RECOGNIZED = "data not recognized as a k8s audit event"
NO_TIMESTAMP = "can't read stageTimestamp"

#: refusals logged per reason; later ones are only counted (falconet_source_rejected_total)
MAX_LOGGED = 10

_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(?:Z|([+-])(\d\d):(\d\d))\Z")


@lru_cache(maxsize=4096)
def _epoch_seconds(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) as seconds since the epoch; None when not a real date.
    Cached: the events of a burst share a few seconds."""
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    except ValueError:
        return None
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24 and minute < 60 and second < 60):
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def stage_timestamp_ns(value: Any) -> int | None:
    """An RFC 3339 time (Go's ``RFC3339Nano``: up to nine fraction digits, ``Z`` or an offset)
    in ns since the epoch; None when ``value`` is not one."""
    if type(value) is not str:
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    whole, fraction, sign, off_hours, off_minutes = match.groups()
    seconds = _epoch_seconds(whole)
    if seconds is None:
        return None
    if sign is not None:
        hours, minutes = int(off_hours), int(off_minutes)
        if hours >= 24 or minutes >= 60:
            return None
        offset = hours * 3600 + minutes * 60
        seconds += -offset if sign == "+" else offset
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return seconds * 1_000_000_000 + nanos


@dataclass(frozen=True, slots=True)
class Refusal:
    """A part of the input that did not become an event."""

    reason: str  # the key counted in SourceCounters.rejected
    message: str  # upstream's text where upstream has one
    #: which other counter it also goes to: "malformed" (not an event) or "dropped" (an event)
    kind: str = "malformed"
    audit_id: str | None = None

    def describe(self) -> str:
        if self.audit_id is None:
            return self.message
        return f"{self.message} (auditID {self.audit_id})"


@dataclass(slots=True)
class Parsed:
    """The events of one document, and what was refused in it."""

    events: list[JsonEvent] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    #: the document was not JSON (the one refusal says why)
    invalid: bool = False


class AuditParser:
    """Turns documents into ``JsonEvent``s (``source="k8s_audit"``, raw = the event's compact
    JSON, payload = the decoded event, ts = its stageTimestamp)."""

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size

    def parse_bytes(self, data: bytes) -> Parsed:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return Parsed([], [Refusal(INVALID_JSON, f"invalid JSON: {exc}")], invalid=True)
        return self.parse_doc(doc)

    def parse_doc(self, doc: Any) -> Parsed:
        parsed = Parsed()
        for item in _event_items(doc, parsed.refusals):
            self._add_event(item, parsed)
        return parsed

    def _add_event(self, item: Any, parsed: Parsed) -> None:
        audit_id = _audit_id(item)
        ts = stage_timestamp_ns(item.get("stageTimestamp")) if type(item) is dict else None
        if ts is None:
            parsed.refusals.append(Refusal(NO_STAGE_TIMESTAMP, NO_TIMESTAMP, "malformed",
                                           audit_id))
            return
        raw = orjson.dumps(item)
        if len(raw) > self.max_event_size:
            parsed.refusals.append(Refusal(
                EVENT_TOO_LARGE, f"event larger than maxEventSize: size={len(raw)}", "dropped",
                audit_id))
            return
        parsed.events.append(JsonEvent(SOURCE, raw, item, ts))


def _audit_id(item: Any) -> str | None:
    value = item.get("auditID") if type(item) is dict else None
    return value if type(value) is str else None


def _event_items(doc: Any, refusals: list[Refusal]) -> Iterator[Any]:
    """The would-be events of ``doc`` in document order (arrays walked without recursion, so
    deep nesting cannot exhaust the stack)."""
    stack: list[Iterator[Any]] = [iter((doc,))]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            kind = value.get("kind") if type(value) is dict else None
            if kind == "Event":
                yield value
            elif kind == "EventList" and type(value.get("items")) is list:
                yield from value["items"]
            else:
                refusals.append(Refusal(NOT_AUDIT_EVENT, NOT_RECOGNIZED))
        else:
            stack.pop()


class Reporter:
    """Counts refusals in the source's counters and logs the first :data:`MAX_LOGGED` of each
    reason (then once that the rest are only counted): bad input never floods the log."""

    def __init__(self, counters: SourceCounters, log: Any) -> None:
        self.counters = counters
        self.log = log
        self._logged: dict[str, int] = {}

    def refuse(self, refusal: Refusal, **where: Any) -> None:
        counters = self.counters
        if refusal.kind == "malformed":
            counters.malformed += 1
        elif refusal.kind == "dropped":
            counters.dropped += 1
        self.count(refusal.reason)
        if self._should_log(refusal.reason):
            details = dict(where)
            if refusal.audit_id is not None:
                details["auditID"] = refusal.audit_id
            self.log.warning(refusal.message, reason=refusal.reason, **details)

    def report(self, refusals: Iterable[Refusal], **where: Any) -> None:
        for refusal in refusals:
            self.refuse(refusal, **where)

    def count(self, reason: str) -> None:
        rejected = self.counters.rejected
        rejected[reason] = rejected.get(reason, 0) + 1

    def _should_log(self, reason: str) -> bool:
        logged = self._logged.get(reason, 0)
        self._logged[reason] = logged + 1
        if logged == MAX_LOGGED:
            self.log.warning("more input refused for this reason: counted, no longer logged",
                             reason=reason)
        return logged < MAX_LOGGED

    def log_request(self, reason: str, message: str, **where: Any) -> None:
        """A refused request (not an event): counted by reason, logged like the others."""
        self.count(reason)
        if self._should_log(reason):
            self.log.warning(message, reason=reason, **where)
