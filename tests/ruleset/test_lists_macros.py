"""Lists (textual substitution, list-in-list expansion) and macros (AST substitution, visibility,
loops, unused warnings), with the compiled conditions upstream prints."""

from __future__ import annotations

import pytest

from falconet.ruleset.substitute import ListSub, resolve_list, resolve_lists, unmap

from .conftest import D, load, rule_with

# --- textual substitution, exactly as resolve_list ------------------------------------------------


@pytest.mark.parametrize(
    ("cnd", "name", "items", "expected"),
    [
        ("proc.name in (shell_binaries)", "shell_binaries", ["bash", "sh"],
         "proc.name in ( bash, sh )"),
        ("proc.name=cat_binaries", "cat_binaries", ["cat"], "proc.name= cat "),
        ("evt.type in my_list", "my_list", ["open"], "evt.type in open "),
        ("shell_binaries", "shell_binaries", ["a"], "a "),
        ("proc.name in (a_list, b)", "a_list", [], "proc.name in (   b)"),
        ("x in (b, a_list)", "a_list", [], "x in (b  )"),
        ("x in (a_list)", "a_list", [], "x in (  )"),
        ("x in (a_list)", "a_list", ["a b", "'c d'", '"e f"', "g"],
         "x in ( \"a b\", 'c d', \"e f\", g )"),
        ("x in (my_list_2)", "my_list", ["a"], "x in (my_list_2)"),
        ("x in (other_my_list)", "my_list", ["a"], "x in (other_my_list)"),
        ('x contains "foo my_list bar"', "my_list", ["a", "b"], 'x contains "foo a, b bar"'),
        ("x in (l,l)", "l", ["a"], "x in ( a , a )"),
        ("x in (\n  l\n)", "l", ["a"], "x in ( a )"),
        ("x=l and y=l", "l", ["v"], "x= v and y= v "),
    ],
)
def test_resolve_list_text(cnd: str, name: str, items: list[str], expected: str) -> None:
    text, used = resolve_list(cnd, name, items, [])
    assert text == expected
    assert used == (expected != cnd)


def test_lists_substitute_in_definition_order() -> None:
    # a list name inserted by an earlier list is substituted in turn; not the other way round
    l1, l2 = ListSub.of("l1", ["l2"]), ListSub.of("l2", ["x", "y"])
    text, used, _ = resolve_lists("proc.name in (l1)", [l1, l2])
    assert text == "proc.name in ( x, y )"
    assert used == ["l1", "l2"]
    text, used, _ = resolve_lists("proc.name in (l1)", [l2, l1])
    assert text == "proc.name in ( l2 )"
    assert used == ["l1"]


def test_unmap_positions_back_to_the_written_text() -> None:
    written = "a in (l1) and b = 1"
    text, _, edits = resolve_lists(written, [ListSub.of("l1", ["x", "yy"])])
    assert text == "a in ( x, yy ) and b = 1"
    assert unmap(text.index("b ="), edits) == written.index("b =")
    assert unmap(text.index("yy"), edits) == written.index("l1")
    assert unmap(0, edits) == 0


# --- lists in rules -----------------------------------------------------------------------------


def test_list_appended_after_use(registry) -> None:
    t = load(registry, """
        - list: shell_binaries
          items: [ash, bash, csh, ksh, sh, tcsh, zsh, dash]

        - rule: legit_rule
          desc: legit rule description
          condition: evt.type=open and proc.name in (shell_binaries)
          output: user=%user.name command=%proc.cmdline file=%fd.name
          priority: INFO

        - list: shell_binaries
          items: [pwsh]
          override:
            items: append
    """)
    assert t.ok, t.errors
    assert t.compiled("legit_rule") == (
        "(evt.type = open and proc.name in (ash, bash, csh, ksh, sh, tcsh, zsh, dash, pwsh))")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("proc.name in (cat_binaries)", "proc.name in (cat)"),
        ("proc.name=cat_binaries", "proc.name = cat"),
        ("proc.name in cat_binaries", "proc.name in cat"),
        ("(proc.name in (cat_binaries, vi))", "proc.name in (cat, vi)"),
        ("proc.name in (vi, cat_binaries)", "proc.name in (vi, cat)"),
        ("proc.name in (vi,cat_binaries,ls)", "proc.name in (vi, cat, ls)"),
        ("proc.name in (empty_list)", "proc.name in ()"),
        ("proc.name in (vi, empty_list)", "proc.name in (vi)"),
        ("proc.name in (empty_list, vi)", "proc.name in (vi)"),
        ("proc.name in (two_words)", 'proc.name in ("a b", c)'),
    ],
)
def test_list_substitution_forms(registry, condition: str, expected: str) -> None:
    t = load(registry, D("""
        - list: cat_binaries
          items: [cat]
        - list: empty_list
          items: []
        - list: two_words
          items: [a b, c]
    """) + rule_with(condition))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == expected


