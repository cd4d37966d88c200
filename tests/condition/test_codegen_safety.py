"""A rules file is data, never code: hostile rule text is refused or compared as plain data."""

from __future__ import annotations

import ast as pyast
import re
import time
from typing import Any

import pytest

from falconet.condition import ast as A
from falconet.condition.compiler import (
    ConditionCompileError,
    build_matcher,
    check_condition,
    compile_predicate,
)
from falconet.condition.parser import parse
from falconet.event import SchemaEvent
from falconet.fields import ArgKind, FieldSpec, FieldTable, FieldType, schema_registry

try:
    REG = schema_registry()
except FileNotFoundError:  # pragma: no cover
    pytest.skip("shared/upstream/fields/fields.tsv not found", allow_module_level=True)
SYSCALL = REG.table("syscall")

# Every name generated code may use: generated identifiers and the fixed helper table.
_ALLOWED_NAME = re.compile(
    r"^(e|_m|_U|_M|_ND|_lw|_cs|_c|_r|_t|_s|_sd[0-9]*|_dd|_w|_y|_ty|_dc|_st|_[xfkvhpd][0-9]+)$"
)

HOSTILE = [
    "__import__('os').system('touch /tmp/pwned')",
    "'); import os; os.system('x'); ('",
    '"""',
    "'''",
    "\\",
    "a\\nb",
    "line1\nline2\r\n",
    "{v}",
    "{k}",
    "{0}{r}{",
    "}}{{",
    "__class__",
    "__builtins__",
    "_x0",
    "_U",
    "e",
    "lambda: 0",
    "# comment",
    "\t; exec('1')",
    "é\u202e\u0000"[:-1],
    "x" * 10000,
]


def source_of(fn: Any) -> str:
    return fn.__falconet_source__


def assert_only_generated_names(src: str) -> None:
    tree = pyast.parse(src)
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Name):
            assert _ALLOWED_NAME.match(node.id), node.id
        elif isinstance(node, pyast.FunctionDef):
            assert _ALLOWED_NAME.match(node.name), node.name
        elif isinstance(node, pyast.arg):
            assert node.arg in ("e", "_c", "_dd") or re.fullmatch(r"_sd[0-9]+", node.arg), node.arg
        elif isinstance(node, pyast.Constant):
            assert node.value is None or isinstance(node.value, bool | int), node.value
        elif isinstance(node, pyast.Attribute):
            assert node.attr in (
                "startswith",
                "endswith",
                "lower",
                "isascii",
                "issuperset",
                "isdisjoint",
                "append",
                "get",
            ), node.attr


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:30] for v in HOSTILE])
def test_hostile_values_are_plain_data(value: str) -> None:
    cond = A.Or(
        (
            A.BinaryCheck(A.Field("proc.name"), "=", A.Value(value)),
            A.BinaryCheck(A.Field("proc.cmdline"), "contains", A.Value(value)),
            A.BinaryCheck(A.Field("proc.exe"), "in", A.ListValue((value, "x"))),
            A.BinaryCheck(A.Field("fd.name"), "startswith", A.Value(value)),
            A.BinaryCheck(A.Field("proc.pname"), "icontains", A.Value(value)),
            A.BinaryCheck(A.Field("proc.env"), "glob", A.Value(value)),
            A.BinaryCheck(A.Field("fd.directory"), "pmatch", A.ListValue((value,))),
            A.BinaryCheck(A.Field("proc.args"), "endswith anyof", A.ListValue((value, "y"))),
        )
    )
    match = compile_predicate(check_condition(cond, SYSCALL))
    src = source_of(match)
    assert value not in src or value in ("e", "\\")  # one-letter texts occur by chance
    assert_only_generated_names(src)
    assert match(SchemaEvent("syscall", {"proc.name": value})) is True
    assert match(SchemaEvent("syscall", {"proc.cmdline": f"<{value}>"})) is True
    assert match(SchemaEvent("syscall", {"proc.exe": value})) is True
    assert match(SchemaEvent("syscall", {"fd.name": value + "/x"})) is True
    ascii_upper = "".join(c.upper() if c.isascii() else c for c in value)
    assert match(SchemaEvent("syscall", {"proc.pname": ascii_upper})) is True
    assert match(SchemaEvent("syscall", {"proc.args": "a" + value})) is True
    assert match(SchemaEvent("syscall", {"proc.name": value + "!"})) is False


