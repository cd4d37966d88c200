"""Building audit events and reading k8saudit fields from them in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from falconet.event import JsonEvent
from falconet_k8s_audit import k8saudit_field_table

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
