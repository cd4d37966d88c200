"""The reader: YAML structure, item kinds, per-key decoding, with upstream's exact messages and
positions (Location: 1-based line/column, 0-based offset)."""

from __future__ import annotations

import pytest

from falconet.ruleset.yaml_source import decode_bool, decode_uint32

from .conftest import load, rule_with

VALIDATE = "LOAD_ERR_YAML_VALIDATE"


def where(msg) -> list[tuple[str, str, int, int]]:
    return [(loc.item_type, loc.item_name, loc.line, loc.column) for loc in msg.locations]


# --- document structure -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\n", "Rules content is not yaml"),
        ("42\n", "Rules content is not yaml"),
        ("a: b\n", "Rules content is not yaml array of objects"),
        ("{a: b}\n", "Rules content is not yaml array of objects"),
        ("- list: a\n  items: []\n---\nfoo: bar\n", "Rules content is not yaml array of objects"),
    ],
)
def test_top_level_must_be_a_sequence(registry, text: str, message: str) -> None:
    t = load(registry, text)
    assert t.errors == [(VALIDATE, message)]
    assert where(t.error) == [("rules content", "", 1, 1)]


@pytest.mark.parametrize("text", ["- [a]\n", "- a\n", "- - x\n"])
def test_items_must_be_maps(registry, text: str) -> None:
    t = load(registry, text)
    assert t.errors == [(VALIDATE, "Unexpected element type. Each element should be a yaml "
                                   "associative array.")]
    assert where(t.error) == [("rules content", "", 1, 1), ("rules content item", "", 1, 3)]


def test_yaml_parse_error_has_position(registry) -> None:
    t = load(registry, "- list: a\n  items: [x]\n- a: b: c\n")
    assert t.errors == [("LOAD_ERR_YAML_PARSE",
                         "yaml-cpp: error at line 3, column 7: illegal map value")]
    assert where(t.error) == [("rules content", "", 1, 1), ("value for", "", 3, 7)]
    assert t.error.snippet == "- a: b: c\n      ^\n"
    assert t.loader.lists == []  # nothing of a file that does not parse is used


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this : is : not : yaml", "yaml-cpp: error at line 1, column 11: illegal map value"),
        ("- a: [b\n", "yaml-cpp: error at line 2, column 1: end of sequence flow not found"),
        ("- a: {b: c\n", "yaml-cpp: error at line 2, column 1: end of map flow not found"),
        ("- a: b\n - c\n", "yaml-cpp: error at line 2, column 2: end of sequence not found"),
        ("- a: *nope\n", "yaml-cpp: error at line 1, column 6: found undefined alias"),
    ],
)
def test_yaml_parse_error_messages(registry, text: str, message: str) -> None:
    t = load(registry, text)
    assert t.errors == [("LOAD_ERR_YAML_PARSE", message)]
    assert [loc.item_type for loc in t.error.locations] == ["rules content", "value for"]


def test_yaml_error_in_a_later_document_stops_the_whole_file(registry) -> None:
    t = load(registry, "- list: a\n  items: [x]\n---\n- [unclosed\n")
    assert t.result.errors[0].code.value == "LOAD_ERR_YAML_PARSE"
    assert t.loader.collector.lists == {}


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n---\n", "~\n", "[]\n"])
def test_empty_content_is_ok(registry, text: str) -> None:
    t = load(registry, text)
    assert t.ok and t.warnings == []


def test_null_items_are_skipped_and_documents_accumulate(registry) -> None:
    t = load(registry, "-\n- ~\n- list: a\n  items: [x]\n---\n- null\n- list: b\n  items: [a]\n")
    assert t.ok, t.errors
    lists = {li.name: li for li in t.loader.lists}
    assert lists["b"].items_compiled == ["x"]
    assert t.warnings == [("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro")]
    assert t.result.warnings[0].locations[-1].item_name == "b"