def test_hostile_text_through_the_parser_stays_data() -> None:
    cond = parse(
        "proc.name = \"__import__('os').system('id')\" or "
        "proc.name in ('{k}', '\"\"\"', 'a\\\\b') or proc.name regex '.*__class__.*'"
    )
    match = compile_predicate(check_condition(cond, SYSCALL))
    src = source_of(match)
    for text in ("__import__", "system", "__class__", "{k}", '"""'):
        assert text not in src
    assert_only_generated_names(src)
    assert match(SchemaEvent("syscall", {"proc.name": "__import__('os').system('id')"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "{k}"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "a\\b"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "x__class__y"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "id"})) is False


@pytest.mark.parametrize(
    "name",
    [
        "__import__('os').system('x')",
        "proc.name; import os",
        "__class__.__base__",
        "proc.name\n",
        "{v}.x",
        "_x0.y",
    ],
)
def test_hostile_field_names_are_unknown_fields(name: str) -> None:
    with pytest.raises(ConditionCompileError) as info:
        check_condition(A.BinaryCheck(A.Field(name), "=", A.Value("a")), SYSCALL)
    assert info.value.message == f"filter_check called with nonexistent field {name}"


@pytest.mark.parametrize("op", ["== 1 or True or", "__eq__", "in (", "=\n"])
def test_hostile_operators_are_refused(op: str) -> None:
    with pytest.raises(ConditionCompileError, match=r"^unrecognized filter comparison"):
        check_condition(A.BinaryCheck(A.Field("proc.name"), op, A.Value("a")), SYSCALL)


@pytest.mark.parametrize("name", ["__import__", "eval", "exec", "tolower; x", "val2"])
def test_hostile_transformer_names_are_refused(name: str) -> None:
    node = A.Transformer(name, (A.Field("proc.name"),))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(A.BinaryCheck(node, "=", A.Value("a")), SYSCALL)
    assert info.value.message == f"unknown field transfomer '{name}'"


def test_hostile_field_arguments_reach_the_extractor_as_data() -> None:
    arg = "__import__('os').system('x')]"
    cond = check_condition(A.BinaryCheck(A.Field("proc.env", arg), "=", A.Value("1")), SYSCALL)
    match = compile_predicate(cond)
    assert arg not in source_of(match)
    assert match(SchemaEvent("syscall", {f"proc.env[{arg}]": "1"})) is True
    assert cond.fields == [f"proc.env[{arg}]"]


def test_generated_code_has_no_builtins() -> None:
    match = compile_predicate(check_condition(parse("proc.name = a"), SYSCALL))
    assert match.__globals__["__builtins__"] == {}
    helpers = {"_ty": type, "_dc": dict, "_st": str}  # the only builtins it can reach
    assert all(match.__globals__[k] is v for k, v in helpers.items())
    assert set(match.__globals__) <= {"__builtins__", "_U", "_lw", "_cs", "_m", "_M", "_ND",
                                      *helpers} | {
        k for k in match.__globals__ if re.match(r"^_[xfkh][0-9]+$", k)
    }


def test_format_braces_in_values_do_not_reach_templates() -> None:
    for cond in [
        "proc.name = '{v}'",
        "proc.name != '{k}'",
        "proc.name contains '{r}'",
        "proc.name startswith '{'",
        "proc.name icontains '}'",
    ]:
        node = parse(cond)
        match = compile_predicate(check_condition(node, SYSCALL))
        value = node.right.value
        assert match(SchemaEvent("syscall", {"proc.name": value})) is (
            not cond.startswith("proc.name !=")
        )


