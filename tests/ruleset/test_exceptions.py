"""Rule exceptions: the condition text they build, the compiled condition, and every shape,
operator and field error, as upstream."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.ruleset.context import Ctx, LoadError
from falconet.ruleset.rule_exceptions import (
    Entry,
    ExceptionInfo,
    build_exceptions_condition,
    is_operator_for_list,
    is_str_operator_with_modifier,
    validate_exception_info,
)

from .conftest import D, load

CTX = Ctx.root("t")


def entry(value: Any) -> Entry:
    if value is None:
        return Entry()
    if isinstance(value, list):
        return Entry(True, "", [entry(v) for v in value])
    return Entry(False, value)


def exc(fields: Any, comps: Any, values: list[Any], name: str = "e") -> ExceptionInfo:
    return ExceptionInfo(CTX, name, entry(fields), entry(comps), [entry(v) for v in values])


# --- text building (build_rule_exception_infos) -------------------------------------------------


@pytest.mark.parametrize(
    ("ex", "expected"),
    [
        (exc(["proc.name"], ["="], [["cat"]]), "(c) and not (( proc.name = cat))"),
        (exc(["proc.name", "fd.name"], ["=", "startswith"], [["cat", "/etc"], ["vi", "/tmp"]]),
         "(c) and not (( proc.name = cat and  fd.name startswith /etc) or "
         "( proc.name = vi and  fd.name startswith /tmp))"),
        (exc(["proc.cmdline"], ["contains"], [["curl 127.0.0.1"]]),
         '(c) and not (( proc.cmdline contains "curl 127.0.0.1"))'),
        (exc(["proc.cmdline"], ["contains"], [["'a b'"]]),
         "(c) and not (( proc.cmdline contains 'a b'))"),
        (exc(["proc.name"], ["in"], [[["a", "b c"]]]),
         '(c) and not (( proc.name in (a, "b c")))'),
        (exc(["proc.name"], ["="], [[["a", "b"]]]), "(c) and not (( proc.name = (a, b)))"),
        (exc(["proc.name"], ["in"], [["my_list"]]), "(c) and not (( proc.name in (my_list)))"),
        (exc(["proc.name"], ["in"], [["(a, b)"]]), "(c) and not (( proc.name in (a, b)))"),
        (exc(["proc.name"], ["pmatch"], [["x"]]), "(c) and not (( proc.name pmatch (x)))"),
        (exc(["proc.name"], ["startswith oneof"], [["sshd"]]),
         "(c) and not (( proc.name startswith oneof (sshd)))"),
        (exc(["proc.name"], ["="], []), "(c)"),
        (exc("proc.name", "in", ["a", "b c", "'d e'"]),
         "(c) and not (proc.name in (a, \"b c\", 'd e'))"),
        (exc("fd.name", "pmatch", ["/etc"]), "(c) and not (fd.name pmatch (/etc))"),
        (exc("proc.name", "in", []), "(c)"),
    ],
)
def test_exception_text(ex: ExceptionInfo, expected: str) -> None:
    text, _, _ = build_exceptions_condition("c", [ex])
    assert text == expected


def test_exception_text_several_and_fields() -> None:
    text, fields, starts = build_exceptions_condition("a or b", [
        exc(["proc.name"], ["="], [["x"]], "one"),
        exc("fd.name", "in", [], "empty"),
        exc("user.name", "in", ["root"], "two"),
    ])
    assert text == ("(a or b) and not (( proc.name = x)) and not (user.name in (root))")
    assert fields == ["proc.name", "user.name"]
    assert [(text[s:s + 5], e.name) for s, e in starts] == [("(( pr", "one"), ("(user", "two")]


@pytest.mark.parametrize(
    ("ex", "message"),
    [
        (exc("proc.name", "in", [["a"]]), "Expected values array to contain a list of strings"),
        (exc(["proc.name", "fd.name"], ["=", "="], [["a"]]),
         "Fields and values lists must have equal length"),
        (exc(["proc.name"], ["="], ["a"]), "Fields and values lists must have equal length"),
    ],
)
def test_exception_text_errors(ex: ExceptionInfo, message: str) -> None:
    with pytest.raises(LoadError) as err:
        build_exceptions_condition("c", [ex])
    assert (err.value.code.value, err.value.message) == ("LOAD_ERR_VALIDATE", message)


# --- operators and validation (validate_exception_info) -------------------------------------------


@pytest.mark.parametrize(
    ("op", "modifier", "for_list"),
    [("in", False, True), ("pmatch", False, True), ("intersects", False, True),
     ("=", False, False), ("startswith oneof", True, True), ("= anyof", True, True),
     ("== allof", True, True), ("regex oneof", True, True), ("in oneof", False, False),
     (">= oneof", False, False), ("startswith  oneof", False, False), ("oneof", False, False),
     ("exists oneof", False, False), ("glob anyof", True, True)],
)
def test_operator_kinds(op: str, modifier: bool, for_list: bool) -> None:
    assert is_str_operator_with_modifier(op) is modifier
    assert is_operator_for_list(op) is for_list


def test_default_comps() -> None:
    ex = exc(["proc.name", "fd.name"], None, [])
    validate_exception_info(ex, None)
    assert [c.item for c in ex.comps.items] == ["=", "="]
    ex = exc("proc.name", None, [])
    validate_exception_info(ex, None)
    assert ex.comps.item == "in"


def test_comps_are_trimmed() -> None:
    ex = exc(["proc.name"], ["  startswith oneof \t"], [])
    validate_exception_info(ex, None)
    assert ex.comps.items[0].item == "startswith oneof"


@pytest.mark.parametrize(
    ("ex", "message"),
    [
        (exc(["proc.name"], ["=", "="], []), "Fields and comps lists must have equal length"),
        (exc(["proc.name"], "=", []), "Fields and comps lists must have equal length"),
        (exc(["proc.name"], ["frobulate"], []),
         "'frobulate' is not a supported comparison operator"),
        (exc(["proc.name"], ["frobulate oneof"], []),
         "'frobulate oneof' is not a supported comparison operator"),
        (exc(["proc.name"], ["in oneof"], []), "'in oneof' is not a supported comparison operator"),
        (exc(["proc.name"], [">= oneof"], []), "'>= oneof' is not a supported comparison operator"),
        (exc(["proc.name"], ["oneof"], []), "'oneof' is not a supported comparison operator"),
        (exc("proc.name", ["in"], []), "Fields and comps must both be strings"),
        (exc("proc.name", "=", []),
         "When fields is a single value, comps must be one of (in, pmatch, intersects) or a "
         "modifier operator (e.g. startswith oneof)"),
        (exc("proc.name", "frobulate oneof", []),
         "When fields is a single value, comps must be one of (in, pmatch, intersects) or a "
         "modifier operator (e.g. startswith oneof)"),
        (exc(["proc.nope"], ["="], []), "'proc.nope' is not a supported filter field"),
        (exc("proc.nope", "in", []), "'proc.nope' is not a supported filter field"),
    ],
)
def test_validation_errors(ex: ExceptionInfo, message: str) -> None:
    with pytest.raises(LoadError) as err:
        validate_exception_info(ex, lambda f: f.startswith(("proc.name", "fd.name")))
    assert err.value.message == message


# --- through the loader -------------------------------------------------------------------------

BASE = """
- rule: test_rule
  desc: test rule
  condition: {cond}
  output: command=%proc.cmdline
  priority: INFO
  exceptions:
