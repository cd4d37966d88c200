"""evt.* fields every source has: names, types, and values rendered as libsinsp does (in UTC)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from falconet.common_fields import common_field_table, hostname, json_event_text
from falconet.event import JsonEvent, SchemaEvent
from falconet.fields import ArgKind, FieldType

# 2018-10-25T14:09:12.123456789Z
TS = 1540476552 * 1_000_000_000 + 123456789


def extract(name: str, event: Any, **table_kw: Any) -> Any:
    table = common_field_table(event.source, **table_kw)
    return table.fields[name].extractor(None)(event)


EVENT = JsonEvent("k8s_audit", b'{"a":1}', ts=TS, num=42)


def test_table_has_the_upstream_generic_evt_fields() -> None:
    table = common_field_table("k8s_audit")
    assert table.source == "k8s_audit"
    assert sorted(table.fields) == sorted([
        "evt.num", "evt.time", "evt.time.s", "evt.time.iso8601", "evt.datetime",
        "evt.datetime.s", "evt.rawtime", "evt.rawtime.s", "evt.rawtime.ns", "evt.source",
        "evt.hostname", "evt.pluginname", "evt.plugininfo", "evt.is_async", "evt.asynctype",
    ])
    types = {s.name: s.type for s in table}
    assert types["evt.num"] is FieldType.UINT64
    assert types["evt.rawtime"] is types["evt.rawtime.s"] is FieldType.ABSTIME
    assert types["evt.rawtime.ns"] is FieldType.ABSTIME
    assert types["evt.is_async"] is FieldType.BOOL
    assert types["evt.time"] is types["evt.hostname"] is FieldType.CHARBUF
    assert all(s.arg is ArgKind.NONE and not s.is_list for s in table)
    assert all(s.description for s in table)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("evt.num", 42),
        ("evt.time", "14:09:12.123456789"),
        ("evt.time.s", "14:09:12"),
        ("evt.time.iso8601", "2018-10-25T14:09:12.123456789+0000"),
        ("evt.datetime", "2018-10-25 14:09:12.123456789"),
        ("evt.datetime.s", "2018-10-25 14:09:12"),
        ("evt.rawtime", TS),
        ("evt.rawtime.s", 1540476552),
        ("evt.rawtime.ns", 123456789),
        ("evt.source", "k8s_audit"),
        ("evt.is_async", False),
        ("evt.asynctype", None),
    ],
)
def test_values(name: str, expected: Any) -> None:
    assert extract(name, EVENT) == expected


def test_time_pads_small_fractions_and_midnight() -> None:
    ev = JsonEvent("x", b"{}", ts=86400 * 1_000_000_000 + 5)  # 1970-01-02 00:00:00.000000005
    assert extract("evt.time", ev) == "00:00:00.000000005"
    assert extract("evt.datetime", ev) == "1970-01-02 00:00:00.000000005"
    assert extract("evt.time.iso8601", ev) == "1970-01-02T00:00:00.000000005+0000"
    assert extract("evt.rawtime.ns", ev) == 5


def test_time_fields_read_schema_events_too() -> None:
    ev = SchemaEvent("syscall", ts=TS, num=7)
    assert extract("evt.time.s", ev) == "14:09:12"
    assert extract("evt.num", ev) == 7
    assert extract("evt.source", ev) == "syscall"


def test_plugin_name_and_info_are_absent_without_a_plugin() -> None:
    assert extract("evt.pluginname", EVENT) is None
    assert extract("evt.plugininfo", EVENT) is None


def test_plugin_name_and_info() -> None:
    kw = {"plugin_name": "k8saudit", "plugin_info": json_event_text}
    assert extract("evt.pluginname", EVENT, **kw) == "k8saudit"
    assert extract("evt.plugininfo", EVENT, **kw) == '{"a":1}'


def test_json_event_text_without_raw_bytes_serialises_the_payload() -> None:
    assert json_event_text(JsonEvent("x", payload={"b": [1, True]})) == '{"b":[1,true]}'


def test_hostname_honours_falco_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCO_HOSTNAME", "node-1.cluster")
    assert hostname() == "node-1.cluster"
    assert extract("evt.hostname", EVENT) == "node-1.cluster"
    monkeypatch.delenv("FALCO_HOSTNAME")
    assert extract("evt.hostname", EVENT) == socket.gethostname()


def test_async_events_are_recognised_by_their_asynctype() -> None:
    class AsyncEvent:
        source, ts, num, asynctype = "syscall", 0, 1, "container"

    assert extract("evt.is_async", AsyncEvent()) is True
    assert extract("evt.asynctype", AsyncEvent()) == "container"


def test_empty_source_is_absent() -> None:
    assert extract("evt.source", SchemaEvent("")) is None