def test_unknown_top_level_item(registry) -> None:
    t = load(registry, "- list: a\n  items: []\n- foo: bar\n  baz: 1\n")
    assert t.ok
    assert t.warnings[0] == ("LOAD_UNKNOWN_ITEM", "Unknown top level item")
    assert where(t.result.warnings[0]) == [("rules content", "", 1, 1),
                                           ("rules content item", "", 3, 3)]


def test_item_kind_is_chosen_by_key_precedence(registry) -> None:
    t = load(registry, "- macro: m\n  list: l\n  items: [a]\n")
    assert t.ok, t.errors
    assert [li.name for li in t.loader.lists] == ["l"]
    assert ("LOAD_UNKNOWN_KEY", "Unknown key 'macro'. The key will be ignored.") in t.warnings


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("- list: my_list\n  items: [cat]\n  typo_field: x\n", "typo_field"),
        ("- list: my_list\n  items: [cat]\n  priority: INFO\n", "priority"),
        ("- list: my_list\n  items: [cat]\n  override_written_wrong:\n    items: append\n",
         "override_written_wrong"),
        ("- required_engine_version: 10\n  extra: 1\n", "extra"),
        ("- required_plugin_versions: []\n  extra: 1\n", "extra"),
    ],
)
def test_unknown_keys_warn(registry, text: str, key: str) -> None:
    t = load(registry, text)
    assert t.ok, t.errors
    assert ("LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.") in t.warnings


def test_unknown_key_in_rule_and_macro(registry) -> None:
    t = load(registry, """
        - macro: my_macro
          condition: evt.type = close
          typo_field: some_value
        - rule: test_rule
          desc: test rule description
          condition: my_macro
          output: user=%user.name
          priority: INFO
          typo_field2: some_value
    """)
    assert t.ok, t.errors
    assert t.warnings == [
        ("LOAD_UNKNOWN_KEY", "Unknown key 'typo_field'. The key will be ignored."),
        ("LOAD_UNKNOWN_KEY", "Unknown key 'typo_field2'. The key will be ignored."),
    ]


# --- per-key decoding -------------------------------------------------------------------------

BASE = """\
- rule: r
  desc: d
  condition: evt.type = open
  output: o
  priority: INFO
"""