def test_list_without_parentheses_needs_a_single_item(registry) -> None:
    t = load(registry, D("""
        - list: two
          items: [open, close]
    """) + rule_with("evt.type in two"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION",
                         "unexpected token after 'open', expecting 'or', 'and'")]


def test_list_of_lists_expands_one_level_with_visibility(registry) -> None:
    t = load(registry, D("""
        - list: inner
          items: [a, b]
        - list: outer
          items: [inner, c, later]
        - list: later
          items: [z]
    """) + rule_with("proc.name in (outer)"))
    assert t.ok, t.errors
    lists = {li.name: li for li in t.loader.lists}
    assert lists["outer"].items == ["inner", "c", "later"]
    assert lists["outer"].items_compiled == ["a", "b", "c", "later"]
    assert lists["outer"].lists == ["inner"]
    assert lists["inner"].used and lists["outer"].used and lists["later"].used
    # the later list's name is still substituted in the condition (definition order)
    assert t.compiled("test_rule") == "proc.name in (a, b, c, z)"


def test_list_defined_after_the_rule_still_substitutes(registry) -> None:
    t = load(registry, rule_with("proc.name in (later_list)") + D("""
        - list: later_list
          items: [x]
    """))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "proc.name in (x)"


def test_quoted_items_and_escaped_values(registry) -> None:
    t = load(registry, """
        - list: my_list
          items: [non_escaped_val, "escaped val"]
    """)
    assert t.ok
    (li,) = t.loader.lists
    assert li.items_compiled == ["non_escaped_val", "escaped val"]
    assert li.lists == []
    assert t.warnings == [("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro")]


def test_list_name_in_a_quoted_string_is_substituted(registry) -> None:
    t = load(registry, D("""
        - list: bins
          items: [a]
    """) + rule_with('proc.cmdline contains "run bins now"'))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == 'proc.cmdline contains "run a now"'


# --- macros ---------------------------------------------------------------------------------------


def test_macro_is_substituted_as_a_subtree(registry) -> None:
    t = load(registry, """
        - macro: interactive
          condition: >
            ((proc.aname=sshd and proc.name != sshd) or
            proc.name=systemd-logind or proc.name=login)

        - rule: legit_rule
          desc: legit rule description
          condition: evt.type=open and interactive
          output: user=%user.name command=%proc.cmdline file=%fd.name
          priority: INFO

        - macro: interactive
          condition: or proc.name = ssh
          override:
            condition: append
    """)
    assert t.ok, t.errors
    assert t.compiled("legit_rule") == (
        "(evt.type = open and (((proc.aname = sshd and proc.name != sshd) or proc.name = "
        "systemd-logind or proc.name = login) or proc.name = ssh))")


def test_macro_alone_and_nested(registry) -> None:
    t = load(registry, D("""
        - macro: m1
          condition: evt.type = open
        - macro: m2
          condition: m1 and not proc.name = cat
    """) + rule_with("m2"))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "(evt.type = open and not proc.name = cat)"
    macros = {m.name: m for m in t.loader.macros}
    assert macros["m2"].macros == ["m1"]
    assert t.rule("test_rule").macros == ["m2"]  # m1 is already inside m2


def test_rule_sees_macros_defined_after_it(registry) -> None:
    t = load(registry, rule_with("later_macro") + D("""
        - macro: later_macro
          condition: evt.type = open
    """))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "evt.type = open"


def test_macro_does_not_see_macros_defined_after_it(registry) -> None:
    t = load(registry, """
        - macro: first
          condition: second and proc.name = x
        - macro: second
          condition: evt.type = open
    """)
    assert not t.ok
    assert t.errors == [("LOAD_ERR_VALIDATE", "Undefined macro 'second' used in filter.")]
    locs = [(loc.item_type, loc.item_name) for loc in t.error.locations]
    assert locs == [("rules content", ""), ("macro", "first"), ("condition expression", "")]
    assert t.error.locations[-1].name == '"second and proc.n..."'


def test_redefined_macro_sees_macros_defined_before_the_redefinition(registry) -> None:
    t = load(registry, D("""
        - macro: first
          condition: evt.type = open
        - macro: second
          condition: evt.type = close
        - macro: first
          condition: second and proc.name = x
    """) + rule_with("first"))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "(evt.type = close and proc.name = x)"


def test_macro_reference_loop(registry) -> None:
    t = load(registry, """
        - macro: m
          condition: evt.type = open
        - macro: m
          condition: m and proc.name = x
    """)
    assert not t.ok
    assert t.errors == [("LOAD_ERR_VALIDATE", "reference loop in macro 'm'")]


def test_macro_loop_through_append(registry) -> None:
    t = load(registry, """
        - macro: a
          condition: evt.type = open
        - macro: b
          condition: a
        - macro: a
          condition: or b
          override:
            condition: append
    """)
    assert not t.ok
    # resolving a: b -> a (raw, visible) -> b again: the loop is reported at b, as upstream
    assert t.errors == [("LOAD_ERR_VALIDATE", "reference loop in macro 'b'")]


