"""Parser tests. Every expected AST text, message and position here is what libsinsp's own
parser gives for the same input (libs master with Falco's depth limit of 1000); they were
checked against upstream's parser compiled from source."""

from __future__ import annotations

import pytest

from falconet.condition.ast import (
    And,
    BinaryCheck,
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
from falconet.condition.escaping import EscapeError, unescape_str
from falconet.condition.parser import (
    MAX_DEPTH,
    ConditionSyntaxError,
    parse,
    parse_field_or_transformer,
)

_TRANSFORMERS = "'val', 'tolower', 'toupper', 'b64', 'basename', 'len', 'join', 'concat', 'getopt'"
MSG_OPERATOR = (
    "expected a valid check operator: one of 'exists', '<=', '<', '>=', '>', '==', '=', '!=', "
    "'glob', 'iglob', 'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', "
    "'endswith', 'regex', 'intersects', 'in', 'pmatch'"
)
MSG_NUM = "expected a number value or a field with a valid transformer: " + _TRANSFORMERS
MSG_STR = "expected a string value or a field with a valid transformer: " + _TRANSFORMERS
MSG_LIST = "expected a list, an identifier, or a field with a valid transformer: " + _TRANSFORMERS
MSG_DEPTH = f"exceeded max depth limit of {MAX_DEPTH}"


def _error(text: str) -> ConditionSyntaxError:
    with pytest.raises(ConditionSyntaxError) as info:
        parse(text)
    return info.value


def _where(error: ConditionSyntaxError) -> tuple[int, int, int]:
    return (error.pos.idx, error.pos.line, error.pos.col)


_KINDS = {
    And: "and",
    Or: "or",
    Not: "not",
    Identifier: "id",
    Value: "val",
    ListValue: "list",
    TransformerList: "tlist",
    UnaryCheck: "un",
    BinaryCheck: "bin",
    Field: "field",
    Transformer: "tr",
}


def _children(node: object) -> tuple:
    match node:
        case And(children) | Or(children) | TransformerList(children):
            return children
        case Not(child):
            return (child,)
        case UnaryCheck(left):
            return (left,)
        case BinaryCheck(left, _, right):
            return (left, right)
        case Transformer(_, values):
            return values
    return ()


def _positions(node: object) -> str:
    """Node kinds and positions in visiting order, as upstream's test ``pos_visitor`` lists them."""
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        pos = n.pos  # type: ignore[attr-defined]
        out.append(f"{_KINDS[type(n)]}{pos.idx},{pos.line},{pos.col}")
        stack.extend(reversed(_children(n)))
    return " ".join(out)


PRINTED = [
    ("and_flat", "a and b and c", "(a and b and c)"),
    ("or_flat", "a or b or c", "(a or b or c)"),
    ("and_binds_tighter", "a or b and c or d", "(a or (b and c) or d)"),
    ("not_binds_tightest", "not a.b = 1 and c.d = 2", "(not a.b = 1 and c.d = 2)"),
    ("paren_and_not_flattened", "(a and b) and c", "((a and b) and c)"),
    ("and_paren_form", "a and(b and c)", "(a and (b and c))"),
    ("or_paren_form", "a or(b or c)", "(a or (b or c))"),
    ("and_paren_continues", "a and(b) and c", "(a and b and c)"),
    ("adjacent_parens", "(a)and(b)or(c)", "((a and b) or c)"),
    ("not_toggles", "not not a", "a"),
    ("not_three", "not not not a", "not a"),
    ("not_paren_keeps_double", "not (not a)", "not not a"),
    ("not_paren_form", "not not(a)", "a"),
    ("not_mixed", "not not not not not(not not(not not_macro))", "not not not_macro"),
    ("not_applies_to_one_check", "not a and b", "(not a and b)"),
    (
        "not_prefix_identifiers",
        "notz and not_macro and and_x or or_y",
        "((notz and not_macro and and_x) or or_y)",
    ),
    ("not_alone_is_macro", "a and not", "(a and not)"),
    ("keyword_as_macro", "a and and", "(a and and)"),
    ("existsand", "a.b existsand c", "(a.b exists and c)"),
    ("number_then_and", "a.b > 1and c", "(a.b > 1 and c)"),
    ("blanks_everywhere", "\t a.b\n=\r\nc\x08 and\td ", '(a.b = "c\\b" and d)'),
    ("op_eq", "a.b = c", "a.b = c"),
    ("op_eqeq", "a.b==c", "a.b == c"),
    ("op_ne", "a.b !=c", "a.b != c"),
    ("op_lt", "a.b <1", "a.b < 1"),
    ("op_le", "a.b<=1", "a.b <= 1"),
    ("op_gt", "a.b > +1.5e+3", "a.b > +1.5e+3"),
    ("op_ge", "a.b >= 0x1F", "a.b >= 0x1F"),
    ("op_contains", "a.b contains c", "a.b contains c"),
    ("op_icontains", "a.b icontains c", "a.b icontains c"),
    ("op_bcontains", "a.b bcontains 68656c6c6f", "a.b bcontains 68656c6c6f"),
    ("op_startswith", "a.b startswith /etc", "a.b startswith /etc"),
    ("op_bstartswith", "a.b bstartswith 7f", "a.b bstartswith 7f"),
    ("op_endswith", "a.b endswith .so", "a.b endswith .so"),
    ("op_glob", "a.b glob /etc/*", "a.b glob /etc/*"),
    ("op_iglob", "a.b iglob *.LOG", "a.b iglob *.LOG"),
    ("op_regex", "a.b regex '[a-z]+'", "a.b regex [a-z]+"),
    ("op_in", "a.b in (x, y)", "a.b in (x, y)"),
    ("op_in_nospace", "a.b in(x,y)", "a.b in (x, y)"),
    ("op_intersects", "a.b intersects (x)", "a.b intersects (x)"),
    ("op_pmatch", "a.b pmatch (/etc, /usr/bin)", "a.b pmatch (/etc, /usr/bin)"),
    ("op_exists", "a.b exists", "a.b exists"),
    ("in_identifier", "a.b in my_list", "a.b in my_list"),
    ("in_glued_identifier", "a.b inx", "a.b in x"),
    ("in_empty", "a.b in ()", "a.b in ()"),
    (
        "bare_values",
        "evt.dir=< and fd.name=/var/*.log and x.y=!@#$%^&*[]{}|",
        "(evt.dir = < and fd.name = /var/*.log and x.y = !@#$%^&*[]{}|)",
    ),
    ("field_as_rhs_is_string", "proc.name = proc.pname", "proc.name = proc.pname"),
    ("list_items", "a.b in (1, 'a b', \"c,d\", e.f, /x/y*)", 'a.b in (1, "a b", c,d, e.f, /x/y*)'),
    ("mod_oneof", "proc.name == oneof (cat, nginx)", "proc.name == oneof (cat, nginx)"),
    ("mod_anyof_ne", "proc.name != anyof (cat)", "proc.name != anyof (cat)"),
    ("mod_allof_eq", "proc.name = allof ()", "proc.name = allof ()"),
    (
        "mod_word_op",
        "proc.name startswith anyof (/etc/, /tmp/)",
        "proc.name startswith anyof (/etc/, /tmp/)",
    ),
    ("mod_identifier", "proc.name == oneof allowed", "proc.name == oneof allowed"),
    ("mod_keyword_named_list", "proc.name == oneof oneof", "proc.name == oneof oneof"),
    (
        "mod_before_and_is_value",
        "proc.name == anyof and fd.name exists",
        "(proc.name == anyof and fd.name exists)",
    ),
    ("mod_before_paren_close", "(proc.name == oneof)", "proc.name == oneof"),
    ("mod_prefix_word", "proc.name == oneof_x", "proc.name == oneof_x"),
    ("mod_notx_is_list", "proc.name == oneof notx", "proc.name == oneof notx"),
    ("mod_at_end", "proc.name contains allof", "proc.name contains allof"),
    ("arg_number", "proc.aname[2] = bash", "proc.aname[2] = bash"),
    (
        "arg_path",
        "ka.req.pod.volumes.hostpath[/etc] = true",
        "ka.req.pod.volumes.hostpath[/etc] = true",
    ),
    ("arg_json_pointer", "json.value[/a~1b] = x", "json.value[/a~1b] = x"),
    ("arg_quoted_space", 'x.y["a b"] = 1', 'x.y["a b"] = 1'),
    ("arg_quoted_empty", 'x.y[""] = 1', 'x.y[""] = 1'),
    ("arg_single_quoted", "x.y['k'] exists", "x.y[k] exists"),
    ("arg_bare_specials", "x.y[0a!@#:/\\.;(){}|] = v", 'x.y["0a!@#:/\\\\.;(){}|"] = v'),
    ("tr_lhs", "tolower(proc.name) = bash", "tolower(proc.name) = bash"),
    (
        "tr_nested",
        "toupper(basename(proc.exepath)) exists",
        "toupper(basename(proc.exepath)) exists",
    ),
    ("tr_blanks", "b64( b64(a.b ) ) = x", "b64(b64(a.b)) = x"),
    ("tr_rhs", "a.b = tolower(c.d)", "a.b = tolower(c.d)"),
    ("tr_num_rhs", "a.b > len(c.d)", "a.b > len(c.d)"),
    ("tr_list_rhs", "a.b in toupper(c.d)", "a.b in toupper(c.d)"),
    (
        "tr_join_list",
        'join(",", (fd.name, tolower(fd.directory), "lit", 1)) = x',
        "join(,,(fd.name,tolower(fd.directory),lit,1)) = x",
    ),
    ("tr_empty_list", 'join("-", ()) = x', "join(-,()) = x"),
    ("tr_concat", 'concat(a.b, "x", 0x10) startswith y', "concat(a.b,x,0x10) startswith y"),
    ("tr_getopt_arg", 'getopt(proc.args, "nt:")[t] = value', "getopt(proc.args,nt:)[t] = value"),
    (
        "tr_getopt_quoted_arg",
        "getopt(proc.args, 'nt:')[\"t\"] = value",
        "getopt(proc.args,nt:)[t] = value",
    ),
    ("val_rhs", "a.b = val(c.d)", "a.b = val(c.d)"),
    ("val_with_arg", "a.b < val(c.d[1])[x]", "a.b < val(c.d[1])[x]"),
    ("val_in", "a.b in val(c.d)", "a.b in val(c.d)"),
    ("tr_quoted_is_value", "a.b = 'tolower(c.d)'", "a.b = tolower(c.d)"),
    ("quoted_double", 'a.b = "x y"', 'a.b = "x y"'),
    ("quoted_single", "a.b = 'x y'", 'a.b = "x y"'),
    ("escapes", 'a.b = "\\b\\f\\n\\r\\t\\\\\\/"', 'a.b = "\\b\\f\\n\\r\\t\\\\/"'),
    ("escape_dquote", 'a.b = "say \\"hi\\""', 'a.b = "say \\"hi\\""'),
    ("escape_squote", "a.b = 'it\\'s'", 'a.b = "it\'s"'),
    ("escape_legacy_space", 'a.b = "bad escape \\ "', 'a.b = "bad escape \\\\"'),
    ("escape_hex", 'a.b = "\\x41\\x42C"', "a.b = ABC"),
    ("escape_hex_two_digits", 'a.b = "\\x413"', "a.b = A3"),
    ("quote_not_closed_by_escaped", 'a.b = "a\\"b" and c', '(a.b = "a\\"b" and c)'),
    (
        "quoted_other_quote_inside",
        "a.b = 'mixed \"' and c.d = \"mixed '\"",
        '(a.b = "mixed \\"" and c.d = "mixed \'")',
    ),
    ("list_first_item_error_swallowed", 'a.b in ("\\q")', "a.b in ()"),
    ("list_bare_item_ending_in_backspace", "a.b in (a, b\x08)", 'a.b in (a, "b\\b")'),
]

ERRORS = [
    ("empty", "", "filter input string is empty", (0, 1, 1)),
    ("blank_only", "   ", "expected a '(' token, a field check, or an identifier", (3, 1, 4)),
    ("only_not", "not ", "expected a '(' token, a field check, or an identifier", (4, 1, 5)),
    ("and_no_blank", "a andb", "expected blank or '(' after 'and'", (5, 1, 6)),
    ("or_no_blank", "a orb", "expected blank or '(' after 'or'", (4, 1, 5)),
    ("and_at_end", "a and", "expected blank or '(' after 'and'", (5, 1, 6)),
    (
        "and_nothing_after",
        "a and ",
        "expected a '(' token, a field check, or an identifier",
        (6, 1, 7),
    ),
    (
        "or_paren_then_and",
        "a or(b) and c",
        "unexpected token after ')', expecting 'or', 'and'",
        (8, 1, 9),
    ),
    ("leftover", "a b", "unexpected token after 'a', expecting 'or', 'and'", (2, 1, 3)),
    (
        "leftover_after_quoted",
        "a.b = 'x y' z",
        "unexpected token after 'x y', expecting 'or', 'and'",
        (12, 1, 13),
    ),
    (
        "leftover_after_list",
        "a.b in (x) y",
        "unexpected token after ')', expecting 'or', 'and'",
        (11, 1, 12),
    ),
    (
        "leftover_after_arg",
        "a.b = val(c.d)[1] e",
        "unexpected token after ']', expecting 'or', 'and'",
        (18, 1, 19),
    ),
    ("leftover_rparen", "a)", "unexpected token after 'a', expecting 'or', 'and'", (1, 1, 2)),
    ("missing_rparen", "(a", "expected a ')' token", (2, 1, 3)),
    ("missing_rparen_after_check", "(a.b = c d)", "expected a ')' token", (9, 1, 10)),
    ("no_check", "a and )", "expected a '(' token, a field check, or an identifier", (6, 1, 7)),
    ("no_operator", "a.b c", MSG_OPERATOR, (4, 1, 5)),
    ("upper_operator", "test.op ExIsTs", MSG_OPERATOR, (8, 1, 9)),
    ("word_op_glued", "a.b containsx", MSG_OPERATOR, (4, 1, 5)),
    ("blank_before_arg", "a.b [1] = 2", MSG_OPERATOR, (4, 1, 5)),
    ("num_value", "a.b > x", MSG_NUM, (6, 1, 7)),
    (
        "num_value_hex_dot",
        "a.b < 0xAAA.1",
        "unexpected token after '0xAAA', expecting 'or', 'and'",
        (11, 1, 12),
    ),
    ("str_value", "a.b = =", MSG_STR, (6, 1, 7)),
    ("str_value_unterminated", 'a.b = "abc', MSG_STR, (6, 1, 7)),
    ("list_value", "a.b in _x", MSG_LIST, (7, 1, 8)),
    ("list_comma_first", "a.b in (,)", "expected a ')' token", (8, 1, 9)),
    ("list_trailing_comma", "a.b in (x,)", "expected a string value", (10, 1, 11)),
    ("list_missing_rparen", "a.b in (x y)", "expected a ')' token", (10, 1, 11)),
    (
        "mod_no_blank_before_list",
        "proc.name == oneof(cat)",
        "unexpected token after 'oneof', expecting 'or', 'and'",
        (18, 1, 19),
    ),
    (
        "mod_glued_op",
        "proc.name ==oneof (cat)",
        "unexpected token after 'oneof', expecting 'or', 'and'",
        (18, 1, 19),
    ),
    ("num_op_no_modifier", "proc.num > oneof (1)", MSG_NUM, (11, 1, 12)),
    (
        "list_op_no_modifier",
        "proc.name in oneof (cat)",
        "unexpected token after 'oneof', expecting 'or', 'and'",
        (19, 1, 20),
    ),
    (
        "field_arg_empty",
        "a.b[] = c",
        "expected a valid field argument: a quoted string or a bare string",
        (4, 1, 5),
    ),
    ("field_arg_unclosed", 'a.b["x" = c', "expected a ']' token", (7, 1, 8)),
    (
        "field_arg_blank",
        "a.b[ x] = c",
        "expected a valid field argument: a quoted string or a bare string",
        (4, 1, 5),
    ),
    ("field_arg_escape", 'a.b["\\q"] = c', "unsupported string escape sequence: \\q", (8, 1, 9)),
    (
        "tr_bad_arg",
        "tolower(abc) = x",
        "expected field transformer argument: "
        "field, transformer, quoted string, number, or transformer list",
        (8, 1, 9),
    ),
    (
        "tr_blank_before_paren",
        "b64 (a.b) exists",
        "unexpected token after 'b64', expecting 'or', 'and'",
        (4, 1, 5),
    ),
    ("tr_unclosed", "tolower(a.b = x", "expected a ')' token closing the transformer", (12, 1, 13)),
    (
        "tr_val_on_lhs",
        "val(a.b) exists",
        "unexpected token after 'val', expecting 'or', 'and'",
        (3, 1, 4),
    ),
    (
        "tr_val_nested",
        "a.b = val(tolower(c.d))",
        "expected a field within 'val' transformer",
        (10, 1, 11),
    ),
    (
        "tr_val_unclosed",
        "a.b = val(c.d [1])",
        "expected a ')' token closing the transformer",
        (14, 1, 15),
    ),
    (
        "tlist_bad_arg",
        'join("-", (macro)) = x',
        "expected transformer list argument: field, transformer, quoted string, or number",
        (11, 1, 12),
    ),
    (
        "tlist_nested",
        'join("-", ((a.b))) = x',
        "expected transformer list argument: field, transformer, quoted string, or number",
        (11, 1, 12),
    ),
    ("tlist_unclosed", 'join("-", (a.b c.d)) = x', "expected ')'", (15, 1, 16)),
    ("tr_in_list_value", "a.b in (x, tolower(c.d))", "expected a ')' token", (18, 1, 19)),
    ("escape_unsupported", 'a.b = "\\q"', "unsupported string escape sequence: \\q", (10, 1, 11)),
    (
        "escape_dquote_in_single",
        "a.b = '\\\"'",
        "invalid \\\" escape in '-quoted string",
        (10, 1, 11),
    ),
    (
        "escape_squote_in_double",
        'a.b = "\\\'"',
        "invalid \\' escape in \"-quoted string",
        (10, 1, 11),
    ),
    ("escape_hex_truncated", 'a.b = "\\x4"', "truncated hex char escape sequence", (11, 1, 12)),
    ("escape_hex_invalid", 'a.b = "\\xg1"', "invalid hex char escape sequence: g1", (12, 1, 13)),
    ("quote_trailing_backslash", 'a.b = "a\\\\"', MSG_STR, (6, 1, 7)),
    ("list_first_item_error", 'a.b in ("\\q", x)', "expected a ')' token", (12, 1, 13)),
    ("multiline_error", "a.b = c and\n  d.e = f and\n  g.h i", MSG_OPERATOR, (32, 3, 7)),
    ("crlf_lines", "a and\r\nb c", "unexpected token after 'b', expecting 'or', 'and'", (9, 3, 3)),
]

POSITIONS = [
    ("pos_not", "not proc.name=nginx", "not0,1,1 bin4,1,5 field4,1,5 val14,1,15"),
    (
        "pos_or_parens",
        "(proc.name=nginx or proc.name=apache)",
        "or1,1,2 bin1,1,2 field1,1,2 val11,1,12 bin20,1,21 field20,1,21 val30,1,31",
    ),
    ("pos_top_or_starts_at_zero", "  a or b", "or0,1,1 id2,1,3 id7,1,8"),
    (
        "pos_multiline",
        "\n(proc.aname[2]=nginx\n     and evt.type in (connect,accept))\n"
        "   or (not fd.name exists)\n   or (proc.name=apache\n       and evt.type=switch)",
        "or0,1,1 and2,2,2 bin2,2,2 field2,2,2 val16,2,16 bin31,3,10 field31,3,10 list43,3,22 "
        "not68,4,8 un72,4,12 field72,4,12 and95,5,8 bin95,5,8 field95,5,8 val105,5,18 "
        "bin123,6,12 field123,6,12 val132,6,21",
    ),
    (
        "pos_transformers",
        "b64(evt.name) exists and tolower(toupper(evt.type)) in val(some.field) or "
        "proc.name=b64(tolower(some.field))",
        "or0,1,1 and0,1,1 un0,1,1 tr0,1,1 field4,1,5 bin25,1,26 tr25,1,26 tr33,1,34 field41,1,42 "
        "tr55,1,56 field59,1,60 bin74,1,75 field74,1,75 tr84,1,85 tr88,1,89 field96,1,97",
    ),
    (
        "pos_transformer_args",
        'concat(a.b,  c.d, (e.f, "g")) = x',
        "bin0,1,1 tr0,1,1 field7,1,8 field11,1,12 tlist17,1,18 field17,1,18 val17,1,18 val32,1,33",
    ),
    ("pos_modifier_list", "proc.name == oneof (cat)", "bin0,1,1 field0,1,1 list19,1,20"),
]


@pytest.mark.parametrize(("text", "printed"), [pytest.param(t, p, id=i) for i, t, p in PRINTED])
def test_ast_prints_as_upstream(text: str, printed: str) -> None:
    assert as_string(parse(text)) == printed


@pytest.mark.parametrize(
    ("text", "message", "where"), [pytest.param(t, m, w, id=i) for i, t, m, w in ERRORS]
)
def test_error_message_and_position(text: str, message: str, where: tuple[int, int, int]) -> None:
    error = _error(text)
    assert (error.message, _where(error)) == (message, where)
    assert str(error) == message


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, p, id=i) for i, t, p in POSITIONS])
def test_node_positions(text: str, expected: str) -> None:
    assert _positions(parse(text)) == expected