def replace_key(key: str, value: str) -> str:
    """BASE with one key's line replaced (value is the raw YAML after the colon)."""
    lines = BASE.splitlines()
    out = [f"  {key}:{value}" if ln.startswith(f"  {key}:") else ln for ln in lines]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("text", "message", "last"),
    [
        (BASE.replace("  output: o\n", ""), "Item has no mapping for key 'output'",
         ("rule", "r", 1, 3)),
        (BASE.replace("  desc: d\n", ""), "Item has no mapping for key 'desc'",
         ("rule", "r", 1, 3)),
        (BASE.replace("  priority: INFO\n", ""), "Item has no mapping for key 'priority'",
         ("rule", "r", 1, 3)),
        (replace_key("condition", ""), "Mapping for key 'condition' is empty", ("rule", "r", 1, 3)),
        (replace_key("condition", " ~"), "Mapping for key 'condition' is empty",
         ("rule", "r", 1, 3)),
        (replace_key("condition", " [a, b]"), "Value is not a scalar value",
         ("value for", "condition", 3, 14)),
        (replace_key("output", " {a: b}"), "Value is not a scalar value",
         ("value for", "output", 4, 11)),
        (replace_key("desc", ' ""'), "Value must be non-empty", ("value for", "desc", 2, 9)),
        (replace_key("priority", " LOUD"), "Invalid priority", ("rule priority", "", 5, 13)),
        (replace_key("priority", ' "info "'), "Invalid priority", ("rule priority", "", 5, 13)),
        (BASE + "  enabled: maybe\n", "Can't decode YAML scalar value",
         ("value for", "enabled", 6, 12)),
        (BASE + "  enabled: tRUE\n", "Can't decode YAML scalar value",
         ("value for", "enabled", 6, 12)),
        (BASE + '  capture_duration: "not_a_number"\n', "Can't decode YAML scalar value",
         ("value for", "capture_duration", 6, 21)),
        (BASE + "  capture_duration: -1\n", "Can't decode YAML scalar value",
         ("value for", "capture_duration", 6, 21)),
        (BASE + "  capture_duration: 4294967296\n", "Can't decode YAML scalar value",
         ("value for", "capture_duration", 6, 21)),
        (BASE + "  warn_evttypes: 1\n", "Can't decode YAML scalar value",
         ("value for", "warn_evttypes", 6, 18)),
        (BASE + "  source:\n", "Mapping for key 'source' is empty", ("rule", "r", 1, 3)),
        (BASE + '  source: ""\n', "Value must be non-empty", ("value for", "source", 6, 11)),
        (BASE + "  tags: foo\n", "Value is not a sequence", ("value for", "tags", 6, 9)),
        (BASE + "  tags:\n", "Value is not a sequence", ("value for", "tags", 6, 8)),
        (BASE + "  tags: [a, [b]]\n", "sequence value is not scalar", ("list item", "", 6, 13)),
        (BASE + "  tags: [a, ~]\n", "sequence value is not scalar", ("list item", "", 6, 13)),
        ("- rule:\n  desc: d\n", "Mapping for key 'rule' is empty", ("rule", "", 1, 3)),
        ("- rule: [r]\n", "Value is not a scalar value", ("value for", "rule", 1, 9)),
        ("- rule: r\n  tags: [a]\n", "Item has no mapping for key 'enabled'", ("rule", "r", 1, 3)),
        ("- list: l\n", "Item has no mapping for key 'items'", ("list", "l", 1, 3)),
        ("- list: l\n  items: a\n", "Value is not a sequence", ("value for", "items", 2, 10)),
        ("- list: l\n  items: [[a]]\n", "sequence value is not scalar",
         ("list item", "", 2, 11)),
        ("- macro: m\n", "Item has no mapping for key 'condition'", ("macro", "m", 1, 3)),
        ("- macro: m\n  condition: ''\n", "Value must be non-empty",
         ("value for", "condition", 2, 14)),
        ("- list: ''\n  items: []\n", "Value must be non-empty", ("value for", "list", 1, 9)),
    ],
)
def test_key_decoding_errors(registry, text: str, message: str,
                             last: tuple[str, str, int, int]) -> None:
    t = load(registry, text)
    assert t.errors == [(VALIDATE, message)]
    assert where(t.error)[-1] == last


def test_value_error_has_the_value_context(registry) -> None:
    t = load(registry, replace_key("condition", " [a, b]"))
    assert where(t.error) == [("rules content", "", 1, 1), ("rule", "r", 1, 3),
                              ("value for", "condition", 3, 14)]
    assert t.error.snippet == "  condition: [a, b]\n             ^\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [("y", True), ("Y", True), ("yes", True), ("Yes", True), ("YES", True), ("true", True),
     ("True", True), ("TRUE", True), ("on", True), ("ON", True), ("n", False), ("no", False),
     ("No", False), ("false", False), ("False", False), ("off", False), ("OFF", False),
     ("tRUE", None), ("1", None), ("", None), ("yess", None), ("t", None)],
)
def test_yaml_cpp_bool_decoding(text: str, value: bool | None) -> None:
    assert decode_bool(text) is value


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("10000", 10000), ("0x10", 16), ("0X1f", 31), ("017", 15), ("+5", 5),
     ("5 ", 5), ("4294967295", 4294967295), ("4294967296", None), ("-1", None), (" 5", None),
     ("5s", None), ("08", None), ("1.5", None), ("", None)],
)
def test_yaml_cpp_uint32_decoding(text: str, value: int | None) -> None:
    assert decode_uint32(text) == value


def test_rule_key_values_are_decoded_like_yaml_cpp(registry) -> None:
    t = load(registry, BASE + '  enabled: "no"\n  capture: "yes"\n  capture_duration: 0x10\n'
             "  warn_evttypes: Off\n  skip-if-unknown-filter: ON\n  tags: [b, a, b, 1]\n")
    assert t.ok, t.errors
    r = t.rule("r")
    assert (r.enabled, r.capture, r.capture_duration, r.warn_evttypes,
            r.skip_if_unknown_filter) == (False, True, 16, False, True)
    assert sorted(r.tags) == ["1", "a", "b"]


