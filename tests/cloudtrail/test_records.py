"""``records_from_bytes``: one CloudTrail log file to events, the reader every input uses.

Good files give one event per record with the record's own text, its decoded payload and its
``eventTime``; bad input is counted and logged and never raises."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from falconet.api import SourceCounters
from falconet_cloudtrail.records import (
    MAX_LOGGED,
    event_time_ns,
    is_log_file_name,
    records_from_bytes,
)

from .helpers import EVENT_NS, TESTDATA, RecordingLog, log_file, record


def read(data: bytes, origin: str = "test.json") -> tuple[list[Any], SourceCounters,
                                                         RecordingLog]:
    counters, log = SourceCounters(), RecordingLog()
    return records_from_bytes(data, origin, counters, log), counters, log


def test_each_record_becomes_an_event() -> None:
    recs = [record("A", eventID="1"), record("B", eventID="2", eventTime="2024-05-01T10:00:01Z"),
            record("C", eventID="3", requestParameters={"text": 'a "},{"eventVersion" b'})]
    events, counters, log = read(log_file(*recs))
    assert [e.payload for e in events] == recs
    assert [e.raw for e in events] == [orjson.dumps(r) for r in recs]
    assert [e.ts for e in events] == [EVENT_NS, EVENT_NS + 1_000_000_000, EVENT_NS]
    assert {e.source for e in events} == {"aws_cloudtrail"}
    assert counters.malformed == 0 and counters.rejected == {} and log.records == []


def test_raw_is_the_records_own_text() -> None:
    """Compact files are cut, not re-serialised: escapes and number spellings are kept."""
    data = (b'{"Records":[{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z",'
            b'"eventType":"AwsApiCall","eventName":"\\u0041x","n":1e3},'
            b'{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z",'
            b'"eventType":"AwsApiCall","x":{"eventVersion":"nested"}}]}\n')
    events, _, _ = read(data)
    assert [e.raw for e in events] == [
        b'{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z",'
        b'"eventType":"AwsApiCall","eventName":"\\u0041x","n":1e3}',
        b'{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z",'
        b'"eventType":"AwsApiCall","x":{"eventVersion":"nested"}}']
    assert events[0].payload["eventName"] == "Ax"


@pytest.mark.parametrize("data", [
    # pretty-printed (upstream's test traces), a nested object cut like a record, a record
    # not starting with eventVersion, a single record
    b'{"Records": [\n {"eventVersion": "1.0", "eventTime": "2024-05-01T10:00:00Z", '
    b'"eventType": "AwsApiCall"}\n]}',
    b'{"Records":[{"eventVersion":"1","eventTime":"2024-05-01T10:00:00Z","eventType":"A",'
    b'"l":[{"a":1},{"eventVersion":"x"}]}]}',
    b'{"Records":[{"eventVersion":"1","eventTime":"2024-05-01T10:00:00Z","eventType":"A"},'
    b'{"eventTime":"2024-05-01T10:00:00Z","eventType":"A","l":[{"a":1},{"eventVersion":"x"}]}]}',
])
def test_other_layouts_are_re_serialised(data: bytes) -> None:
    events, counters, _ = read(data)
    records = orjson.loads(data)["Records"]
    assert [e.payload for e in events] == records
    assert [e.raw for e in events] == [orjson.dumps(r) for r in records]
    assert counters.malformed == 0


def test_gzip_is_recognised_by_its_content() -> None:
    recs = [record("A"), record("B")]
    for name in ("x.json.gz", "x.json", "object-key"):
        events, counters, _ = read(gzip.compress(log_file(*recs)), name)
        assert [e.payload for e in events] == recs, name
        assert counters.malformed == 0


def test_concatenated_gzip_members() -> None:
    data = gzip.compress(b'{"Records":[') + gzip.compress(orjson.dumps(record()) + b"]}")
    events, counters, _ = read(data)
    assert [e.payload for e in events] == [record()]
    assert counters.malformed == 0


@pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"{TESTDATA} not found")
def test_the_65_kb_record() -> None:
    data = (TESTDATA / "traces" / "alice_start_instances_bigevent.json").read_bytes()
    [event], counters, _ = read(data)
    assert len(event.raw) > 65_000
    assert event.payload["eventName"] == "StartInstances"
    assert event.ts == 1394140974_000000000
    assert counters.malformed == 0


# --- refusals -----------------------------------------------------------------------------------


def warnings(log: RecordingLog) -> list[tuple[str, dict[str, Any]]]:
    return [(event, kw) for level, event, kw in log.records if level == "warning"]


def test_corrupt_gzip() -> None:
    good = gzip.compress(log_file(record()))
    for data, error in [(good[:-12], "end-of-stream marker"),
                        (good[:10] + b"\xff" * 20 + good[30:], "invalid")]:
        events, counters, log = read(data, "s3://b/k.json.gz")
        assert events == []
        assert counters.malformed == 1 and counters.rejected == {"unreadable_gzip": 1}
        [(message, where)] = warnings(log)
        assert message == "unreadable gzip file skipped"
        assert where["file"] == "s3://b/k.json.gz" and error in where["error"]


@pytest.mark.parametrize(("data", "reason", "message"), [
    (b'{"Records": [', "invalid_json", "file is not JSON, skipped"),
    (b"\xef\xbb\xbfnot json", "invalid_json", "file is not JSON, skipped"),
    (b'{"Digest": "CloudTrail-Digest file"}', "not_cloudtrail",
     'not a CloudTrail log file (no "Records" list), skipped'),
    (b'{"Records": {"a": 1}}', "not_cloudtrail",
     'not a CloudTrail log file (no "Records" list), skipped'),
    (b'[{"eventTime": "2024-05-01T10:00:00Z"}]', "not_cloudtrail",
     'not a CloudTrail log file (no "Records" list), skipped'),
])
def test_files_that_are_not_cloudtrail_logs(data: bytes, reason: str, message: str) -> None:
    events, counters, log = read(data, "dir/f.json")
    assert events == []
    assert counters.malformed == 1 and counters.rejected == {reason: 1}
    [(logged, where)] = warnings(log)
    assert logged == message and where["file"] == "dir/f.json"


def test_bad_records_are_skipped_and_the_rest_kept() -> None:
    no_time = record("NoTime", eventID="t")
    del no_time["eventTime"]
    no_type = record("NoType", eventID="y")
    del no_type["eventType"]
    recs = [record("First"), no_time, record("BadTime", eventTime="2024-02-30T10:00:00Z"),
            record("Local", eventTime="2024-05-01 10:00:00Z"), no_type, 7,
            record("Insight", eventType="AwsCloudTrailInsight"), record("Last")]
    events, counters, log = read(log_file(*recs), "f.json")
    assert [e.payload["eventName"] for e in events] == ["First", "Last"]
    assert counters.malformed == 5
    assert counters.rejected == {"bad_event_time": 3, "no_event_type": 1, "bad_record": 1,
                                 "insight_event": 1}
    assert warnings(log) == [
        ("record without an RFC 3339 eventTime, skipped",
         {"reason": "bad_event_time", "file": "f.json", "record": 2, "eventID": "t"}),
        ("record without an RFC 3339 eventTime, skipped",
         {"reason": "bad_event_time", "file": "f.json", "record": 3, "eventID": "evt-1"}),
        ("record without an RFC 3339 eventTime, skipped",
         {"reason": "bad_event_time", "file": "f.json", "record": 4, "eventID": "evt-1"}),
        ("record without an eventType, skipped",
         {"reason": "no_event_type", "file": "f.json", "record": 5, "eventID": "y"}),
        ("record is not a JSON object, skipped",
         {"reason": "bad_record", "file": "f.json", "record": 6}),
    ]
    assert [(lvl, msg) for lvl, msg, _ in log.records if lvl == "info"] == [
        ("info", "CloudTrail Insights events are skipped (counted in rejected)")]


def test_only_the_first_refusals_of_a_reason_are_logged() -> None:
    counters, log = SourceCounters(), RecordingLog()
    bad = record(eventTime="yesterday")
    for _ in range(3):
        records_from_bytes(log_file(*[bad] * 6), "f.json", counters, log)
    assert counters.rejected == {"bad_event_time": 18} and counters.malformed == 18
    messages = [m for m, _ in warnings(log)]
    assert len(messages) == MAX_LOGGED
    assert messages[-1] == "record without an RFC 3339 eventTime, skipped (later ones only " \
        "counted)"


@pytest.mark.parametrize(("text", "ns"), [
    ("2024-05-01T10:00:00Z", EVENT_NS),
    ("2024-05-01T10:00:00.5Z", EVENT_NS + 500_000_000),
    ("2024-05-01T10:00:00,123456789123Z", EVENT_NS + 123_456_789),
    ("2024-05-01T12:30:00+02:30", EVENT_NS),
    ("2024-05-01T07:00:00-03:00", EVENT_NS),
    ("2024-02-29T00:00:00Z", 1709164800_000000000),
    ("2023-02-29T00:00:00Z", None),
    ("2024-05-01T24:00:00Z", None),
    ("2024-05-01T10:00:60Z", None),
    ("2024-05-01T10:00:00", None),
    ("2024-05-01t10:00:00Z", None),
    ("2024-05-01", None),
    (1714557600, None),
    (None, None),
])
def test_event_time_is_go_rfc3339(text: Any, ns: int | None) -> None:
    assert event_time_ns(text) == ns


def test_log_file_names() -> None:
    assert is_log_file_name("a/123_CloudTrail_us-east-1_20240501T1000Z_x.json.gz")
    assert is_log_file_name("x.json")
    assert not is_log_file_name("x.json.bz2")
    assert not is_log_file_name("x.gz")
    assert not is_log_file_name("x.JSON")