# ---- exact node shapes ----


def test_and_or_are_flat_n_ary_nodes() -> None:
    a, b, c, d = (Identifier(x) for x in "abcd")
    assert parse("a and b and c") == And((a, b, c))
    assert parse("a or b and c or d") == Or((a, And((b, c)), d))


def test_val_is_a_transformer_named_val() -> None:
    check = parse("a.b = val(c.d[1])[x]")
    assert check == BinaryCheck(Field("a.b"), "=", Transformer("val", (Field("c.d", "1"),), "x"))


def test_modifier_op_text_and_identifier_list() -> None:
    check = parse("proc.name startswith oneof my_list")
    assert check == BinaryCheck(Field("proc.name"), "startswith oneof", Value("my_list"))


def test_transformer_arguments() -> None:
    check = parse('join(",", (fd.name, "x", 1))[2] exists')
    args = (Value(","), TransformerList((Field("fd.name"), Value("x"), Value("1"))))
    assert check == UnaryCheck(Transformer("join", args, "2"), "exists")


def test_field_argument_absent_and_empty_differ() -> None:
    assert parse("x.y exists").left == Field("x.y", None)  # type: ignore[union-attr]
    assert parse('x.y[""] exists').left == Field("x.y", "")  # type: ignore[union-attr]


def test_not_node_only_for_odd_counts() -> None:
    assert parse("not not not a") == Not(Identifier("a"))
    assert parse("not (not a)") == Not(Not(Identifier("a")))


