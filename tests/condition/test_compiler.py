"""check_condition: upstream's compile errors and warnings; build_matcher: structure, caching."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.condition import ast as A
from falconet.condition.compiler import (
    ConditionCompileError,
    build_matcher,
    check_condition,
    compile_operand,
    compile_predicate,
)
from falconet.condition.parser import parse
from falconet.condition.values import convert_literal, scan_int
from falconet.event import SchemaEvent
from falconet.fields import ArgKind, FieldSpec, FieldTable, FieldType, schema_registry

try:
    REG = schema_registry()
except FileNotFoundError:  # pragma: no cover
    pytest.skip("shared/upstream/fields/fields.tsv not found", allow_module_level=True)


def check(cond: str, source: str = "syscall"):
    return check_condition(parse(cond), REG.table(source))


def error(cond: str, source: str = "syscall") -> str:
    with pytest.raises(ConditionCompileError) as info:
        check(cond, source)
    return info.value.message


ERRORS = [
    ("foo.bar = 1", "filter_check called with nonexistent field foo.bar"),
    ("proc.namex = 1", "filter_check called with nonexistent field proc.namex"),
    ("proc.name.x = 1", "filter_check called with nonexistent field proc.name.x"),
    ("proc.name[1] = 1", "filter_check called with nonexistent field proc.name[1]"),
    ("proc.aname[x] = 1", "filter_check called with nonexistent field proc.aname[x]"),
    ("tolower(foo.bar) = 1", "filter_check called with nonexistent field foo.bar"),
    ("proc.name = val(foo.bar)", "filter_check called with nonexistent field foo.bar"),
    # operator/type compatibility (filter_compare.cpp texts, "list filters" sic)
    ("fd.types = file", "filter error: '=' operator not supported list filters"),
    ("fd.types contains file", "filter error: 'contains' operator not supported list filters"),
    ("proc.pid contains 1", "filter error: 'contains' operator not supported for numeric filters"),
    (
        "proc.pid startswith 1",
        "filter error: 'startswith' operator not supported for numeric filters",
    ),
    ("evt.is_async < 1", "filter error: '<' operator not supported for numeric filters"),
    (
        "proc.name bcontains 00",
        "filter error: 'bcontains' operator not supported for string filters",
    ),
    (
        "evt.buffer icontains a",
        "filter error: 'icontains' operator not supported for buffer filters",
    ),
    ("evt.buffer glob a", "filter error: 'glob' operator not supported for buffer filters"),
    (
        "fd.sip contains 1",
        "filter error: 'contains' operator not supported for ip address and network filters",
    ),
    (
        "fd.sip startswith anyof (1)",
        "filter error: 'startswith' with modifier not supported for ip address and network filters",
    ),
    (
        "len(fd.types) contains 1",
        "filter error: 'contains' operator not supported for numeric filters",
    ),
    # literal conversion
    ("proc.pid = abc", "abc is not a valid number"),
    ("proc.pid = 0x10", "0x10 is not a valid number"),
    ("proc.pid = 1.5", "1.5 is not a valid number"),
    ("proc.pid = '1 '", "1  is not a valid number"),
    ("proc.pid in (1, x)", "x is not a valid number"),
    ("evt.is_async = yes", "filter error: unrecognized boolean value yes"),
    ("evt.is_async = 1", "filter error: unrecognized boolean value 1"),
    ("fd.sip = 1.2.3", "unrecognized IPv4 address 1.2.3"),
    ("fd.sip = '::ffff:1.2.3.4'", "unrecognized IPv4 address ::ffff:1.2.3.4"),
    ("fd.sip = zz", "unrecognized IPv6 address zz"),
    ("fd.snet = 1.2.3.4", "unrecognized IP network 1.2.3.4"),
    ("fd.snet = 1.2.3/8", "unrecognized IP address 1.2.3/8"),
    ("fd.snet = 1.2.3.4/33", "invalid netmask 33"),
    ("fd.snet = 1.2.3.4/x", "x is not a valid number"),
    ("fd.snet = '::1'", "invalid v6 netmask: ::1"),
    ("fd.snet = '::1/0'", "invalid v6 netmask 0"),
    ("fd.sport = nosuchservice", "unrecognized protocol nosuchservice"),
    (
        "evt.buffer bcontains 6",
        "filter error: bcontains and bstartswith operator support hex strings only",
    ),
    (
        "evt.buffer bstartswith zz",
        "filter error: bcontains and bstartswith operator support hex strings only",
    ),
    ("proc.name regex '('", "invalid regex pattern: missing ): ("),
    ("proc.name regex '\\\\d+'", "invalid regex pattern: invalid escape sequence: \\d"),
    ("proc.name regex '(?i)a'", "invalid regex pattern: no argument for repetition operator: ?"),
    ("evt.type = foo", "unknown event type foo"),
    ("evt.type in (open, nosuch)", "unknown event type nosuch"),
    ("evt.type contains ope", "unknown event type ope"),
    # val() and right-hand side fields
    (
        "proc.name = val(proc.pid)",
        "field 'proc.name' has type 'CHARBUF' while the right-hand "
        "side field 'proc.pid' has incompatible type 'INT64'",
    ),
    (
        "proc.pid = val(proc.name)",
        "field 'proc.pid' has type 'INT64' while the right-hand side "
        "field 'proc.name' has incompatible type 'CHARBUF'",
    ),
    ("len(fd.types) = val(fd.types)", "field 'fd.types' doesn't support right-hand side fields"),
    ("len(proc.name) = len(fd.types)", "field 'fd.types' can't be used as a right-hand side field"),
    ("proc.name = val(proc.aname)", "field 'proc.aname' can't be used as a right-hand side field"),
    ("proc.aname = val(proc.name)", "field 'proc.aname' doesn't support right-hand side fields"),
    (
        "proc.name = val(fd.cip.name)",
        "field 'fd.cip.name' can't be used as a right-hand side field",
    ),
    ("fd.snet = val(fd.snet)", "field type 'IPNET' doesn't support right-hand side fields"),
    ("proc.name regex val(proc.pname)", "operator 'REGEX' doesn't support right-hand side fields"),
    (
        "proc.name pmatch val(proc.pname)",
        "operator 'PMATCH' doesn't support right-hand side fields",
    ),
    (
        "proc.name = val(proc.pname)[1]",
        "filter error: transformer 'val' does not support field arguments",
    ),
    # transformers
    (
        "tolower(proc.pid) = 1",
        "can't add field transformer: type 'INT64' is not supported by "
        "'tolower' transformer applied on field 'proc.pid'",
    ),
    ("b64(fd.types) = a", "filter error: '=' operator not supported list filters"),
    (
        "b64(proc.pid) = a",
        "can't add field transformer: type 'INT64' is not supported by "
        "'b64' transformer applied on field 'proc.pid'",
    ),
    (
        "len(len(proc.name)) = 1",
        "can't add field transformer: type 'UINT64' is not supported by "
        "'len' transformer applied on field 'proc.name'",
    ),
    (
        "basename(evt.buffer) = a",
        "can't add field transformer: type 'BYTEBUF' is not supported "
        "by 'basename' transformer applied on field 'evt.buffer'",
    ),
    ("tolower(proc.aname) = a", "field 'proc.aname' does not support transformers"),
    (
        "toupper(fd.sip) = a",
        "can't add field transformer: type 'IPADDR' is not supported by "
        "'toupper' transformer applied on field 'fd.sip'",
    ),
    ("tolower(fd.ip) = a", "field 'fd.ip' does not support transformers"),
    (
        "tolower(proc.name)[1] = a",
        "filter error: transformer 'tolower' does not support field arguments",
    ),
    ("join(',', proc.name) = a", "join() second argument must be a list"),
    (
        "join(fd.types, fd.types) = a",
        "join() first argument (separator) must be a single value, not a list",
    ),
    ("join(fd.types) = a", "unknown field transfomer 'join'"),
    ("concat(proc.name) = a", "unknown field transfomer 'concat'"),
    ("concat(proc.name, proc.pid) = a", "concat() arguments must be strings"),
    ("concat(proc.name, fd.types) = a", "concat() arguments must be strings"),
    (
        "concat(proc.name, proc.name)[x] = a",
        "transformer 'concat' does not support field arguments",
    ),
    ("tolower(proc.name, proc.name) = a", "unknown multivalue transformer"),
    ("getopt(proc.name, 'a') = a", "getopt() first argument must be a list"),
    (
        "getopt(fd.types, fd.types) = a",
        "getopt() second argument (optstring) must be a single value",
    ),
    ("getopt(fd.types, 'ab')[ab] = a", "getopt() field argument must be a single option character"),
    ("getopt(fd.types, 'ab') = a", "filter error: '=' operator not supported list filters"),
]


@pytest.mark.parametrize(("cond", "message"), ERRORS, ids=[c for c, _ in ERRORS])
def test_compile_errors(cond: str, message: str) -> None:
    assert error(cond) == message


PLUGIN_ERRORS = [
    (
        "ka.verb[x] = a",
        "filter 'ka.verb[x]': ka.verb does not allow nor require an argument but one is "
        "provided: x",
    ),
    (
        "ka.uri.param = a",
        "filter 'ka.uri.param': ka.uri.param requires an argument but none provided",
    ),
    (
        "ka.req.pod.containers.image[01] in (a)",
        "filter ka.req.pod.containers.image[01] "
        "ka.req.pod.containers.image has an invalid index argument starting with 0: 01",
    ),
    (
        "ka.req.pod.containers.image[x] in (a)",
        "filter ka.req.pod.containers.image[x] "
        "ka.req.pod.containers.image has an invalid index argument not composed only by digits: x",
    ),
    (
        "ka.req.pod.containers.image[99999999999999999999] in (a)",
        "filter ka.req.pod.containers.image[99999999999999999999] ka.req.pod.containers.image has "
        "an invalid index argument not representable on 64 bit: 99999999999999999999",
    ),
    ("ka.user.groups = a", "filter error: '=' operator not supported list filters"),
]


@pytest.mark.parametrize(("cond", "message"), PLUGIN_ERRORS, ids=[c for c, _ in PLUGIN_ERRORS])
def test_plugin_field_argument_errors(cond: str, message: str) -> None:
    assert error(cond, "k8s_audit") == message


def test_endpoint_operators_upstream_throws_on_are_refused_at_load() -> None:
    assert error("fd.ip intersects (1.2.3.4)") == (
        "filter error: IP filter only supports '=' and '!=' operators"
    )
    assert error("fd.port intersects (80)") == "filter error: unsupported port comparison operator"
    assert error("fd.port = val(fd.sport)") == (
        "field 'fd.port' doesn't support right-hand side fields"
    )


def test_extractor_refusing_its_argument_is_a_compile_error() -> None:
    def make(arg: str | None):
        if arg is not None and not arg.isdigit():
            raise ValueError(f"filter t.x[{arg}]: t.x has an invalid index argument: {arg}")
        return lambda event: None

    table = FieldTable("t")
    table.add(FieldSpec("t.x", FieldType.CHARBUF, False, ArgKind.ANY, make_extractor=make))
    node = A.BinaryCheck(A.Field("t.x", "a", A.Pos(0, 1, 1)), "=", A.Value("1"))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(node, table)
    assert info.value.message == "filter t.x[a]: t.x has an invalid index argument: a"


def test_identifier_is_an_error_with_its_position() -> None:
    node = A.And((A.Identifier("my_macro", A.Pos(4, 1, 5)),))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(node, REG.table("syscall"))
    assert info.value.message == "filter error: unexpected identifier 'my_macro'"
    assert info.value.pos == A.Pos(4, 1, 5)


def test_error_positions_point_at_the_offending_node() -> None:
    with pytest.raises(ConditionCompileError) as info:
        check("proc.name = a and proc.pid = abc")
    assert info.value.pos.col == 30  # the value
    with pytest.raises(ConditionCompileError) as info:
        check("proc.name = a and foo.bar = 1")
    assert info.value.pos.col == 19  # the field


def test_first_error_wins_in_ast_order() -> None:
    assert (
        error("foo.bar = 1 and proc.pid = x") == "filter_check called with nonexistent field "
        "foo.bar"
    )
    assert error("proc.pid = x and foo.bar = 1") == "x is not a valid number"


def test_nul_byte_in_a_string_value_is_refused() -> None:
    node = A.BinaryCheck(A.Field("proc.name"), "=", A.Value("a\0b", A.Pos(12, 1, 13)))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(node, REG.table("syscall"))
    assert info.value.message == "filter error: filter value cannot contain a NUL byte (\\x00)"
    assert info.value.pos.col == 13
    node = A.BinaryCheck(A.Field("evt.buffer"), "contains", A.Value("a\0b"))
    match = compile_predicate(check_condition(node, REG.table("syscall")))  # buffers: raw copy
    assert match(SchemaEvent("syscall", {"evt.buffer": b"xa\0by"})) is True


def test_unknown_operator_and_modifier_texts() -> None:
    node = A.BinaryCheck(A.Field("proc.name"), "like", A.Value("x"))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(node, REG.table("syscall"))
    assert info.value.message == "unrecognized filter comparison operator 'like'"
    node = A.BinaryCheck(A.Field("proc.name"), "= someof", A.ListValue(("x",)))
    with pytest.raises(ConditionCompileError) as info:
        check_condition(node, REG.table("syscall"))
    assert info.value.message == "unrecognized filter comparison modifier 'someof'"


WARNINGS = [
    (
        "proc.name = proc.pname",
        ["'proc.pname' may be a valid field misused as a const string value"],
    ),
    (
        "proc.name in (a, proc.aname[2], evt.arg.fd)",
        [
            "'proc.aname[2]' may be a valid field misused as a const string value",
            "'evt.arg.fd' may be a valid field misused as a const string value",
        ],
    ),
    (
        "proc.name = 'proc. name'",
        ["'proc. name' may be a valid field misused as a const string value"],
    ),
    (
        "proc.name = 'tolower(proc.name)'",
        ["'tolower(proc.name)' may be a valid field transformer misused as a const string value"],
    ),
    (
        "proc.name = 'val(x)'",
        ["'val(x)' may be a valid field transformer misused as a const string value"],
    ),
    (
        "proc.name regex 'bash'",
        [
            "regex check with 'bash' may be optimized with simpler "
            "operators such as '=', 'contains', 'startswith', 'endswith'"
        ],
    ),
    (
        "proc.name regex '.*bash'",
        [
            "regex check with '.*bash' may be optimized with simpler "
            "operators such as '=', 'contains', 'startswith', "
            "'endswith'"
        ],
    ),
    (
        "proc.name regex '^bash.+'",
        [
            "regex check with '^bash.+' may be optimized with simpler "
            "operators such as '=', 'contains', 'startswith', "
            "'endswith'"
        ],
    ),
    (
        "proc.name regex 'bash$'",
        [
            "regex check with 'bash$' may be optimized with simpler "
            "operators such as '=', 'contains', 'startswith', 'endswith'"
        ],
    ),
    ("proc.name regex '^bash.+$'", []),
    ("proc.name regex '^.*bash$'", []),  # upstream only skips '.*' at the very start or end
    ("proc.name regex 'ba.h'", []),
    ("proc.name regex 'ba(s|t)h'", []),
    ("proc.name = proc.namex", []),
    ("proc.name = val(proc.pname)", []),
    ("proc.name = bash", []),
]


@pytest.mark.parametrize(("cond", "messages"), WARNINGS, ids=[c for c, _ in WARNINGS])
def test_compiler_warnings(cond: str, messages: list[str]) -> None:
    assert [w.message for w in check(cond).warnings] == messages


def test_warning_position_is_the_right_hand_side() -> None:
    (w,) = check("proc.name = proc.pname").warnings
    assert (w.pos.idx, w.pos.col) == (12, 13)


def test_fields_operators_and_transformers_are_listed_in_order() -> None:
    c = check(
        "proc.name = a and (proc.aname[2] in (x) or fd.types exists) and "
        "tolower(proc.name) == val(proc.pname) and not proc.name startswith oneof (a) "
        "and evt.arg.fd = 1"
    )
    assert c.fields == ["proc.name", "proc.aname[2]", "fd.types", "proc.pname", "evt.arg.fd"]
    assert c.operators == ["=", "in", "exists", "==", "startswith oneof"]
    assert c.transformers == ["tolower", "val"]
    assert c.source == "syscall"
    assert c.warnings == []


# --- extraction at most once ---------------------------------------------------------------------


def counting_table() -> tuple[FieldTable, dict[str, int]]:
    calls: dict[str, int] = {}

    def make(name: str):
        def factory(arg: str | None):
            key = name if arg is None else f"{name}[{arg}]"

            def extract(event: Any) -> Any:
                calls[key] = calls.get(key, 0) + 1
                return event.fields.get(key)

            return extract

        return factory

    table = FieldTable("test")
    for name, ftype, is_list, arg in [
        ("t.a", FieldType.CHARBUF, False, ArgKind.NONE),
        ("t.b", FieldType.CHARBUF, False, ArgKind.KEY),
        ("t.n", FieldType.UINT64, False, ArgKind.NONE),
        ("t.l", FieldType.CHARBUF, True, ArgKind.NONE),
    ]:
        table.add(FieldSpec(name, ftype, is_list, arg, make_extractor=make(name)))
    return table, calls


def test_each_operand_is_extracted_at_most_once_per_call() -> None:
    table, calls = counting_table()
    conds = [
        check_condition(parse(c), table)
        for c in [
            "t.a = x and t.b[k] = y",
            "t.a startswith x or t.a endswith z or tolower(t.a) = q",
            "not t.a = y and t.n > 3 and t.l intersects (a) and t.a = val(t.b[k])",
            "tolower(t.a) in (q, r) and len(tolower(t.a)) = 1",
        ]
    ]
    matcher = build_matcher(conds, first_match=False)
    event = SchemaEvent("test", {"t.a": "x", "t.b[k]": "y", "t.n": 4, "t.l": ("a",)})
    assert matcher(event) == [0, 1]
    assert calls == {"t.a": 1, "t.b[k]": 1, "t.n": 1, "t.l": 1}
    calls.clear()
    assert matcher(SchemaEvent("test", {})) == []
    assert calls == {"t.a": 1, "t.n": 1}


def test_short_circuit_skips_unneeded_extraction() -> None:
    table, calls = counting_table()
    cond = check_condition(parse("t.a = x and t.b = y and t.n = 1"), table)
    match = compile_predicate(cond)
    assert match(SchemaEvent("test", {"t.a": "no"})) is False
    assert calls == {"t.a": 1}
    assert match(SchemaEvent("test", {"t.a": "x", "t.b": "y", "t.n": 1})) is True
    assert calls == {"t.a": 2, "t.b": 1, "t.n": 1}


def test_first_match_stops_at_the_first_matching_condition() -> None:
    table, calls = counting_table()
    conds = [check_condition(parse(c), table) for c in ["t.a = z", "t.a = x", "t.n = 1"]]
    event = SchemaEvent("test", {"t.a": "x", "t.n": 1})
    assert build_matcher(conds, first_match=True)(event) == [1]
    assert calls == {"t.a": 1}
    assert build_matcher(conds, first_match=False)(event) == [1, 2]
    assert build_matcher(conds, first_match=True)(SchemaEvent("test", {})) == []


def test_matcher_returns_fresh_lists() -> None:
    table, _ = counting_table()
    matcher = build_matcher([check_condition(parse("t.a exists"), table)], first_match=True)
    first = matcher(SchemaEvent("test", {"t.a": "x"}))
    first.append(99)
    assert matcher(SchemaEvent("test", {"t.a": "x"})) == [0]


# --- deep nesting --------------------------------------------------------------------------------


def nested(depth: int) -> A.Expr:
    leaf_a = A.BinaryCheck(A.Field("proc.name"), "=", A.Value("a"))
    node: A.Expr = A.BinaryCheck(A.Field("proc.pid"), "=", A.Value("1"))
    for i in range(depth):
        if i % 2:
            node = A.And((leaf_a, node))
        else:
            node = A.Or((A.BinaryCheck(A.Field("proc.name"), "=", A.Value(f"n{i}")), node))
    return node


def test_two_thousand_nested_nots_compile() -> None:
    node: A.Expr = A.BinaryCheck(A.Field("proc.name"), "=", A.Value("a"))
    for _ in range(2000):
        node = A.Not(node)
    match = compile_predicate(check_condition(node, REG.table("syscall")))
    assert match(SchemaEvent("syscall", {"proc.name": "a"})) is True
    node = A.Not(node)
    match = compile_predicate(check_condition(node, REG.table("syscall")))
    assert match(SchemaEvent("syscall", {"proc.name": "a"})) is False


def test_thousand_deep_alternating_and_or_compiles_and_evaluates() -> None:
    cond = check_condition(nested(1000), REG.table("syscall"))
    match = compile_predicate(cond)
    assert match(SchemaEvent("syscall", {"proc.name": "a", "proc.pid": 1})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "a"})) is False
    assert match(SchemaEvent("syscall", {"proc.name": "n998"})) is False
    assert "_h" in match.__falconet_source__  # split into helper functions
    both = build_matcher([cond, cond], first_match=False)
    assert both(SchemaEvent("syscall", {"proc.name": "a", "proc.pid": 1})) == [0, 1]


def test_nested_same_kind_is_flattened() -> None:
    node: A.Expr = A.BinaryCheck(A.Field("proc.name"), "=", A.Value("x"))
    for i in range(3000):
        node = A.And((node, A.BinaryCheck(A.Field("proc.pid"), "!=", A.Value(str(i)))))
    match = compile_predicate(check_condition(node, REG.table("syscall")))
    assert match(SchemaEvent("syscall", {"proc.name": "x", "proc.pid": 5000})) is True
    assert match(SchemaEvent("syscall", {"proc.name": "x", "proc.pid": 7})) is False


def test_deeply_nested_transformers_are_rejected_not_crashing() -> None:
    node: Any = A.Field("proc.name")
    for _ in range(500):
        node = A.Transformer("tolower", (node,))
    with pytest.raises(ConditionCompileError, match="transformer nesting is too deep"):
        check_condition(A.BinaryCheck(node, "=", A.Value("a")), REG.table("syscall"))
    node = A.Field("proc.name")
    for _ in range(50):
        node = A.Transformer("tolower", (node,))
    match = compile_predicate(
        check_condition(A.BinaryCheck(node, "=", A.Value("a")), REG.table("syscall"))
    )
    assert match(SchemaEvent("syscall", {"proc.name": "A"})) is True


# --- literal conversion and compile_operand ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ftype", "value"),
    [
        ("-1", FieldType.UINT8, 255),
        ("256", FieldType.UINT8, 0),
        ("-129", FieldType.INT8, 127),
        ("65535", FieldType.INT16, -1),
        ("-1", FieldType.UINT64, 2**64 - 1),
        ("4294967297", FieldType.UINT32, 1),
        ("4294967297", FieldType.INT32, 1),
        ("2147483648", FieldType.INT32, -2147483648),
        ("-5", FieldType.RELTIME, 2**64 - 5),
        ("\t7", FieldType.INT64, 7),
        ("007", FieldType.UINT16, 7),
        ("7", FieldType.DOUBLE, 7.0),
        ("5", FieldType.DYNAMIC, 5),
        ("x5", FieldType.DYNAMIC, "x5"),
        ("x", FieldType.BYTEBUF, b"x"),
    ],
)
def test_convert_literal(text: str, ftype: FieldType, value: Any) -> None:
    assert convert_literal(text, ftype) == value


@pytest.mark.parametrize("text", ["", "+", "-", "1a", "1 ", "0x1", "1e3", "١"])
def test_scan_int_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r" is not a valid number$"):
        scan_int(text, signed=True, scan_bits=32)


def test_compile_operand_for_outputs() -> None:
    extract, spec = compile_operand(parse("tolower(proc.name) = x").left, REG.table("syscall"))
    assert extract(SchemaEvent("syscall", {"proc.name": "AB"})) == "ab"
    assert (spec.name, spec.type, spec.is_list) == ("tolower(proc.name)", FieldType.CHARBUF, False)
    extract, spec = compile_operand(A.Field("proc.aname", "2"), REG.table("syscall"))
    assert spec.name == "proc.aname[2]"
    assert extract(SchemaEvent("syscall", {"proc.aname[2]": "sh"})) == "sh"
    with pytest.raises(ConditionCompileError, match=r"nonexistent field nope\.x$"):
        compile_operand(A.Field("nope.x"), REG.table("syscall"))
