"""Generated matchers agree with a plain interpreter of the condition, for random conditions.

The code generator shares extractions between rules, merges common rule prefixes, decides the
bucket's known field at build time and skips "already read?" tests where a field was certainly
read before. A small interpreter written independently of all that is the reference.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from falconet.condition import ast as A
from falconet.condition.compiler import OTHER_VALUE, build_matcher, check_condition, seed_key
from falconet.event import SchemaEvent
from falconet.fields import FieldSpec, FieldTable, FieldType

TABLE = FieldTable("test")
for _name in ("t.a", "t.b", "t.c"):
    TABLE.add(FieldSpec(_name, FieldType.CHARBUF))
FIELDS = ["t.a", "t.b", "t.c"]
VALUES = ["x", "y", "xy"]

leaves = st.one_of(
    st.builds(lambda f, v: A.BinaryCheck(A.Field(f), "=", A.Value(v)),
              st.sampled_from(FIELDS), st.sampled_from(VALUES)),
    st.builds(lambda f, v: A.BinaryCheck(A.Field(f), "!=", A.Value(v)),
              st.sampled_from(FIELDS), st.sampled_from(VALUES)),
    st.builds(lambda f, vs: A.BinaryCheck(A.Field(f), "in", A.ListValue(tuple(vs))),
              st.sampled_from(FIELDS), st.lists(st.sampled_from(VALUES), max_size=2)),
    st.builds(lambda f: A.UnaryCheck(A.Field(f), "exists"), st.sampled_from(FIELDS)),
    st.builds(lambda f, v: A.BinaryCheck(A.Field(f), "startswith", A.Value(v)),
              st.sampled_from(FIELDS), st.sampled_from(VALUES)),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda cs: A.And(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda cs: A.Or(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(A.Not, inner),
    ),
    max_leaves=8,
)
events = st.fixed_dictionaries({}, optional={f: st.sampled_from(VALUES) for f in FIELDS})


def interpret(node: Any, fields: dict[str, str]) -> bool:
    """Falco semantics on present/absent string fields, nothing clever."""
    if isinstance(node, A.And):
        return all(interpret(c, fields) for c in node.children)
    if isinstance(node, A.Or):
        return any(interpret(c, fields) for c in node.children)
    if isinstance(node, A.Not):
        return not interpret(node.child, fields)
    value = fields.get(node.left.name)
    if node.op == "exists":
        return value is not None
    if value is None:
        return False
    if node.op == "=":
        return value == node.right.value
    if node.op == "!=":
        return value != node.right.value
    if node.op == "in":
        return value in node.right.values
    return value.startswith(node.right.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=6), st.lists(events, min_size=1, max_size=6))
def test_matchers_equal_the_interpreter(conds: list[Any], evs: list[dict[str, str]]) -> None:
    checked = [check_condition(c, TABLE) for c in conds]
    every = build_matcher(checked, first_match=False)
    first = build_matcher(checked, first_match=True)
    for fields in evs:
        expected = [i for i, c in enumerate(conds) if interpret(c, fields)]
        assert every(SchemaEvent("test", dict(fields))) == expected
        assert first(SchemaEvent("test", dict(fields))) == expected[:1]


@settings(max_examples=200, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=6), events)
def test_bucket_matchers_equal_the_interpreter(conds: list[Any], fields: dict[str, str]) -> None:
    """A bucket knows ``t.a``: its value, None, or OTHER_VALUE for one no condition names."""
    checked = [check_condition(c, TABLE) for c in conds]
    key = seed_key(TABLE.fields["t.a"], "t.a")
    value = fields.get("t.a")
    cases = [(fields, value, value)]  # the bucket of the event's own value (None: absent)
    if value is not None:
        cases.append(({**fields, "t.a": "zz"}, "zz", OTHER_VALUE))
    for case_fields, actual, known in cases:
        expected = [i for i, c in enumerate(conds) if interpret(c, case_fields)]
        matcher = build_matcher(checked, first_match=False, seeds=[(key, known)])
        assert matcher(SchemaEvent("test", dict(case_fields)), actual) == expected
