"""Fields the condition compiler reads in place (``InlinePath``) give exactly the extractor's
values, whatever shape the JSON has."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from falconet.condition import ast as A
from falconet.condition.compiler import check_condition, compile_predicate
from falconet.event import JsonEvent
from falconet_k8s_audit.fields import k8saudit_field_table

TRACES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "k8s_audit" / "traces"

ODD_DOCS = [
    {"auditID": "a", "verb": 5, "user": "not a dict", "objectRef": {"resource": None}},
    {"auditID": "a", "verb": {"x": [1, "<b>"]}, "objectRef": [1, 2], "stage": True},
    {"auditID": "a", "user": {"username": 1.5}, "annotations": {"authorization.k8s.io/decision":
                                                                 "allow"}},
    {"verb": "create", "user": {"username": "no audit id"}, "stage": "ResponseComplete"},
    ["a", "list", {"stage": "x"}],
    "just a string",
    {"auditID": "a", "responseStatus": {"code": 403}, "requestURI": "/api?x=1"},
]


def documents() -> list:
    docs = []
    if TRACES.is_dir():
        for path in sorted(TRACES.glob("*.json")):
            docs += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    for doc in list(docs[:5]):
        broken = copy.deepcopy(doc)
        broken["user"] = ["x"]
        broken["objectRef"] = "str"
        docs.append(broken)
    return docs + ODD_DOCS


TABLE = k8saudit_field_table()
INLINE = [(s.name, None) for s in TABLE if s.inline is not None and s.inline(None) is not None]
INLINE += [("jevt.value", "/stage"), ("json.value", "/user/username"),
           ("json.value", "/annotations/authorization.k8s.io~1decision"),
           # values that are not strings (rendered in place): ints, floats, objects, null
           ("json.value", "/responseStatus/code"), ("json.value", "/verb"),
           ("json.value", "/objectRef/resource")]


def test_the_hot_fields_are_inlined() -> None:
    names = {n for n, _ in INLINE}
    assert {"ka.verb", "ka.user.name", "ka.target.resource", "ka.target.subresource"} <= names
    assert TABLE.fields["json.value"].inline("/items/0") is None  # could be an array index


def events() -> list[tuple[str, bytes | None, object]]:
    """(label, raw, payload): decoded documents, and raw bytes as sources keep them, including
    a leading blank (the json plugin refuses such a payload; k8saudit reads it)."""
    out: list[tuple[str, bytes | None, object]] = []
    for doc in documents():
        out.append(("decoded", None, doc))
        out.append(("raw", orjson.dumps(doc), None))
        out.append(("raw with a leading blank", b" " + orjson.dumps(doc), None))
    out.append(("not JSON", b"{nope", None))
    return out


def make_event(raw: bytes | None, payload: object) -> JsonEvent:
    if raw is None:
        return JsonEvent("k8s_audit", payload=payload)
    return JsonEvent("k8s_audit", raw)


@pytest.mark.parametrize(("name", "arg"), INLINE, ids=[f"{n}[{a}]" for n, a in INLINE])
def test_inline_reads_equal_the_extractor(name: str, arg: str | None) -> None:
    extract = TABLE.fields[name].extractor(arg)
    field = A.Field(name, arg)
    exists = compile_predicate(check_condition(A.UnaryCheck(field, "exists"), TABLE))
    for label, raw, payload in events():
        expected = extract(make_event(raw, payload))
        assert exists(make_event(raw, payload)) is (expected is not None), (name, label, raw)
        if expected is not None:
            equal = compile_predicate(
                check_condition(A.BinaryCheck(field, "=", A.Value(expected)), TABLE))
            assert equal(make_event(raw, payload)) is True, (name, label, raw)


def test_leading_blank_hides_json_fields_but_not_k8saudit_fields() -> None:
    raw = b' {"auditID": "a", "verb": "get", "stage": "ResponseComplete"}'
    both = compile_predicate(check_condition(A.And((
        A.BinaryCheck(A.Field("ka.verb"), "=", A.Value("get")),
        A.Not(A.UnaryCheck(A.Field("jevt.value", "/stage"), "exists")),
    )), TABLE))
    assert both(JsonEvent("k8s_audit", raw)) is True
    assert both(JsonEvent("k8s_audit", raw.strip())) is False
