"""Building CloudTrail records, log files and events, and reading cloudtrail fields, in tests."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from falconet.api import SourceContext
from falconet.event import JsonEvent
from falconet_cloudtrail import cloudtrail_field_table
from tests.outputs.helpers import RecordingLog as RecordingLog  # shared with output tests
from tests.upstream_cases import parse_alerts as parse_alerts
from tests.upstream_cases import replay_config

TABLE = cloudtrail_field_table()
SHARED = Path(__file__).resolve().parents[3] / "shared"
TESTDATA = SHARED / "testdata" / "cloudtrail"
UPSTREAM_RULES = SHARED / "upstream" / "rules" / "aws_cloudtrail_rules.yaml"
SHARED_MISSING = f"upstream cloudtrail data not found at {TESTDATA} (shared/ is not beside main)"

#: EVENT_TIME in ns since the epoch
EVENT_TIME = "2024-05-01T10:00:00Z"
EVENT_NS = 1714557600_000000000


def record(event_name: str = "DescribeInstances", **extra: Any) -> dict[str, Any]:
    """A CloudTrail record as AWS writes it (``eventVersion`` first), by an IAM user."""
    doc: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                         "arn": "arn:aws:iam::123456789012:user/alice",
                         "accountId": "123456789012", "userName": "alice"},
        "eventTime": EVENT_TIME,
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "req-1",
        "eventID": "evt-1",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    doc.update(extra)
    return doc


def rec(event_id: str, when: str = EVENT_TIME, **extra: Any) -> dict[str, Any]:
    """A DescribeInstances record with this event ID: what the S3 and SQS tests store."""
    return record("DescribeInstances", eventID=event_id, eventTime=when, **extra)


def log_file(*records: Any) -> bytes:
    """A log file as CloudTrail writes it: compact ``{"Records":[...]}``."""
    return orjson.dumps({"Records": list(records)})


def write_log(path: Path, *records: Any, compress: bool | None = None) -> Path:
    """Write a log file (gzip when the name ends with .gz, or when ``compress``)."""
    data = log_file(*records)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress or (compress is None and path.name.endswith(".gz")):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def event(doc: Any, ts: int = EVENT_NS, num: int = 1) -> JsonEvent:
    """An event as the cloudtrail source emits it: the record's compact JSON."""
    return JsonEvent("aws_cloudtrail", orjson.dumps(doc), ts=ts, num=num)


def extract(field: str, ev: Any, arg: str | None = None) -> Any:
    """``field[arg]`` of ``ev`` (a JsonEvent, or a record to wrap in one)."""
    if not isinstance(ev, JsonEvent):
        ev = event(ev)
    return TABLE.fields[field].extractor(arg)(ev)


def source_context(open_params: str = "", init_config: dict[str, Any] | None = None
                   ) -> SourceContext:
    """A SourceContext as falconet opens the source with, logging into a RecordingLog."""
    return SourceContext(open_params, init_config or {}, log=RecordingLog())


#: falco.yaml for a replay: upstream's two plugins, JSON alerts on stdout, nothing else started
FALCO_YAML = replay_config("""\
plugins:
  - name: cloudtrail
    library_path: libcloudtrail.so
    init_config: ""
    open_params: ""
  - name: json
    library_path: libjson.so
load_plugins: [cloudtrail, json]
""")


def write_config(directory: Path, text: str = FALCO_YAML) -> Path:
    """Write ``text`` as ``falco.yaml`` in ``directory``; returns its path."""
    path = directory / "falco.yaml"
    path.write_text(text)
    return path