"""


def with_exceptions(exceptions: str, cond: str = "evt.type = open") -> str:
    return BASE.format(cond=cond) + exceptions


@pytest.mark.parametrize(
    ("cond", "exceptions", "expected"),
    [
        ("proc.cmdline contains curl or proc.cmdline contains wget",
         "    - name: test_exception\n      fields: [proc.cmdline]\n      comps: [contains]\n"
         "      values:\n        - [curl 127.0.0.1]\n",
         "((proc.cmdline contains curl or proc.cmdline contains wget) and not proc.cmdline "
         "contains \"curl 127.0.0.1\")"),
        ("evt.type = open",
         "    - name: e\n      fields: [proc.name]\n      comps: [=]\n      values:\n"
         "        - [proc.pname]\n",
         "(evt.type = open and not proc.name = proc.pname)"),
        ("evt.type = open",
         "    - name: e\n      fields: [proc.name]\n      comps: [=]\n      values:\n"
         "        - [\"proc.pname \"]\n",
         "(evt.type = open and not proc.name = \"proc.pname \")"),
        ("evt.type = open",
         "    - name: e\n      fields: [proc.name]\n      comps: [=]\n      values:\n"
         "        - [toupper(proc.pname)]\n",
         "(evt.type = open and not proc.name = toupper(proc.pname))"),
        ("evt.type = open",
         "    - name: e\n      fields: [proc.name]\n      comps: [=]\n      values:\n"
         "        - [toupper( proc.pname)]\n",
         "(evt.type = open and not proc.name = \"toupper( proc.pname)\")"),
        ("evt.type = open",
         "    - name: e\n      fields: [tolower(proc.name)]\n      comps: [=]\n      values:\n"
         "        - [test]\n",
         "(evt.type = open and not tolower(proc.name) = test)"),
        ("evt.type = open",
         "    - name: e\n      fields: [\"tolower( proc.name)\"]\n      comps: [=]\n"
         "      values:\n        - [test]\n",
         "(evt.type = open and not tolower(proc.name) = test)"),
        ("evt.type = open",
         "    - name: ex\n      fields: [proc.name]\n      comps: [startswith oneof]\n"
         "      values:\n        - [[sshd, sudo, systemd]]\n",
         "(evt.type = open and not proc.name startswith oneof (sshd, sudo, systemd))"),
        ("evt.type = open",
         "    - name: ex\n      fields: [proc.name, fd.name]\n"
         "      comps: [startswith oneof, startswith]\n      values:\n"
         "        - [[sshd, sudo], /etc/]\n",
         "(evt.type = open and not (proc.name startswith oneof (sshd, sudo) and "
         "fd.name startswith /etc/))"),
        ("evt.type = execve",
         "    - name: ex\n      fields: [proc.name]\n      comps: [= oneof]\n      values:\n"
         "        - [[nmap, masscan, nikto]]\n",
         "(evt.type = execve and not proc.name = oneof (nmap, masscan, nikto))"),
        ("evt.type = open",
         "    - name: ex_single\n      fields: [proc.name]\n"
         "      comps: [\"  startswith oneof  \"]\n      values:\n        - [[sshd, sudo]]\n"
         "    - name: ex_multi\n      fields: [proc.name, fd.name]\n"
         "      comps: [\"  contains  \", \"  startswith anyof  \"]\n      values:\n"
         "        - [agent, [/etc/, /var/]]\n",
         "(evt.type = open and not proc.name startswith oneof (sshd, sudo) and not "
         "(proc.name contains agent and fd.name startswith anyof (/etc/, /var/)))"),
        ("evt.type = open",
         "    - name: ex\n      fields: [proc.name, fd.name, proc.exepath]\n"
         "      comps: [contains, startswith, =]\n      values:\n"
         "        - [agent, /var/log/, /usr/bin/prometheus]\n",
         "(evt.type = open and not (proc.name contains agent and fd.name startswith "
         "/var/log/ and proc.exepath = /usr/bin/prometheus))"),
        ("evt.type = open or evt.type = close",
         "    - name: scalar\n      fields: proc.name\n      values: [cat, \"my app\"]\n"
         "    - name: pm\n      fields: fd.name\n      comps: pmatch\n      values: [/etc, /tmp]\n",
         "((evt.type = open or evt.type = close) and not proc.name in (cat, \"my app\") and not "
         "fd.name pmatch (/etc, /tmp))"),
        ("evt.type = open",
         "    - name: none\n      fields: [proc.name]\n",
         "evt.type = open"),
    ],
)
def test_compiled_conditions(registry, cond: str, exceptions: str, expected: str) -> None:
    t = load(registry, with_exceptions(exceptions, cond))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == expected


def test_exception_with_list_reference(registry) -> None:
    t = load(registry, D("""
        - list: cat_cmdlines
          items: ["cat /etc/x", "cat a"]
    """) + with_exceptions(
        "    - name: e\n      fields: [proc.name, proc.cmdline]\n      comps: [=, in]\n"
        "      values:\n        - [cat, cat_cmdlines]\n"))
    assert t.ok, t.errors
    assert t.compiled("test_rule") == (
        '(evt.type = open and not (proc.name = cat and proc.cmdline in ("cat /etc/x", "cat a")))')
    assert t.rule("test_rule").exception_fields == ["proc.cmdline", "proc.name"]
    assert t.rule("test_rule").exception_names == ["e"]
    assert t.rule("test_rule").exception_operators == ["=", "in"]


def test_rhs_field_warning(registry) -> None:
    t = load(registry, with_exceptions(
        "    - name: e\n      fields: [proc.name]\n      comps: [=]\n      values:\n"
        "        - [proc.pname]\n"))
    assert t.ok
    assert t.warnings == [("LOAD_COMPILE_CONDITION",
                           "'proc.pname' may be a valid field misused as a const string value")]


@pytest.mark.parametrize(
    ("exceptions", "message"),
    [
        ("    - name: e\n      comps: [=]\n", "Item has no mapping for key 'fields'"),
        ("    - name: e\n      fields: ~\n", "Rule exception item must have fields property with "
                                              "a list of fields"),
        ("    - name: e\n      fields: []\n", "Rule exception item must have fields property with "
                                              "a list of fields"),
        ("    - name: e\n      fields: [proc.name, fd.name]\n      comps: [=]\n",
         "Fields and comps lists must have equal length"),
        ("    - name: e\n      fields: [proc.name]\n      comps: [frob]\n",
         "'frob' is not a supported comparison operator"),
        ("    - name: e\n      fields: [proc.nonexistent]\n",
         "'proc.nonexistent' is not a supported filter field"),
        ("    - name: e\n      fields: [ka.user.name]\n",
         "'ka.user.name' is not a supported filter field"),
        ("    - name: e\n      fields: proc.name\n      comps: [in]\n",
         "Fields and comps must both be strings"),
        ("    - name: e\n      fields: proc.name\n      comps: '='\n",
         "When fields is a single value, comps must be one of (in, pmatch, intersects) or a "
         "modifier operator (e.g. startswith oneof)"),
        ("    - name: e\n      fields: [proc.name, fd.name]\n      values: [[a]]\n",
         "Fields and values lists must have equal length"),
        ("    - name: e\n      fields: proc.name\n      values: [[a]]\n",
         "Expected values array to contain a list of strings"),
    ],
)
def test_validation_through_loader(registry, exceptions: str, message: str) -> None:
    t = load(registry, with_exceptions(exceptions))
    assert [m for _, m in t.errors] == [message]


def test_exceptions_are_validated_for_disabled_rules(registry) -> None:
    text = with_exceptions("    - name: e\n      fields: [proc.nonexistent]\n")
    t = load(registry, text.replace("  exceptions:", "  enabled: false\n  exceptions:"))
    assert [m for _, m in t.errors] == ["'proc.nonexistent' is not a supported filter field"]


def test_exception_fields_not_checked_for_unknown_source(registry) -> None:
    text = with_exceptions("    - name: e\n      fields: [nope.nope]\n      comps: [=]\n")
    t = load(registry, text.replace("  exceptions:", "  source: nosuch\n  exceptions:"))
    assert t.ok, t.errors
    assert t.warnings == [("LOAD_UNKNOWN_SOURCE", "Unknown source nosuch, skipping")]
    assert t.loader.rules == []


def test_duplicate_exception_names(registry) -> None:
    t = load(registry, with_exceptions(
        "    - name: test_exception\n      fields: [proc.cmdline]\n      comps: [contains]\n"
        "      values:\n        - [curl 127.0.0.1]\n"
        "    - name: test_exception\n      fields: [proc.cmdline]\n      comps: [endswith]\n"
        "      values:\n        - [curl 127.0.0.1]\n", "proc.cmdline contains curl"))
    assert t.ok, t.errors
    assert t.warnings_of("LOAD_EXCEPTION_NAME_NOT_UNIQUE") == [
        "Multiple definitions of exception 'test_exception' in the same rule"]
    w = next(w for w in t.result.warnings if w.code.value == "LOAD_EXCEPTION_NAME_NOT_UNIQUE")
    assert [(loc.item_type, loc.item_name, loc.line) for loc in w.locations] == [
        ("rules content", "", 1), ("rule", "test_rule", 2), ("exception", "test_exception", 13)]


def test_exception_error_points_into_the_exception(registry) -> None:
    t = load(registry, with_exceptions(
        "    - name: bad\n      fields: [proc.pid]\n      comps: [=]\n      values:\n"
        "        - [notanumber]\n"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION", "notanumber is not a valid number")]
    assert [(loc.item_type, loc.item_name) for loc in t.error.locations] == [
        ("rules content", ""), ("rule", "test_rule"), ("exception", "bad"),
        ("condition expression", "")]