def test_undefined_macro_in_rule(registry) -> None:
    t = load(registry, rule_with("evt.type = open and nope"))
    assert t.errors == [("LOAD_ERR_VALIDATE", "Undefined macro 'nope' used in filter.")]
    loc = t.error.locations[-1]
    assert (loc.item_type, loc.line, loc.column) == ("condition expression", 4, 34)
    assert [x.item_type for x in t.error.locations] == ["rules content", "rule",
                                                          "condition expression"]


def test_macro_defined_in_a_later_file_fails_the_first(registry) -> None:
    t = load(registry, rule_with("evt.type = open and later"), """
        - macro: later
          condition: proc.name = x
    """)
    assert t.results[0].errors[0].message == "Undefined macro 'later' used in filter."
    assert t.results[1].successful
    assert t.compiled("test_rule") == "(evt.type = open and proc.name = x)"


def test_unused_macro_is_parsed(registry) -> None:
    t = load(registry, """
        - macro: broken
          condition: proc.name = (
    """)
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION",
                         "expected a string value or a field with a valid transformer: 'val', "
                         "'tolower', 'toupper', 'b64', 'basename', 'len', 'join', 'concat', "
                         "'getopt'")]
    assert [x.item_type for x in t.error.locations] == [
        "rules content", "macro", "macro condition", "condition expression"]


def test_unused_macro_with_unknown_field_is_not_compiled(registry) -> None:
    t = load(registry, """
        - macro: unknown_field
          condition: proc.nonexistent = x
    """)
    assert t.ok, t.errors
    assert t.warnings == [("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro")]


def test_undefined_macro_in_unused_macro_fails(registry) -> None:
    t = load(registry, """
        - macro: m
          condition: evt.type = open and undefined_one
    """)
    assert t.errors == [("LOAD_ERR_VALIDATE", "Undefined macro 'undefined_one' used in filter.")]


def test_unused_items_warnings_and_marks(registry) -> None:
    t = load(registry, """
        - list: used_by_unused_macro
          items: [a]
        - list: unused_list
          items: [b]
        - macro: unused_macro
          condition: proc.name in (used_by_unused_macro) and helper
        - macro: helper
          condition: evt.type = open
    """)
    # helper is defined after unused_macro: invisible to it
    assert t.errors == [("LOAD_ERR_VALIDATE", "Undefined macro 'helper' used in filter.")]
    t = load(registry, """
        - list: used_by_unused_macro
          items: [a]
        - list: unused_list
          items: [b]
        - macro: helper
          condition: evt.type = open
        - macro: unused_macro
          condition: proc.name in (used_by_unused_macro) and helper
    """)
    assert t.ok, t.errors
    assert t.warnings == [
        ("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro"),
        ("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro"),
    ]
    assert [w.locations[-1].item_name for w in t.result.warnings] == ["unused_macro",
                                                                     "unused_list"]
    macros = {m.name: m for m in t.loader.macros}
    assert macros["helper"].used and not macros["unused_macro"].used


@pytest.mark.parametrize(
    ("yaml_text", "code", "message"),
    [
        ("- macro: test-macro\n  condition: evt.type = close\n", "LOAD_INVALID_MACRO_NAME",
         "Macro has an invalid name. Macro names should match a regular expression: "
         "([a-zA-Z]+[a-zA-Z0-9_]*)"),
        ("- macro: 1macro\n  condition: evt.type = close\n", "LOAD_INVALID_MACRO_NAME",
         "Macro has an invalid name. Macro names should match a regular expression: "
         "([a-zA-Z]+[a-zA-Z0-9_]*)"),
        ("- list: test list\n  items: [open]\n", "LOAD_INVALID_LIST_NAME",
         "List has an invalid name. List names should match a regular expression: "
         "([^()\"'[:space:]=,]+)"),
        ("- list: a,b\n  items: [open]\n", "LOAD_INVALID_LIST_NAME",
         "List has an invalid name. List names should match a regular expression: "
         "([^()\"'[:space:]=,]+)"),
    ],
)
def test_invalid_names_are_warnings(registry, yaml_text: str, code: str, message: str) -> None:
    t = load(registry, yaml_text)
    assert t.ok, t.errors
    assert t.warnings[0] == (code, message)


def test_list_with_invalid_name_still_substitutes(registry) -> None:
    t = load(registry, """
        - list: test list
          items: [open, openat, openat2]

        - rule: test_rule
          desc: test rule description
          condition: evt.type in (test list)
          output: user=%user.name command=%proc.cmdline file=%fd.name
          priority: INFO
          enabled: false
    """)
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "evt.type in (open, openat, openat2)"
    assert t.warning_codes() == ["LOAD_INVALID_LIST_NAME"]
