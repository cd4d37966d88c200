"""Audit events out of JSON documents, by upstream's splitting rules: what becomes an event (its
raw bytes, payload and time), what is refused and with which message, and how refusals are
counted and logged."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from falconet.api import SourceCounters
from falconet_k8s_audit.parse import (
    MAX_LOGGED,
    AuditParser,
    Refusal,
    Reporter,
    stage_timestamp_ns,
)

from .helpers import STAGE_NS, STAGE_TS, RecordingLog, audit_event, event_list, json_error

PARSER = AuditParser(max_event_size=262144)


def ids(parsed: Any) -> list[str]:
    return [e.payload["auditID"] for e in parsed.events]


def refused(parsed: Any) -> list[tuple[str, str, str, str | None]]:
    return [(r.reason, r.message, r.kind, r.audit_id) for r in parsed.refusals]


# --- splitting --------------------------------------------------------------------------------

def test_one_event_becomes_one_json_event_with_compact_raw_and_stage_time() -> None:
    doc = audit_event("a1")
    body = orjson.dumps(doc, option=orjson.OPT_INDENT_2)  # as a pretty-printing client sends
    parsed = PARSER.parse_bytes(body)
    (event,) = parsed.events
    assert (event.source, event.ts, event.num) == ("k8s_audit", STAGE_NS, 0)
    assert event.raw == orjson.dumps(doc)
    assert event.payload == doc
    assert parsed.refusals == [] and parsed.invalid is False


def test_event_list_items_are_events_in_order() -> None:
    parsed = PARSER.parse_doc(event_list(audit_event("a1"), audit_event("a2"),
                                         audit_event("a3")))
    assert ids(parsed) == ["a1", "a2", "a3"]


def test_arrays_are_read_element_by_element_at_any_depth() -> None:
    doc = [audit_event("a1"), [event_list(audit_event("a2")), [[audit_event("a3")]]], []]
    assert ids(PARSER.parse_doc(doc)) == ["a1", "a2", "a3"]


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    doc: Any = audit_event("deep")
    for _ in range(5000):
        doc = [doc]
    assert ids(PARSER.parse_doc(doc)) == ["deep"]


@pytest.mark.parametrize("doc", [{"kind": 0}, {"kind": "Pod"}, {"apiVersion": "v1"}, "Event",
                                 42, None, {"kind": "EventList", "items": {"a": 1}},
                                 {"kind": "EventList"}])
def test_documents_that_are_not_audit_events_are_refused_with_upstream_text(doc: Any) -> None:
    parsed = PARSER.parse_doc(doc)
    assert parsed.events == []
    assert refused(parsed) == [("not_audit_event", "data not recognized as a k8s audit event",
                                "malformed", None)]


def test_a_bad_element_of_an_array_does_not_drop_the_others() -> None:
    parsed = PARSER.parse_doc([audit_event("a1"), {"kind": 0}, audit_event("a2")])
    assert ids(parsed) == ["a1", "a2"]
    assert [r.reason for r in parsed.refusals] == ["not_audit_event"]


def test_an_event_without_a_readable_stage_timestamp_is_refused_alone() -> None:
    parsed = PARSER.parse_doc(event_list(
        audit_event("a1"), audit_event("no-ts", stage_ts=None),
        audit_event("bad-ts", stage_ts="yesterday"), audit_event("num-ts", stage_ts=17),
        "not an object", audit_event("a2")))
    assert ids(parsed) == ["a1", "a2"]
    assert refused(parsed) == [
        ("bad_stage_timestamp", "can't read stageTimestamp", "malformed", "no-ts"),
        ("bad_stage_timestamp", "can't read stageTimestamp", "malformed", "bad-ts"),
        ("bad_stage_timestamp", "can't read stageTimestamp", "malformed", "num-ts"),
        ("bad_stage_timestamp", "can't read stageTimestamp", "malformed", None),
    ]


def test_an_event_larger_than_max_event_size_is_dropped_with_its_size_and_audit_id() -> None:
    small = audit_event("small")
    big = audit_event("big", requestObject={"data": "x" * 500})
    limit = len(orjson.dumps(small))
    parser = AuditParser(max_event_size=limit)
    parsed = parser.parse_doc([small, big])
    assert ids(parsed) == ["small"]
    size = len(orjson.dumps(big))
    assert refused(parsed) == [("event_too_large", f"event larger than maxEventSize: size={size}",
                                "dropped", "big")]


def test_malformed_json_is_refused_with_the_decoder_reason() -> None:
    body = b'{"kind": "Event", '
    parsed = PARSER.parse_bytes(body)
    assert parsed.invalid is True
    assert parsed.events == []
    assert refused(parsed) == [("invalid_json", f"invalid JSON: {json_error(body)}", "malformed",
                                None)]


def test_refusal_description_names_the_audit_id() -> None:
    assert Refusal("r", "msg", audit_id="x").describe() == "msg (auditID x)"
    assert Refusal("r", "msg").describe() == "msg"


# --- stageTimestamp ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ns"), [
    (STAGE_TS, STAGE_NS),
    ("2018-10-26T13:42:46.778525Z", 1540561366_778525000),
    ("2018-10-26T13:42:46Z", 1540561366_000000000),
    ("2018-10-26T13:42:46.5Z", 1540561366_500000000),
    ("2018-10-26T15:42:46.000000001+02:00", 1540561366_000000001),
    ("2018-10-26T08:12:46-05:30", 1540561366_000000000),
    ("2024-02-29T00:00:00Z", 1709164800_000000000),
    ("1970-01-01T00:00:00Z", 0),
])
def test_rfc3339_times_are_read_to_the_nanosecond(text: str, ns: int) -> None:
    assert stage_timestamp_ns(text) == ns


@pytest.mark.parametrize("text", [
    "2023-02-29T00:00:00Z", "2018-13-01T00:00:00Z", "2018-10-26T24:00:00Z",
    "2018-10-26T13:60:00Z", "2018-10-26T13:42:60Z", "2018-10-26T13:42:46.1234567890Z",
    "2018-10-26 13:42:46Z", "2018-10-26T13:42:46", "2018-10-26T13:42:46+25:00",
    "2018-10-26T13:42:46Zjunk", "", "2018-10-26",
])
def test_what_is_not_rfc3339_is_no_time(text: str) -> None:
    assert stage_timestamp_ns(text) is None


# --- counting and logging ---------------------------------------------------------------------

def test_reporter_counts_by_reason_and_kind_and_logs_with_the_audit_id() -> None:
    counters, log = SourceCounters(), RecordingLog()
    reporter = Reporter(counters, log)
    parsed = AuditParser(max_event_size=10).parse_doc(
        [audit_event("big"), {"kind": 0}, audit_event("no-ts", stage_ts=None)])
    reporter.report(parsed.refusals, client="10.0.0.1")
    assert (counters.malformed, counters.dropped) == (2, 1)
    assert counters.rejected == {"event_too_large": 1, "not_audit_event": 1,
                                 "bad_stage_timestamp": 1}
    size = len(orjson.dumps(audit_event("big")))
    assert log.records == [
        ("warning", f"event larger than maxEventSize: size={size}",
         {"reason": "event_too_large", "client": "10.0.0.1", "auditID": "big"}),
        ("warning", "data not recognized as a k8s audit event",
         {"reason": "not_audit_event", "client": "10.0.0.1"}),
        ("warning", "can't read stageTimestamp",
         {"reason": "bad_stage_timestamp", "client": "10.0.0.1", "auditID": "no-ts"}),
    ]


def test_reporter_logs_the_first_refusals_of_a_reason_then_only_counts() -> None:
    counters, log = SourceCounters(), RecordingLog()
    reporter = Reporter(counters, log)
    for _ in range(MAX_LOGGED + 5):
        reporter.refuse(Refusal("not_audit_event", "data not recognized as a k8s audit event"))
    reporter.log_request("queue_full", "webhook request refused: busy")
    assert counters.rejected == {"not_audit_event": MAX_LOGGED + 5, "queue_full": 1}
    assert counters.malformed == MAX_LOGGED + 5
    assert log.messages() == (["data not recognized as a k8s audit event"] * MAX_LOGGED
                              + ["more input refused for this reason: counted, no longer logged",
                                 "webhook request refused: busy"])
