"""The json plugin's fields (json.value/obj/rawtime and the jevt.* aliases), as upstream renders
them: JSON pointers per RFC 6901, strings raw, other values as compact JSON, json.obj indented as
Go's json.Indent does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from falconet.common_fields import go_indent, json_field_specs, parse_json_pointer
from falconet.event import JsonEvent
from falconet.fields import ArgKind, FieldType

SPECS = {s.name: s for s in json_field_specs()}
DOC = (
    b'{"a/~b":1,"a":{"b":[10,{"c":"s"}]},"":{"":5},"~1":"t","arr":[[1,2],[3]],"e":{},"f":[],'
    b'"n":null,"t":true,"x":1.5,"s":"q\\"uo\\u00e9"}'
)


def value(pointer: str | None, raw: bytes = DOC, field: str = "json.value") -> Any:
    return SPECS[field].extractor(pointer)(JsonEvent("k8s_audit", raw, ts=17))


def test_specs() -> None:
    assert sorted(SPECS) == sorted(
        ["json.value", "json.obj", "json.rawtime", "jevt.value", "jevt.obj", "jevt.rawtime"]
    )
    assert all(s.type is FieldType.CHARBUF and not s.is_list for s in SPECS.values())
    assert SPECS["json.value"].arg is SPECS["jevt.value"].arg is ArgKind.KEY_REQUIRED
    assert SPECS["json.obj"].arg is ArgKind.NONE


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("/a/b/0", "10"),
        ("/a/b/1/c", "s"),
        ("/a/b/1", '{"c":"s"}'),
        ("/a/b", '[10,{"c":"s"}]'),
        ("a/b/0", "10"),  # the leading slash is optional upstream
        ("/a~1~0b", "1"),  # upstream test json_pointer_correct_parse: key "a/~b"
        ("/~01", "t"),  # "~01" is "~1", not "/"
        ("/", '{"":5}'),  # the empty key
        ("//", "5"),
        ("/arr/0/1", "2"),
        ("/a/b/+1", '{"c":"s"}'),  # fastjson indexes arrays with Go's strconv.Atoi
        ("/a/b/01", '{"c":"s"}'),
        ("/e", "{}"),
        ("/f", "[]"),
        ("/n", "null"),
        ("/t", "true"),
        ("/x", "1.5"),
        ("/s", 'q"uo\u00e9'),  # strings are unescaped and returned raw
    ],
)
def test_value(pointer: str, expected: str) -> None:
    assert value(pointer) == expected
    assert value(pointer, field="jevt.value") == expected


@pytest.mark.parametrize(
    "pointer", ["/missing", "/a/b/2", "/a/b/-1", "/a/b/x", "/a/c", "/t/x", "/a/b/0/0", "/arr/0/9"]
)
def test_value_absent(pointer: str) -> None:
    assert value(pointer) is None


def test_empty_pointer_is_the_whole_document() -> None:
    assert value("", b'{"a": [1, {"b": null}]}') == '{"a":[1,{"b":null}]}'


def test_arrays_at_top_level() -> None:
    assert value("/1/x", b'[0, {"x": "y"}]') == "y"


@pytest.mark.parametrize("raw", [b' {"a":1}', b'"str"', b"5", b"{bad", b""])
def test_payload_that_upstream_refuses(raw: bytes) -> None:
    """Payloads must start with "{" or "[" and be valid JSON; then no json field exists."""
    assert value("/a", raw) is None
    assert value(None, raw, "json.obj") is None
    assert value(None, raw, "json.rawtime") is None


def test_events_without_raw_bytes() -> None:
    ev = JsonEvent("aws_cloudtrail", payload={"a": {"b": [1, True]}}, ts=5)
    assert SPECS["json.value"].extractor("/a/b/1")(ev) == "true"
    assert SPECS["json.obj"].extractor(None)(ev) == (
        '{\n  "a": {\n    "b": [\n      1,\n      true\n    ]\n  }\n}')
    assert SPECS["json.rawtime"].extractor(None)(ev) == "5"
    assert SPECS["json.obj"].extractor(None)(JsonEvent("x", payload="s")) is None


def test_rawtime_is_the_event_timestamp() -> None:
    assert value(None, field="json.rawtime") == "17"
    assert value(None, field="jevt.rawtime") == "17"


def test_obj_indents_like_go() -> None:
    raw = b'{"a" : [ 1 , 2 ] ,\n "b" : { } , "c": [], "d": "x\\u003c, y: {z}", "e": 1e3}  \n'
    expected = (
        '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": [],\n'
        '  "d": "x\\u003c, y: {z}",\n  "e": 1e3\n}  \n'
    )
    assert value(None, raw, "json.obj") == expected
    assert value(None, raw, "jevt.obj") == expected


def test_go_indent_nested_and_top_level_array() -> None:
    assert go_indent('[{"a":[{}]},[]]') == '[\n  {\n    "a": [\n      {}\n    ]\n  },\n  []\n]'


def test_obj_matches_orjson_indent_on_compact_input() -> None:
    doc = {"k": [1, {"x": None, "y": [True, "s"]}], "e": {}, "u": "é"}
    assert go_indent(orjson.dumps(doc).decode()) == orjson.dumps(
        doc, option=orjson.OPT_INDENT_2).decode()


def test_parse_json_pointer() -> None:
    assert parse_json_pointer("/a~1b/0/~0") == (("a/b", None), ("0", 0), ("~", None))


def test_value_requires_nothing_else_of_the_source() -> None:
    """The json plugin applies to any JSON source: no auditID needed."""
    ev = JsonEvent("aws_cloudtrail", b'{"eventName":"ConsoleLogin"}')
    assert SPECS["jevt.value"].extractor("/eventName")(ev) == "ConsoleLogin"
