"""Parser properties: it never fails with anything but ConditionSyntaxError, every AST the
parser can produce prints (``round_trip=True``) to text that parses back to it, and every
condition of upstream's rules files parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from falconet.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    Field,
    Identifier,
    ListValue,
    Not,
    Or,
    Transformer,
    TransformerList,
    UnaryCheck,
    Value,
    as_string,
)
from falconet.condition.parser import ConditionSyntaxError, parse, parse_field_or_transformer

SHARED = Path(__file__).parents[2].parent / "shared"
RULES_DIR = SHARED / "upstream" / "rules"

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- arbitrary text ----

_PIECES = [
    *"()[],=<>!\"'\\ \t\n\r\b\v",
    *("and ", "or ", "not ", "not(", "and(", "or(", "exists", " in ", "contains ", "oneof "),
    *("tolower(", "join(", "val(", "proc.name", "a.b[1]", "x", "1", "0x1F", "\\x4", "\\q"),
]
_condition_like = st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)


@_SETTINGS
@given(st.one_of(st.text(max_size=60), _condition_like))
def test_arbitrary_text_raises_only_syntax_errors(text: str) -> None:
    try:
        parse(text)
    except ConditionSyntaxError as exc:
        assert not exc.message.startswith("parser fatal error"), exc.message
        assert 0 <= exc.pos.idx <= len(text)


@_SETTINGS
@given(st.one_of(st.text(max_size=40), _condition_like), st.integers(0, 3))
def test_arbitrary_format_tokens_raise_only_syntax_errors(text: str, start: int) -> None:
    try:
        node, end = parse_field_or_transformer(text, start)
    except ConditionSyntaxError as exc:
        assert not exc.message.startswith("parser fatal error"), exc.message
    else:
        assert start < end <= len(text)
        assert isinstance(node, Field | Transformer)


# ---- generated ASTs print and parse back ----

# names that exercise the lexer's keyword and prefix rules; "not" followed by a blank starts a
# negation, and a list named "and_x" is no list upstream either
_MACROS = ("a", "m_1", "notx", "and", "or", "nota", "oneof", "exists", "Z9")
_LIST_NAMES = ("lst", "notx", "oneof", "in", "orb", "andx", "L_2")
_FIELD_NAMES = ("proc.name", "a.b", "fd.num", "k.x_1.y", "tolower.x", "in.x", "not.x")
_NUMBERS = ("1", "+1", "-20", "1.5", "3.", "2e+10", "-0.5E-3", "0x1F", "0Xab")
# the characters that decide quoting and escaping, plus a few ordinary and non-ASCII ones
_texts = st.text(st.sampled_from("ab1 ()[],=\"'\\/*<\t\n\r\b\f\v\x01é€\xa0"), max_size=6)
_args = st.none() | _texts
_fields = st.builds(Field, st.sampled_from(_FIELD_NAMES), _args)
_TRANSFORMER_NAMES = ("tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt")
_STR_OPS = ("=", "==", "!=", "contains", "icontains", "bcontains", "startswith", "bstartswith")
_STR_OPS += ("endswith", "glob", "iglob", "regex")
_MODIFIED = tuple(
    f"{op} {m}" for op in ("=", "!=", "contains") for m in ("oneof", "anyof", "allof")
)


def _transformer_args(inner: st.SearchStrategy) -> st.SearchStrategy:
    element = _fields | inner | st.builds(Value, _texts | st.sampled_from(_NUMBERS))
    tlist = st.builds(TransformerList, st.lists(element, max_size=3).map(tuple))
    return st.lists(element | tlist, min_size=1, max_size=3).map(tuple)


_transformers = st.recursive(
    st.builds(Transformer, st.sampled_from(_TRANSFORMER_NAMES), st.tuples(_fields), _args),
    lambda inner: st.builds(
        Transformer, st.sampled_from(_TRANSFORMER_NAMES), _transformer_args(inner), _args
    ),
    max_leaves=3,
)
_vals = st.builds(lambda f, a: Transformer("val", (f,), a), _fields, _args)
_rhs_transformers = _transformers | _vals
_left = _fields | _transformers
_lists = st.builds(ListValue, st.lists(_texts, max_size=4).map(tuple))


def _check(ops: tuple[str, ...], right: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(BinaryCheck, _left, st.sampled_from(ops), right)


_checks = st.one_of(
    st.builds(Identifier, st.sampled_from(_MACROS)),
    st.builds(UnaryCheck, _left, st.just("exists")),
    _check(("<", "<=", ">", ">="), st.builds(Value, st.sampled_from(_NUMBERS)) | _rhs_transformers),
    _check(_STR_OPS, st.builds(Value, _texts) | _rhs_transformers),
    _check(
        ("in", "intersects", "pmatch"),
        _lists | st.builds(Value, st.sampled_from(_LIST_NAMES + _MACROS)) | _rhs_transformers,
    ),
    _check(_MODIFIED, _lists | st.builds(Value, st.sampled_from(_LIST_NAMES))),
)


def _compound(inner: st.SearchStrategy) -> st.SearchStrategy:
    children = st.lists(inner, min_size=2, max_size=3).map(tuple)
    return st.builds(Not, inner) | st.builds(And, children) | st.builds(Or, children)


_exprs = st.recursive(_checks, _compound, max_leaves=5)


@settings(_SETTINGS, max_examples=60)
@given(_exprs)
def test_round_trip_printing_parses_back(expr: Expr) -> None:
    text = as_string(expr, round_trip=True)
    assert parse(text) == expr, text


@settings(_SETTINGS, max_examples=50)
@given(_left)
def test_format_tokens_round_trip(node: Field | Transformer) -> None:
    text = as_string(node, round_trip=True)
    assert parse_field_or_transformer(text + " rest") == (node, len(text))


# ---- upstream's rules files ----


def _substitute_lists(condition: str, lists: dict[str, list[str]]) -> str:
    """Falco's textual list substitution, simplified: the name between delimiters."""
    for name, items in lists.items():
        quoted = [i if " " not in i or i[:1] in "\"'" else f'"{i}"' for i in items]
        bounded = r"(?<![^ \t\n\r(),=])" + re.escape(name) + r"(?![^ \t\n\r(),=])"
        if quoted:
            replacement = " " + ", ".join(quoted) + " "
            condition = re.sub(bounded, lambda _, r=replacement: r, condition)
        else:
            condition = re.sub(rf",\s*{bounded}|{bounded}\s*,|{bounded}", "", condition)
    return condition


def _upstream_conditions() -> list[str]:
    lists: dict[str, list[str]] = {}
    conditions: list[str] = []
    for path in sorted(RULES_DIR.glob("*.yaml")):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is 6x faster
        for item in yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or []:
            if not isinstance(item, dict):
                continue
            if "list" in item:
                items = [str(x) for x in item.get("items") or []]
                lists[item["list"]] = lists.get(item["list"], []) + items
            elif isinstance(item.get("condition"), str):
                conditions.append(item["condition"])
    return [_substitute_lists(c, lists) for c in conditions]


@pytest.mark.skipif(not RULES_DIR.is_dir(), reason=f"upstream rules files not found at {RULES_DIR}")
def test_every_upstream_rules_condition_parses() -> None:
    conditions = _upstream_conditions()
    assert len(conditions) > 500
    for condition in conditions:
        expr = parse(condition)
        assert parse(as_string(expr, round_trip=True)) == expr
