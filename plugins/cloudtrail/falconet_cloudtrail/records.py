"""CloudTrail log files to events: the reader every input (local files, S3, SQS) hands its
bytes to.

A log file is ``{"Records": [<record>, ...]}``, gzip-compressed or not. Each record becomes one
``JsonEvent`` of the ``aws_cloudtrail`` source: its payload the decoded record, its raw bytes
the record's own text (sliced out of the file when the file is compact JSON as CloudTrail writes
it, else re-serialised compactly), its time ``eventTime``. As upstream, a record is skipped when
its ``eventTime`` is missing or not RFC 3339, when it has no ``eventType``, and when it is a
CloudTrail Insights event (``eventType`` ``AwsCloudTrailInsight``).

Nothing here raises for bad input: a file that cannot be gunzipped, is not JSON or is not a
CloudTrail log, and each skipped record, is counted in the source's counters (``malformed``
and ``rejected[reason]``; Insights events only in ``rejected``) and logged, the first
``MAX_LOGGED`` of each reason, then only counted.
"""

from __future__ import annotations

import calendar
import gzip
import re
import zlib
from typing import Any

import orjson

from falconet.api import JsonEvent, SourceCounters

from .fields import SOURCE

__all__ = [
    "BAD_EVENT_TIME",
    "BAD_RECORD",
    "INSIGHT_EVENT",
    "INVALID_JSON",
    "MAX_LOGGED",
    "NOT_CLOUDTRAIL",
    "NO_EVENT_TYPE",
    "UNREADABLE_GZIP",
    "event_time_ns",
    "is_log_file_name",
    "records_from_bytes",
    "refuse",
]

# reasons, as counted in SourceCounters.rejected
UNREADABLE_GZIP = "unreadable_gzip"
INVALID_JSON = "invalid_json"
NOT_CLOUDTRAIL = "not_cloudtrail"
BAD_RECORD = "bad_record"
BAD_EVENT_TIME = "bad_event_time"
NO_EVENT_TYPE = "no_event_type"
INSIGHT_EVENT = "insight_event"  # skipped on purpose: not malformed

#: refusals logged per reason; later ones are only counted (falconet_source_rejected_total)
MAX_LOGGED = 10

_GZIP_MAGIC = b"\x1f\x8b"
_INSIGHT = "AwsCloudTrailInsight"
_loads, _dumps, _decode_error = orjson.loads, orjson.dumps, orjson.JSONDecodeError

# Go's time.Parse(time.RFC3339, ...): a fraction of any length after the seconds ("." or ","),
# "Z" or a numeric offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(?:Z|([+-])(\d\d):(\d\d))\Z")
_TIMES: dict[str, int | None] = {}
_TIMES_MAX = 1 << 16


def is_log_file_name(name: str) -> bool:
    """Whether a file name or S3 key is a CloudTrail log file, as upstream selects them."""
    return name.endswith(".json") or name.endswith(".json.gz")


def _parse_time(text: str) -> int | None:
    match = _RFC3339.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24 and minute < 60 and second < 60):
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    fraction, sign, off_h, off_m = match.group(7, 8, 9, 10)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * 1_000_000_000 + nanos


def event_time_ns(text: Any) -> int | None:
    """``eventTime`` in ns since the epoch; None unless an RFC 3339 string. Memoised: the
    records of a log file share a few minutes."""
    if type(text) is not str:
        return None
    try:
        return _TIMES[text]
    except KeyError:
        pass
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    ns = _TIMES[text] = _parse_time(text)
    return ns


def refuse(counters: SourceCounters, log: Any, reason: str, message: str, *,
           malformed: bool = True, **where: Any) -> None:
    """Count a refusal under ``reason`` (and as malformed input), and log the first few."""
    rejected = counters.rejected
    seen = rejected[reason] = rejected.get(reason, 0) + 1
    if malformed:
        counters.malformed += 1
    if seen <= MAX_LOGGED and log is not None:
        suffix = " (later ones only counted)" if seen == MAX_LOGGED else ""
        if malformed:
            log.warning(f"{message}{suffix}", reason=reason, **where)
        elif seen == 1:
            log.info(f"{message} (counted in rejected)", reason=reason, **where)