def test_very_long_lists_are_one_constant() -> None:
    items = tuple(f"item{i}" for i in range(100_000))
    start = time.perf_counter()
    cond = check_condition(A.BinaryCheck(A.Field("proc.name"), "in", A.ListValue(items)), SYSCALL)
    match = compile_predicate(cond)
    assert time.perf_counter() - start < 5
    assert len(source_of(match)) < 200
    assert match(SchemaEvent("syscall", {"proc.name": "item99999"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "item100000"})) is False


def test_very_wide_or_compiles() -> None:
    leaves = tuple(A.BinaryCheck(A.Field("proc.name"), "=", A.Value(f"n{i}")) for i in range(5000))
    match = compile_predicate(check_condition(A.Or(leaves), SYSCALL))
    assert match(SchemaEvent("syscall", {"proc.name": "n4999"})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "n5000"})) is False


def test_many_rules_in_one_matcher_share_extraction() -> None:
    calls = []

    def factory(arg: str | None):
        def extract(event: Any) -> Any:
            calls.append(1)
            return event.fields.get("t.a")

        return extract

    table = FieldTable("t")
    table.add(FieldSpec("t.a", FieldType.CHARBUF, False, ArgKind.NONE, make_extractor=factory))
    conds = [
        check_condition(A.BinaryCheck(A.Field("t.a"), "=", A.Value(f"v{i}")), table)
        for i in range(500)
    ]
    matcher = build_matcher(conds, first_match=False)
    assert matcher(SchemaEvent("t", {"t.a": "v42"})) == [42]
    assert len(calls) == 1
    assert_only_generated_names(source_of(matcher))


def test_deep_structure_source_stays_generated_only() -> None:
    node: A.Expr = A.BinaryCheck(A.Field("proc.name"), "=", A.Value("__import__"))
    for i in range(300):
        leaf = A.BinaryCheck(A.Field("proc.pname"), "!=", A.Value(f"'{i}'"))
        node = A.And((leaf, A.Not(A.Or((node, leaf))))) if i % 2 else A.Or((node, leaf))
    match = compile_predicate(check_condition(node, SYSCALL))
    assert_only_generated_names(source_of(match))
    assert match(SchemaEvent("syscall", {})) in (True, False)


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:30] for v in HOSTILE])
def test_hostile_values_in_json_paths_and_bucket_keys_are_plain_data(value: str) -> None:
    """In-place JSON reads (keys from the rule's json.value pointer) and a bucket specialized on
    a hostile key value: still only generated names, still compared as data."""
    from falconet.common_fields import json_object
    from falconet.condition.compiler import seed_key
    from falconet.event import JsonEvent
    from falconet_k8s_audit.fields import k8saudit_field_table

    table = k8saudit_field_table()
    pointer = "/" + value.replace("~", "~0").replace("/", "~1")
    conds = [
        check_condition(A.And((
            A.BinaryCheck(A.Field("ka.verb"), "=", A.Value(value)),
            A.BinaryCheck(A.Field("json.value", pointer), "=", A.Value(value)),
        )), table),
        check_condition(A.BinaryCheck(A.Field("ka.verb"), "in", A.ListValue((value, "x"))), table),
    ]
    key = seed_key(table.fields["ka.verb"], "ka.verb")
    matcher = build_matcher(conds, first_match=False, seeds=[(key, value)], document=json_object)
    src = source_of(matcher)
    assert value not in src or value in ("e", "\\", "_U", "_x0")
    assert_only_generated_names(src)
    doc = {"auditID": "a", "verb": value, value: value}
    assert matcher(JsonEvent("k8s_audit", payload=doc), value, doc) == [0, 1]
    doc[value] = value + "!"
    assert matcher(JsonEvent("k8s_audit", payload=doc), value, doc) == [1]
