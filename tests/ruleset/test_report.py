"""Load results rendered as Falco renders them: snippets, summary, verbose text, JSON."""

from __future__ import annotations

import json

import pytest

from falconet.ruleset.context import Ctx, ctx_snippet, snippet
from falconet.ruleset.report import (
    locations_as_string,
    result_as_json,
    result_as_text,
    summary_string,
    verbose_string,
)
from falconet.ruleset.results import ErrorCode, LoadMessage, LoadResult, Location, WarningCode

from .conftest import load


@pytest.mark.parametrize(
    ("content", "pos", "expected"),
    [
        ("abc\ndef\nghi\n", 5, "def\n ^\n"),
        ("abc\ndef\nghi\n", 4, "def\n^\n"),
        ("abc\ndef\nghi\n", 7, "def\n  ^\n"),  # on a newline: the character before it
        ("abc\ndef\nghi\n", 100, "ghi\n  ^\n"),  # past the end: the last character
        ("ab", 0, "ab\n^\n"),
        ("", 3, "<No context available>\n"),
        # upstream's size_t arithmetic when the position is a leading newline
        ("\n- list: x\n", 0, "...ist:...\n"),
        ("\n\n", 1, "...\n"),
        ("x" * 200, 100, "..." + "x" * 155 + "...\n" + " " * 80 + "^\n"),
        ("y" * 50 + "x" * 150, 10, "y" * 50 + "x" * 38 + "...\n" + " " * 10 + "^\n"),
    ],
)
def test_snippet(content: str, pos: int, expected: str) -> None:
    assert snippet(content, pos) == expected


def test_snippet_of_a_missing_file() -> None:
    assert ctx_snippet(Ctx.root("gone.yaml"), {}) == "<No context for file + gone.yaml>\n"


def test_condition_snippet_uses_the_condition_text() -> None:
    ctx = Ctx.root("f").in_condition("a = 1 and b", 10, 3, 20, 40)
    assert ctx_snippet(ctx, {"f": "unrelated"}) == "a = 1 and b\n          ^\n"
    assert ctx.last.name == '"a = 1 and b"'
    long = Ctx.root("f").in_condition("evt.type = open and\nproc.name = x", 0, 1, 1, 0)
    assert long.last.name == '"evt.type = open a..."'
    assert Ctx.root("f").in_condition("a\nb\r", 0, 1, 1, 0).last.name == '"a b "'


def test_locations_rendering() -> None:
    locs = [Location("f.yaml", 1, 1, 0, "rules content", ""),
            Location("f.yaml", 3, 3, 20, "rule", "my rule"),
            Location('"x = 1"', 4, 14, 40, "condition expression", "")]
    assert locations_as_string(locs) == (
        "In rules content: (f.yaml:0:0)\n"
        "    rule 'my rule': (f.yaml:2:2)\n"
        '    condition expression: ("x = 1":4:14)\n')


def _result() -> LoadResult:
    res = LoadResult("f.yaml")
    root = [Location("f.yaml", 1, 1, 0, "rules content", "")]
    res.errors.append(LoadMessage(ErrorCode.LOAD_ERR_VALIDATE, "boom", root, "x\n^\n"))
    res.warnings.append(LoadMessage(WarningCode.LOAD_UNUSED_LIST, "unused", root, "y\n^\n"))
    res.warnings.append(LoadMessage(WarningCode.LOAD_DEPRECATED_ITEM, "dep", root, "z\n^\n",
                                    "evt.dir"))
    return res


def test_summary_forms() -> None:
    assert summary_string(LoadResult("f.yaml")) == "f.yaml: Ok"
    assert summary_string(LoadResult("")) == "Ok"
    ok_warn = LoadResult("f.yaml")
    ok_warn.warnings = _result().warnings
    assert summary_string(ok_warn) == (
        "f.yaml: Ok, with warnings\n"
        " 2 warnings: [LOAD_UNUSED_LIST (Unused list) LOAD_DEPRECATED_ITEM (Used deprecated "
        "item: field 'evt.dir')]")
    assert summary_string(_result()) == (
        "f.yaml: Invalid\n"
        " 1 errors: [LOAD_ERR_VALIDATE (Error validating rule/macro/list/exception objects)]\n"
        " 2 warnings: [LOAD_UNUSED_LIST (Unused list) LOAD_DEPRECATED_ITEM (Used deprecated "
        "item: field 'evt.dir')]")
    assert result_as_text(_result()) == summary_string(_result())