def _gunzip(data: bytes) -> bytes:
    """The content of a gzip file, at zlib's speed; several members are read too."""
    unzip = zlib.decompressobj(31)
    out = unzip.decompress(data)
    if not unzip.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if unzip.unused_data.strip(b"\x00"):
        return gzip.decompress(data)  # more members: the slower reader that handles them
    return out


_SEPARATOR = b'},{"eventVersion"'
_FIRST = b'{"eventVersion"'
_HEAD = b'{"Records":[{"eventVersion"'


def _record_texts(data: bytes, records: list[Any]) -> list[bytes] | None:
    """Each record's own text, cut out of a compact log file as CloudTrail writes it
    (``{"Records":[{"eventVersion":...},{"eventVersion":...}]}``); None when the file is
    written otherwise. A ``"`` inside a JSON string is always escaped, so the separator only
    occurs between objects; every record starting with ``eventVersion`` and the pieces being as
    many as the records make the cuts exactly the records."""
    if not data.startswith(_HEAD):
        return None
    end = data.rstrip()
    if not end.endswith(b"}]}"):
        return None
    parts = data[len(_HEAD) - len(_FIRST):len(end) - 2].split(_SEPARATOR)
    count = len(records)
    if len(parts) != count or set(map(type, records)) != {dict}:
        return None
    first_keys = list(map(next, map(iter, records)))  # an empty record ends it short
    if len(first_keys) != count or first_keys.count("eventVersion") != count:
        return None
    if count == 1:
        return parts
    last = count - 1
    return [parts[0] + b"}", *[_FIRST + p + b"}" for p in parts[1:last]], _FIRST + parts[last]]


def records_from_bytes(data: bytes, origin: str, counters: SourceCounters,
                       log: Any) -> list[JsonEvent]:
    """The events of one CloudTrail log file (its bytes as stored, gzip or not), in file order.
    ``origin`` names the file in log messages (a path, ``s3://bucket/key``). Never raises for
    bad input: see the module docstring."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = _gunzip(data)
        except (OSError, EOFError, zlib.error) as exc:
            refuse(counters, log, UNREADABLE_GZIP, "unreadable gzip file skipped", file=origin,
                   error=str(exc))
            return []
    try:
        doc = _loads(data)
    except _decode_error as exc:
        refuse(counters, log, INVALID_JSON, "file is not JSON, skipped", file=origin,
               error=str(exc))
        return []
    records = doc.get("Records") if type(doc) is dict else None
    if type(records) is not list:
        refuse(counters, log, NOT_CLOUDTRAIL, 'not a CloudTrail log file (no "Records" list), '
               "skipped", file=origin)
        return []
    texts = _record_texts(data, records)
    raws = texts if texts is not None else map(_dumps, records)
    events: list[JsonEvent] = []
    append, times = events.append, _TIMES
    for number, rec, raw in zip(range(1, len(records) + 1), records, raws, strict=True):
        if type(rec) is not dict:
            refuse(counters, log, BAD_RECORD, "record is not a JSON object, skipped",
                   file=origin, record=number)
            continue
        when = rec.get("eventTime")
        ts = times.get(when) if type(when) is str else None
        if ts is None and (ts := event_time_ns(when)) is None:
            refuse(counters, log, BAD_EVENT_TIME, "record without an RFC 3339 eventTime, "
                   "skipped", file=origin, record=number, eventID=rec.get("eventID"))
            continue
        kind = rec.get("eventType")
        if type(kind) is not str or kind == _INSIGHT:
            if kind == _INSIGHT:
                refuse(counters, log, INSIGHT_EVENT, "CloudTrail Insights events are skipped",
                       malformed=False, file=origin)
            else:
                refuse(counters, log, NO_EVENT_TYPE, "record without an eventType, skipped",
                       file=origin, record=number, eventID=rec.get("eventID"))
            continue
        append(JsonEvent(SOURCE, raw, rec, ts))
    return events