def test_values_are_unescaped() -> None:
    assert parse(r'a.b = "x\ty\x41\xc3\xa9"').right == Value("x\tyAé")  # type: ignore[union-attr]
    assert parse(r'a.b = "\xff"').right == Value("\udcff")  # type: ignore[union-attr]


def test_list_literal_items() -> None:
    check = parse("a.b in (x, 'y z', \"\", w)")
    assert check.right == ListValue(("x", "y z", "", "w"))  # type: ignore[union-attr]


# ---- the recursion limit (libs master, as Falco sets it) ----


def test_depth_limit_boundary_matches_upstream() -> None:
    assert parse("(" * 199 + "a" + ")" * 199) == Identifier("a")
    error = _error("(" * 200 + "a" + ")" * 200)
    assert (error.message, _where(error)) == (MSG_DEPTH, (200, 1, 201))


def test_depth_counts_upstream_calls_not_nodes() -> None:
    """ "and(" recurses less than "and (" upstream, so it nests deeper before the limit."""
    assert parse("x and(" * 331 + "a" + ")" * 331)
    error = _error("x and(" * 332 + "a" + ")" * 332)
    assert (error.message, _where(error)) == (MSG_DEPTH, (1992, 1, 1993))
    deep = "x.y = " + "tolower(" * 495 + "a.b" + ")" * 495
    assert as_string(parse(deep)) == deep


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("(" * 5000 + "a" + ")" * 5000, (200, 1, 201), id="parens"),
        pytest.param("(" * 20000, (200, 1, 201), id="unclosed"),
        pytest.param("not(" * 5000 + "a" + ")" * 5000, (1000, 1, 1001), id="not-paren"),
        pytest.param("not (" * 5000 + "a" + ")" * 5000, (1000, 1, 1001), id="not-blank-paren"),
        pytest.param("x.y = " + "tolower(" * 5000 + "a.b" + ")" * 5000, (3982, 1, 3983), id="tr"),
    ],
)
def test_deep_nesting_is_a_syntax_error(text: str, where: tuple[int, int, int]) -> None:
    error = _error(text)
    assert (error.message, _where(error)) == (MSG_DEPTH, where)


