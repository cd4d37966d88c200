"""Fields the condition compiler reads in place (``InlinePath``) give exactly the extractor's
values whatever shape the record has, and the rule index keys upstream's rules on ``ct.name``
read that way."""

from __future__ import annotations

import orjson
import pytest

from falconet.condition import ast as A
from falconet.condition.compiler import check_condition, compile_predicate
from falconet.event import JsonEvent
from falconet.fields import FieldRegistry
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset

from .helpers import TABLE, TESTDATA, UPSTREAM_RULES, record

ODD_DOCS: list[object] = [
    record("GetObject", requestParameters={"bucketName": 5, "key": None, "Host": {"a": 1}}),
    record(eventName=None, errorCode=False, awsRegion=["us-east-1"], userIdentity="root"),
    record(requestParameters=["bucketName"], responseElements={"subnetId": 1.5},
           tlsDetails={"tlsVersion": {"v": "1.3"}}, addendum=None),
    {"eventName": "ConsoleLogin", "userIdentity": {"type": {"nested": True}}},
    ["a", "list", {"eventName": "x"}],
    "just a string",
    {},
]


def documents() -> list[object]:
    docs: list[object] = []
    traces = TESTDATA / "traces"
    if traces.is_dir():
        for path in sorted(traces.glob("*.json")):
            docs += orjson.loads(path.read_bytes())["Records"]
    return [*docs, record(), record("RunInstances", errorCode="x"), *ODD_DOCS]


INLINE: list[tuple[str, str | None]] = [
    (s.name, None) for s in TABLE if s.inline is not None and s.inline(None) is not None]
INLINE += [("json.value", "/requestParameters/bucketName"), ("jevt.value", "/eventName")]


def test_the_plain_fields_are_inlined() -> None:
    names = {n for n, _ in INLINE}
    assert {"ct.name", "ct.src", "ct.error", "ct.region", "ct.user.identitytype",
            "ct.request.username", "s3.bucket", "iam.role"} <= names
    # every plain-path field of the plugin, and json.value/json.rawtime with their aliases
    assert len({n for n in names if n.split(".")[0] in ("ct", "s3", "ecr", "iam")}) == 51
    assert names - {n for n in names if n.split(".")[0] in ("ct", "s3", "ecr", "iam")} == {
        "json.value", "jevt.value", "json.rawtime", "jevt.rawtime"}
    assert "ct.user" not in names and "ct.request" not in names  # computed: extractor only


def events() -> list[tuple[str, JsonEvent]]:
    out = []
    for doc in documents():
        out.append(("decoded", JsonEvent("aws_cloudtrail", payload=doc)))
        out.append(("raw", JsonEvent("aws_cloudtrail", orjson.dumps(doc))))
        out.append(("raw with a leading blank", JsonEvent("aws_cloudtrail",
                                                          b" " + orjson.dumps(doc))))
    out.append(("not JSON", JsonEvent("aws_cloudtrail", b"{nope")))
    return out


@pytest.mark.parametrize(("name", "arg"), INLINE, ids=[f"{n}[{a}]" for n, a in INLINE])
def test_inline_reads_equal_the_extractor(name: str, arg: str | None) -> None:
    extract = TABLE.fields[name].extractor(arg)
    field = A.Field(name, arg)
    exists = compile_predicate(check_condition(A.UnaryCheck(field, "exists"), TABLE))
    for label, ev in events():
        expected = extract(ev)
        assert exists(ev) is (expected is not None), (name, label, ev.raw)
        if expected is not None:
            equal = compile_predicate(
                check_condition(A.BinaryCheck(field, "=", A.Value(expected)), TABLE))
            assert equal(ev) is True, (name, label, ev.raw)
            differ = compile_predicate(
                check_condition(A.BinaryCheck(field, "=", A.Value(expected + "~")), TABLE))
            assert differ(ev) is False, (name, label, ev.raw)


@pytest.mark.skipif(not UPSTREAM_RULES.is_file(), reason=f"{UPSTREAM_RULES} not found")
def test_upstream_rules_are_indexed_by_ct_name() -> None:
    registry = FieldRegistry()
    registry.add_table(TABLE)
    loader = RulesLoader(registry)
    result = loader.load_text(UPSTREAM_RULES.read_text(), str(UPSTREAM_RULES))
    assert result.successful, result.errors
    ruleset = Ruleset(loader.rules, registry, first_match=False)
    create_user = JsonEvent("aws_cloudtrail", payload=record("CreateUser", requestParameters={
        "userName": "mallory"}))
    assert [r.name for r in ruleset.evaluate(create_user, "aws_cloudtrail")] == \
        ["Create AWS user"]
    assert ruleset.evaluate(JsonEvent("aws_cloudtrail", payload=record()), "aws_cloudtrail") \
        == []
    summary = ruleset.index_summary()["aws_cloudtrail"]
    assert summary["index_field"] == "ct.name"
    assert summary["rules"] == 20  # the two disabled rules are not indexed
    assert summary["max_bucket"] <= 2  # RunInstances: two rules; the other bucket is empty