def test_verbose_form() -> None:
    assert verbose_string(_result()) == (
        "f.yaml: Invalid\n"
        "1 Errors:\n"
        "In rules content: (f.yaml:0:0)\n"
        "------\nx\n^\n------\n"
        "LOAD_ERR_VALIDATE (Error validating rule/macro/list/exception objects): boom\n"
        "\n2 Warnings:\n"
        "In rules content: (f.yaml:0:0)\n"
        "------\ny\n^\n------\n"
        "LOAD_UNUSED_LIST (Unused list): unused\n"
        "In rules content: (f.yaml:0:0)\n"
        "------\nz\n^\n------\n"
        "LOAD_DEPRECATED_ITEM (Used deprecated item: field 'evt.dir'): dep\n")
    assert result_as_text(_result(), verbose=True) == verbose_string(_result())
    assert verbose_string(LoadResult("f.yaml")) == "f.yaml: Ok"


def test_schema_status_rendering() -> None:
    res = LoadResult("f.yaml", schema_warnings=["failed for /0: bad"])
    assert summary_string(res) == "f.yaml: Ok\n 1 schema warnings: [failed for /0: bad]"
    assert verbose_string(res) == ("f.yaml: Ok\n1 Schema warnings:\n------\nfailed for /0: bad\n"
                                   "------\n")
    assert result_as_json(res)["schema_valid"] is False
    ok = LoadResult("f.yaml", schema_warnings=["ok"])
    assert summary_string(ok) == "f.yaml: Ok"
    assert result_as_json(ok)["schema_valid"] is True
    assert result_as_json(ok)["schema_warnings"] == []
    assert "schema_valid" not in result_as_json(LoadResult("f.yaml"))


def test_json_form() -> None:
    doc = result_as_json(_result())
    assert list(doc) == ["errors", "name", "successful", "warnings"]
    assert doc["name"] == "f.yaml" and doc["successful"] is False
    assert doc["errors"] == [{
        "code": "LOAD_ERR_VALIDATE",
        "codedesc": "Error validating rule/macro/list/exception objects",
        "context": {"locations": [{"item_name": "", "item_type": "rules content",
                                   "position": {"column": 0, "line": 0, "name": "f.yaml",
                                                "offset": 0}}],
                    "snippet": "x\n^\n"},
        "message": "boom",
    }]
    unused, dep = doc["warnings"]
    assert unused["codedesc"] == ("A list is defined in the rules content but is not used by any "
                                  "other list, macro, or rule.")
    assert "deprecated_field" not in unused
    assert dep["deprecated_field"] == "evt.dir"
    assert list(dep) == ["code", "codedesc", "context", "deprecated_field", "message"]
    json.dumps(doc)


def test_real_load_rendering(registry) -> None:
    t = load(registry, """\
        - list: unused
          items: [a]
        - rule: r
          desc: d
          condition: proc.name = cat
          output: o %proc.name
          priority: INFO
          foo: bar
    """)
    assert verbose_string(t.result) == (
        "rules.yaml: Ok, with warnings\n"
        "3 Warnings:\n"
        "In rules content: (rules.yaml:0:0)\n"
        "    rule 'r': (rules.yaml:2:2)\n"
        "------\n- rule: r\n  ^\n------\n"
        "LOAD_UNKNOWN_KEY (Unknown key in item definition): Unknown key 'foo'. The key will be "
        "ignored.\n"
        "In rules content: (rules.yaml:0:0)\n"
        "    rule 'r': (rules.yaml:2:2)\n"
        "------\n- rule: r\n  ^\n------\n"
        "LOAD_NO_EVTTYPE (Condition has no event-type restriction): Rule matches too many "
        "evt.type values. This has a significant performance penalty.\n"
        "In rules content: (rules.yaml:0:0)\n"
        "    list 'unused': (rules.yaml:0:2)\n"
        "------\n- list: unused\n  ^\n------\n"
        "LOAD_UNUSED_LIST (Unused list): List not referred to by any other rule/macro\n")
    pos = result_as_json(t.result)["warnings"][0]["context"]["locations"][1]["position"]
    assert pos == {"column": 2, "line": 2, "name": "rules.yaml", "offset": 30}