def test_long_not_chains_do_not_nest() -> None:
    assert parse("not " * 5001 + "a") == Not(Identifier("a"))


def test_depth_error_loses_to_an_earlier_syntax_error() -> None:
    error = _error("a.b = ) " + "(" * 5000)
    assert (error.message, _where(error)) == (MSG_STR, (6, 1, 7))


# ---- escapes (escaping.unescape_str) ----


@pytest.mark.parametrize(
    ("body", "quote", "value"),
    [
        (r"\b\f\n\r\t\\\/", '"', "\b\f\n\r\t\\/"),
        (r"a\"b", '"', 'a"b'),
        (r"it\'s", "'", "it's"),
        ("legacy \\ ", '"', "legacy \\"),
        (r"\x41\x413", '"', "AA3"),
        (r"\xc3\xa9", '"', "é"),
        (r"\xff", '"', "\udcff"),
        ("plain", "'", "plain"),
    ],
)
def test_unescape(body: str, quote: str, value: str) -> None:
    assert unescape_str(body, quote) == value


@pytest.mark.parametrize(
    ("body", "quote", "message"),
    [
        (r"\q", '"', "unsupported string escape sequence: \\q"),
        (r"\"", "'", "invalid \\\" escape in '-quoted string"),
        (r"\'", '"', "invalid \\' escape in \"-quoted string"),
        (r"\x4", '"', "truncated hex char escape sequence"),
        (r"\x", '"', "truncated hex char escape sequence"),
        (r"\xg1", '"', "invalid hex char escape sequence: g1"),
        (r"\x+a", '"', "invalid hex char escape sequence: +a"),
        (r"a\x00b", '"', "filter error: filter value cannot contain a NUL byte (\\x00)"),
    ],
)
def test_unescape_errors(body: str, quote: str, message: str) -> None:
    with pytest.raises(EscapeError) as info:
        unescape_str(body, quote)
    assert info.value.message == message


