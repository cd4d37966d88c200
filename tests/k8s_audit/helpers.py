"""Building audit events and reading k8saudit fields from them in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from falconet.event import JsonEvent
from falconet_k8s_audit import k8saudit_field_table
from tests.outputs.helpers import RecordingLog as RecordingLog  # shared with output tests

TABLE = k8saudit_field_table()
SHARED = Path(__file__).resolve().parents[3] / "shared"


def event(doc: Any, ts: int = 0, num: int = 0) -> JsonEvent:
    """An event as the k8saudit source emits it: the audit Event as compact JSON."""
    return JsonEvent("k8s_audit", orjson.dumps(doc), ts=ts, num=num)


def extract(field: str, ev: Any, arg: str | None = None) -> Any:
    """``field[arg]`` of ``ev`` (a JsonEvent, or a document to wrap in one)."""
    if not isinstance(ev, JsonEvent):
        ev = event(ev)
    return TABLE.fields[field].extractor(arg)(ev)


# --- the k8s_audit source (webhook, file follower, replay) -----------------------------------

TRACES = SHARED / "testdata" / "k8s_audit" / "traces"
STAGE_TS = "2024-01-02T03:04:05.123456789Z"
#: STAGE_TS in ns since the epoch
STAGE_NS = 1704164645_123456789


def audit_event(audit_id: str, *, stage_ts: Any = STAGE_TS, **extra: Any) -> dict[str, Any]:
    """A small audit Event document, as the API server posts it."""
    doc: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                           "auditID": audit_id, "stage": "ResponseComplete", "verb": "get",
                           "requestURI": "/api/v1/namespaces", "user": {"username": "alice"}}
    if stage_ts is not None:
        doc["stageTimestamp"] = stage_ts
    doc.update(extra)
    return doc


def event_list(*docs: Any) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
            "items": list(docs)}


def source_context(open_params: str, init_config: dict[str, Any] | None = None) -> Any:
    """A SourceContext as falconet opens the source with, logging into a RecordingLog."""
    from falconet.api import SourceContext

    return SourceContext(open_params, init_config or {}, log=RecordingLog())


def json_error(data: bytes) -> str:
    """The decoder's reason for ``data`` not being JSON (its wording is orjson's)."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    raise AssertionError(f"{data!r} is JSON")