def test_condition_error_rendering(registry) -> None:
    t = load(registry, """\
        - list: bins
          items: [a, b]
        - rule: r
          desc: d
          condition: >
            evt.type = open and
            proc.name in (bins) and proc.pid = abc
          output: o
          priority: INFO
    """)
    assert verbose_string(t.result) == (
        "rules.yaml: Invalid\n"
        "1 Errors:\n"
        "In rules content: (rules.yaml:0:0)\n"
        "    rule 'r': (rules.yaml:2:2)\n"
        "    rule condition: (rules.yaml:4:13)\n"
        '    condition expression: ("evt.type = open a...":7:40)\n'
        "------\n"
        "evt.type = open and proc.name in (bins) and proc.pid = abc\n"
        "                                                       ^\n"
        "------\n"
        "LOAD_ERR_COMPILE_CONDITION (Error compiling condition): abc is not a valid number\n")
    loc = result_as_json(t.result)["errors"][0]["context"]["locations"][-1]["position"]
    assert loc["line"] == 7 and loc["column"] == 40
    content = t.loader.contents["rules.yaml"]
    assert content[loc["offset"]:loc["offset"] + 3] == "abc"


@pytest.mark.parametrize(
    ("condition", "token", "line", "col"),
    [
        ("evt.type = open and (proc.name = x", None, 3, 48),
        ("evt.type = open and proc.name = cat and ) ", ")", 3, 54),
        ('"evt.type = open and proc.name = cat and ) "', ")", 3, 55),
        ("'evt.type = open and proc.name = cat and ) '", ")", 3, 55),
    ],
)
def test_parse_error_positions(registry, condition: str, token: str | None, line: int,
                               col: int) -> None:
    t = load(registry, f"""\
        - rule: r
          desc: d
          condition: {condition}
          output: o
          priority: INFO
    """)
    assert t.error.code.value == "LOAD_ERR_COMPILE_CONDITION"
    loc = t.error.locations[-1]
    assert (loc.item_type, loc.line, loc.column) == ("condition expression", line, col)
    if token is not None:
        assert t.loader.contents["rules.yaml"][loc.offset] == token


def test_parse_error_position_in_a_literal_block(registry) -> None:
    t = load(registry, """\
        - rule: r
          desc: d
          condition: |
            evt.type = open
              and proc.name = cat
              and )
          output: o
          priority: INFO
    """)
    loc = t.error.locations[-1]
    assert (loc.line, loc.column) == (6, 11)
    assert t.loader.contents["rules.yaml"][loc.offset] == ")"


def test_error_in_appended_condition_points_into_the_appending_item(registry) -> None:
    t = load(registry, """\
        - rule: r
          desc: d
          condition: evt.type = open
          output: o
          priority: INFO
    """, """\
        - rule: r
          condition: and proc.pid = abc
          override:
            condition: append
    """)
    err = t.results[1].errors[0]
    assert err.message == "abc is not a valid number"
    assert [(loc.item_type, loc.name, loc.line, loc.column) for loc in err.locations] == [
        ("rules content", "rules2.yaml", 1, 1), ("rule", "rules2.yaml", 1, 3),
        ("rule condition", "rules2.yaml", 2, 14),
        ("condition expression", '"evt.type = open a..."', 2, 29)]


def test_error_from_a_macro_points_at_its_reference(registry) -> None:
    t = load(registry, """\
        - macro: bad
          condition: proc.pid = abc
        - rule: r
          desc: d
          condition: evt.type = open and bad
          output: o
          priority: INFO
    """)
    assert t.error.message == "abc is not a valid number"
    loc = t.error.locations[-1]
    assert (loc.line, loc.column) == (5, 34)
    assert t.error.snippet == "evt.type = open and bad\n                    ^\n"