# ---- output-format tokens ----


@pytest.mark.parametrize(
    ("text", "start", "printed", "end"),
    [
        ("proc.name", 0, "proc.name", 9),
        ("%proc.name_suffix", 1, "proc.name_suffix", 17),
        ("x %proc.aname[2]x", 3, "proc.aname[2]", 16),
        ("proc.name [2]", 0, "proc.name", 9),
        ("tolower(proc.name)!", 0, "tolower(proc.name)", 18),
        ('getopt(proc.args, "nt:")[t] rest', 0, "getopt(proc.args,nt:)[t]", 27),
        ('x.y["a\\x41"] z', 0, "x.y[aA]", 12),
        ("x.y[1][2]", 0, "x.y[1]", 6),
    ],
)
def test_format_token(text: str, start: int, printed: str, end: int) -> None:
    node, stop = parse_field_or_transformer(text, start)
    assert (as_string(node), stop) == (printed, end)


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        (" proc.name", "unexpected token after '", (0, 1, 1)),
        ("notafield", "unexpected token after '", (0, 1, 1)),
        ("val(proc.name)", "unexpected token after '", (0, 1, 1)),
        (
            "proc.name[",
            "expected a valid field argument: a quoted string or a bare string",
            (10, 1, 11),
        ),
        ("tolower(proc.name", "expected a ')' token closing the transformer", (17, 1, 18)),
        pytest.param(
            "tolower(" * 60 + "a.b" + ")" * 60,
            "exceeded max depth limit of 100",
            (400, 1, 401),
            id="deep",
        ),
    ],
)
def test_format_token_errors(text: str, message: str, where: tuple[int, int, int]) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_field_or_transformer(text)
    assert (info.value.message, _where(info.value)) == (message, where)