@pytest.mark.parametrize(
    ("priority", "label"),
    [("INFO", "Informational"), ("info", "Informational"), ("Informational", "Informational"),
     ("emergency", "Emergency"), ("ALERT", "Alert"), ("Critical", "Critical"),
     ("error", "Error"), ("WARNING", "Warning"), ("notice", "Notice"), ("DEBUG", "Debug")],
)
def test_priorities(registry, priority: str, label: str) -> None:
    t = load(registry, replace_key("priority", " " + priority))
    assert t.ok, t.errors
    assert t.rule("r").priority.label == label


def test_output_is_trimmed_condition_is_not(registry) -> None:
    t = load(registry, """
        - rule: r
          desc: d
          condition: >
            evt.type = open
          output: |
            text %proc.name
          priority: INFO
    """)
    assert t.ok, t.errors
    r = t.rule("r")
    assert r.output == "text %proc.name"
    assert r.condition == "evt.type = open\n"


def test_rule_names_with_spaces_and_regex_characters(registry) -> None:
    t = load(registry, rule_with("evt.type = open").replace("test_rule", "Open [x]* (y)+ $z?"))
    assert t.ok, t.errors
    assert t.loader.rules[0].name == "Open [x]* (y)+ $z?"


def test_first_error_stops_the_file(registry) -> None:
    t = load(registry, """
        - list: before
          items: [a]
        - list: broken
        - list: after
          items: [b]
    """)
    assert t.errors == [(VALIDATE, "Item has no mapping for key 'items'")]
    assert list(t.loader.collector.lists) == ["before"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "  exceptions: foo\n", "Rule exceptions must be a sequence"),
        (BASE + "  exceptions:\n    - foo\n", "Rule exception must be a mapping"),
        (BASE + "  exceptions:\n    -\n", "Rule exception must be a mapping"),
        (BASE + "  exceptions:\n    - fields: [proc.name]\n", "Item has no mapping for key 'name'"),
        (BASE + "  exceptions:\n    - name: e\n", "Item has no mapping for key 'fields'"),
        (BASE + "  exceptions:\n    - name: e\n      fields: ''\n", "Value must be non-empty"),
        (BASE + "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: x\n",
         "Rule exception values must be a sequence"),
        (BASE + "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [['']]\n",
         "Value must be non-empty"),
    ],
)
def test_exception_shape_errors(registry, text: str, message: str) -> None:
    t = load(registry, text)
    assert t.errors == [(VALIDATE, message)]


def test_exception_contexts(registry) -> None:
    t = load(registry, BASE + "  exceptions:\n    - name: e\n      fields: [proc.name]\n"
             "      values: x\n")
    assert where(t.error) == [
        ("rules content", "", 1, 1), ("rule", "r", 1, 3), ("exception", "e", 7, 7),
        ("exception values", "", 9, 15),
    ]


def test_empty_exceptions_key_is_allowed(registry) -> None:
    t = load(registry, BASE + "  exceptions:\n")
    assert t.ok, t.errors
    assert t.compiled("r") == "evt.type = open"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- list: l\n  items: []\n  [a]: b\n",
         "yaml-cpp: error at line 3, column 3: bad conversion"),
        ("- rule: r\n  override:\n    [condition]: append\n",
         "yaml-cpp: error at line 3, column 5: bad conversion"),
        ("- rule: r\n  override: [condition]\n",
         "invalid node; this may result from using a map iterator as a sequence iterator, or "
         "vice-versa"),
    ],
)
def test_non_scalar_keys(registry, text: str, message: str) -> None:
    t = load(registry, text)
    assert t.errors == [("LOAD_ERR_VALIDATE", message)]
    assert where(t.error) == [("rules content", "", 1, 1)]