# ---- printing ----


@pytest.mark.parametrize(
    ("node", "upstream", "round_trip"),
    [
        (Not(Not(Identifier("a"))), "not not a", "not (not a)"),
        (BinaryCheck(Field("x.y", "a]b"), "=", Value("")), "x.y[a]b] = ", 'x.y["a]b"] = ""'),
        (BinaryCheck(Field("x.y"), "=", Value("a\\")), 'x.y = "a\\\\"', 'x.y = "a\\x5c"'),
        (
            UnaryCheck(Transformer("getopt", (Field("p.a"), Value("nt:")), "t"), "exists"),
            "getopt(p.a,nt:)[t] exists",
            'getopt(p.a,"nt:")[t] exists',
        ),
        (
            BinaryCheck(Field("x.y"), "in", ListValue(("a,b", "c"))),
            "x.y in (a,b, c)",
            'x.y in ("a,b", c)',
        ),
    ],
)
def test_printing_and_round_trip(node, upstream: str, round_trip: str) -> None:  # type: ignore[no-untyped-def]
    assert as_string(node) == upstream
    assert as_string(node, round_trip=True) == round_trip
    assert parse(round_trip) == node


# ---- deliberate differences from upstream ----


def test_nul_byte_is_rejected_while_parsing() -> None:
    """Upstream's parser accepts "\\x00" and its compiler rejects the value; we reject it
    here, after any syntax error (which upstream would report first)."""
    error = _error(r'a.b = "\x00"')
    assert (error.message, _where(error)) == (
        "filter error: filter value cannot contain a NUL byte (\\x00)",
        (12, 1, 13),
    )
    error = _error(r'a.b = "\x00" )')  # upstream's message is a C string, cut at the NUL
    assert (error.message, _where(error)) == ("unexpected token after '", (13, 1, 14))


def test_positions_count_characters_not_utf8_bytes() -> None:
    error = _error("a.b = é x")
    assert _where(error) == (8, 1, 9)  # upstream says (9, 1, 10): 'é' is two bytes


def test_error_positions_count_cr_as_a_line_break() -> None:
    assert _where(_error("a\rb")) == (2, 2, 1)
    assert _positions(parse("a\r\nand b")) == "and0,1,1 id0,1,1 id7,3,5"
