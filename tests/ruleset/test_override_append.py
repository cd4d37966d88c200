"""append (deprecated), override append/replace and redefinition of lists, macros and rules."""

from __future__ import annotations

import pytest

from .conftest import load

WARNING_APPEND = ("'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') "
                  "under 'override' instead.")
ERROR_OVERRIDE_APPEND = ("Keys 'override' and 'append: true' cannot be used together. Add an "
                         "'append' entry (e.g. 'condition: append') under 'override' instead.")
NO_PREVIOUS_MACRO = ("Macro uses 'append' or 'override.condition: append' but no macro by that "
                     "name already exists")
NO_PREVIOUS_LIST = ("List uses 'append' or 'override.items: append' but no list by that name "
                    "already exists")
NO_PREVIOUS_RULE_APPEND = ("Rule uses 'append' or 'override.<key>: append' but no rule by that "
                           "name already exists")
NO_PREVIOUS_RULE_REPLACE = ("An 'override.<key>: replace' to a rule was requested but no rule by "
                            "that name already exists")

RULE = """
- rule: test_rule
  desc: simple rule
  condition: {cond}
  output: command=%proc.cmdline
  priority: INFO
"""
USE_MACRO = RULE.format(cond="open_simple")
USE_LIST = RULE.format(cond="evt.type = execve and proc.name in (dev_creation_binaries)")

MACRO = "\n- macro: open_simple\n  condition: evt.type in (open,openat)\n"
MACRO_OVERRIDE = "\n- macro: open_simple\n  condition: or evt.type = openat2\n  override:\n" \
                 "    condition: {op}\n"
MACRO_APPEND = "\n- macro: open_simple\n  condition: or evt.type = openat2\n  append: true\n"
LIST = "\n- list: dev_creation_binaries\n  items: [blkid]\n"
LIST_OVERRIDE = ('\n- list: dev_creation_binaries\n  items: ["csi-provisioner", "csi-attacher"]\n'
                 "  override:\n    items: {op}\n")
LIST_APPEND = ('\n- list: dev_creation_binaries\n  items: ["csi-provisioner", "csi-attacher"]\n'
               "  append: true\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MACRO_OVERRIDE.format(op="append") + MACRO + USE_MACRO, NO_PREVIOUS_MACRO),
        (MACRO_APPEND + MACRO + USE_MACRO, NO_PREVIOUS_MACRO),
        (MACRO_OVERRIDE.format(op="replace") + MACRO + USE_MACRO, "evt.type in (open, openat)"),
        (MACRO + MACRO_OVERRIDE.format(op="append") + USE_MACRO,
         "(evt.type in (open, openat) or evt.type = openat2)"),
        (MACRO + MACRO_APPEND + USE_MACRO, "(evt.type in (open, openat) or evt.type = openat2)"),
        (MACRO + MACRO_OVERRIDE.format(op="replace").replace("or evt", "evt") + USE_MACRO,
         "evt.type = openat2"),
        (LIST_OVERRIDE.format(op="append") + LIST + USE_LIST, NO_PREVIOUS_LIST),
        (LIST_APPEND + LIST + USE_LIST, NO_PREVIOUS_LIST),
        (LIST_OVERRIDE.format(op="replace") + LIST + USE_LIST,
         "(evt.type = execve and proc.name in (blkid))"),
        (LIST + LIST_OVERRIDE.format(op="append") + USE_LIST,
         "(evt.type = execve and proc.name in (blkid, csi-provisioner, csi-attacher))"),
        (LIST + LIST_APPEND + USE_LIST,
         "(evt.type = execve and proc.name in (blkid, csi-provisioner, csi-attacher))"),
        (LIST + LIST_OVERRIDE.format(op="replace") + USE_LIST,
         "(evt.type = execve and proc.name in (csi-provisioner, csi-attacher))"),
        (LIST_OVERRIDE.format(op="append").replace("override", "override_written_wrong") + LIST
         + USE_LIST, "(evt.type = execve and proc.name in (blkid))"),
    ],
)
def test_lists_and_macros_before_and_after_definition(registry, text: str, expected: str) -> None:
    t = load(registry, text)
    if expected.startswith(("Macro uses", "List uses")):
        assert t.errors == [("LOAD_ERR_VALIDATE", expected)]
    else:
        assert t.ok, t.errors
        assert t.compiled("test_rule") == expected


def test_macro_append_warns_deprecated(registry) -> None:
    t = load(registry, MACRO + MACRO_APPEND + USE_MACRO)
    assert t.warnings == [("LOAD_DEPRECATED_ITEM", WARNING_APPEND)]
    t = load(registry, MACRO + MACRO_OVERRIDE.format(op="append") + USE_MACRO)
    assert t.warnings == []


RULE_DEF = """
- rule: test_rule
  desc: simple rule
  condition: evt.type in (open,openat)
  output: command=%proc.cmdline
  priority: INFO
"""


@pytest.mark.parametrize(
    ("update", "before_error", "after"),
    [
        ("  condition: and proc.name = cat\n  override:\n    condition: append\n",
         NO_PREVIOUS_RULE_APPEND, "(evt.type in (open, openat) and proc.name = cat)"),
        ("  condition: and proc.name = cat\n  append: true\n",
         NO_PREVIOUS_RULE_APPEND, "(evt.type in (open, openat) and proc.name = cat)"),
        ("  condition: proc.name = cat\n  override:\n    condition: replace\n",
         NO_PREVIOUS_RULE_REPLACE, "proc.name = cat"),
    ],
)
def test_rule_update_before_and_after_definition(registry, update: str, before_error: str,
                                                 after: str) -> None:
    upd = "\n- rule: test_rule\n" + update
    t = load(registry, upd + RULE_DEF)
    assert t.errors == [("LOAD_ERR_VALIDATE", before_error)]
    t = load(registry, RULE_DEF + upd)
    assert t.ok, t.errors
    assert t.compiled("test_rule") == after


LEGIT = """
- rule: legit_rule
  desc: legit rule description
  condition: evt.type=open
  output: user=%user.name command=%proc.cmdline file=%fd.name
  priority: INFO
"""


def test_rule_override_append_all_keys(registry) -> None:
    t = load(registry, LEGIT + """
- rule: legit_rule
  desc: with append
  condition: and proc.name = cat
  output: proc=%proc.name
  tags: [b, a]
  override:
    desc: append
    condition: append
    output: append
    tags: append
""")
    assert t.ok, t.errors
    r = t.rule("legit_rule")
    assert r.condition == "evt.type=open and proc.name = cat"
    assert r.output == "user=%user.name command=%proc.cmdline file=%fd.name proc=%proc.name"
    assert r.desc == "legit rule description with append"
    assert sorted(r.tags) == ["a", "b"]
    assert t.warnings == []


def test_rule_override_replace(registry) -> None:
    t = load(registry, LEGIT + """
- rule: legit_rule
  desc: a replaced legit description
  condition: evt.type = close
  priority: WARNING
  tags: [x]
  enabled: false
  capture: true
  capture_duration: 15000
  warn_evttypes: false
  skip-if-unknown-filter: true
  output: replaced %proc.name
  override:
    desc: replace
    condition: replace
    priority: replace
    tags: replace
    enabled: replace
    capture: replace
    capture_duration: replace
    warn_evttypes: replace
    skip-if-unknown-filter: replace
    output: replace
""")
    assert t.ok, t.errors
    r = t.rule("legit_rule")
    assert (r.condition, r.desc, r.output, r.priority.label) == (
        "evt.type = close", "a replaced legit description", "replaced %proc.name", "Warning")
    assert (sorted(r.tags), r.enabled, r.capture, r.capture_duration, r.warn_evttypes,
            r.skip_if_unknown_filter) == (["x"], False, True, 15000, False, True)


def test_rule_override_append_and_replace_together(registry) -> None:
    t = load(registry, LEGIT + """
- rule: legit_rule
  desc: a replaced legit description
  condition: and proc.name = cat
  priority: WARNING
  override:
    desc: replace
    condition: append
    priority: replace
""")
    assert t.ok, t.errors
    r = t.rule("legit_rule")
    assert (r.condition, r.desc, r.priority.label) == (
        "evt.type=open and proc.name = cat", "a replaced legit description", "Warning")
    assert t.compiled("legit_rule") == "(evt.type = open and proc.name = cat)"


@pytest.mark.parametrize(
    ("update", "message", "last"),
    [
        ("  desc: x\n  condition: and proc.name = cat\n  priority: WARNING\n  override:\n"
         "    desc: replace\n    condition: append\n    priority: append\n",
         "Key 'priority' cannot be appended to, use 'replace' instead", ("overrides", "priority")),
        ("  source: syscall\n  override:\n    source: replace\n", "Key 'source' cannot be replaced",
         ("overrides", "source")),
        ("  condition: x\n  override:\n    condition: merge\n",
         "Invalid override operation for key 'condition': 'merge'. Allowed values are: append "
         "replace ", ("value for", "condition")),
        ("  priority: INFO\n  override:\n    priority: appnd\n",
         "Invalid override operation for key 'priority': 'appnd'. Allowed values are: replace ",
         ("value for", "priority")),
        ("  override:\n    condition:\n",
         "Invalid override operation for key 'condition': 'null'. Allowed values are: append "
         "replace ", ("value for", "condition")),
        ("  desc: an appended incorrect field\n  override:\n    desc: replace\n"
         "    condition: append\n",
         "An append override for 'condition' was specified but 'condition' is not defined",
         ("rule", "legit_rule")),
        ("  desc: x\n  override:\n    desc: replace\n    enabled: replace\n",
         "An replace override for 'enabled' was specified but 'enabled' is not defined",
         ("rule", "legit_rule")),
        ("  desc: x\n  condition: and proc.name = cat\n  priority: WARNING\n  override:\n"
         "    desc: replace\n    condition: append\n",
         "Unexpected key 'priority': no corresponding entry under 'override' is defined.",
         ("overrides", "priority")),
        ("  condition: and proc.name = cat\n  append: true\n  override:\n"
         "    condition: append\n", ERROR_OVERRIDE_APPEND, ("rule", "legit_rule")),
    ],
)
def test_rule_override_errors(registry, update: str, message: str,
                              last: tuple[str, str]) -> None:
    t = load(registry, LEGIT + "\n- rule: legit_rule\n" + update)
    assert t.errors == [("LOAD_ERR_YAML_VALIDATE", message)]
    loc = t.error.locations[-1]
    assert (loc.item_type, loc.item_name) == last


def test_incorrect_override_snippet_shows_the_key(registry) -> None:
    t = load(registry, LEGIT + """
- rule: legit_rule
  desc: an appended incorrect field
  condition: and proc.name = cat
  priority: WARNING
  override:
    desc: replace
    condition: append
    priority: append
""")
    assert t.error.snippet == "    priority: append\n    ^\n"


def test_append_flag_with_override_still_warns(registry) -> None:
    t = load(registry, LEGIT + """
- rule: legit_rule
  condition: and proc.name = cat
  append: true
  override:
    condition: append
""")
    assert t.warnings == [("LOAD_DEPRECATED_ITEM", WARNING_APPEND)]
    assert t.errors == [("LOAD_ERR_YAML_VALIDATE", ERROR_OVERRIDE_APPEND)]


def test_enabled_override(registry) -> None:
    base = LEGIT + "  enabled: false\n"
    t = load(registry, base + """
- rule: legit_rule
  desc: missing enabled key
  condition: and proc.name = cat
  override:
    desc: replace
    condition: append
    enabled: replace
""")
    assert t.errors == [("LOAD_ERR_YAML_VALIDATE", "An replace override for 'enabled' was "
                                                   "specified but 'enabled' is not defined")]
    t = load(registry, base + """
- rule: legit_rule
  desc: correct override
  condition: and proc.name = cat
  enabled: true
  override:
    desc: replace
    condition: append
    enabled: replace
""")
    assert t.ok and t.warnings == []
    assert t.rule("legit_rule").enabled


def test_standalone_enabled_toggles_and_warns(registry) -> None:
    t = load(registry, LEGIT + "  enabled: false\n" + "\n- rule: legit_rule\n  enabled: true\n")
    assert t.ok, t.errors
    assert t.warnings == [("LOAD_DEPRECATED_ITEM",
                           "The standalone 'enabled' key usage is deprecated. The correct "
                           "approach requires also a 'replace' entry under the 'override' key "
                           "(i.e. 'enabled: replace').")]
    assert t.rule("legit_rule").enabled


def test_enabled_is_ignored_by_append(registry) -> None:
    t = load(registry, LEGIT + "  enabled: false\n"
             + "\n- rule: legit_rule\n  condition: and proc.name = cat\n  append: true\n"
             "  enabled: true\n")
    assert t.ok, t.errors
    assert not t.rule("legit_rule").enabled


def test_redefinition_replaces_everything_but_keeps_position(registry) -> None:
    t = load(registry, LEGIT + "  enabled: false\n  tags: [a]\n" + """
- rule: second
  desc: d
  condition: evt.type = close
  output: o
  priority: INFO

- rule: legit_rule
  desc: redefined rule syntax
  condition: proc.name = cat
  output: user=%user.name
  priority: WARNING
""")
    assert t.ok, t.errors
    assert [r.name for r in t.loader.rules] == ["legit_rule", "second"]
    r = t.rule("legit_rule")
    assert (r.enabled, r.tags, r.priority.label, r.desc) == (
        True, frozenset(), "Warning", "redefined rule syntax")
    assert t.compiled("legit_rule") == "proc.name = cat"


def test_append_without_condition_or_exceptions(registry) -> None:
    t = load(registry, LEGIT + "\n- rule: legit_rule\n  append: true\n")
    assert t.errors == [("LOAD_ERR_VALIDATE",
                         "Appended rule must have exceptions or condition property")]
    t = load(registry, LEGIT + "\n- rule: legit_rule\n  append: true\n  exceptions:\n")
    assert t.ok, t.errors


def test_append_concatenates_without_parentheses(registry) -> None:
    t = load(registry, """
- rule: r
  desc: d
  condition: evt.type = open or evt.type = close
  output: o
  priority: INFO

- rule: r
  condition: and proc.name = cat
  append: true
""")
    assert t.ok, t.errors
    assert t.compiled("r") == "(evt.type = open or (evt.type = close and proc.name = cat))"


@pytest.mark.parametrize(
    ("second", "ok"),
    [
        ("  desc: Some desc\n  condition: and 1 = 2\n  output: Some output\n  priority: INFO\n"
         "  source: syscall\n", False),
        ("  desc: Some desc\n  condition: and 1 = 2\n  output: Some output\n  priority: INFO\n"
         "  source: syscall\n  append: true\n", False),
        ("  condition: 1 = 2\n  override:\n    condition: replace\n  source: syscall\n", False),
        ("  desc: Some desc\n  condition: ka.verb = PUT\n  output: Some output\n"
         "  priority: INFO\n", False),
        ("  condition: and ka.verb = PUT\n  append: true\n", True),
        ("  condition: and ka.verb = PUT\n  source:\n  append: true\n", True),
        ("  condition: and ka.verb = PUT\n  source: ''\n  append: true\n", True),
        ("  desc: new desc\n  source: syscall\n  override:\n    desc: replace\n", True),
    ],
)
def test_redefinition_across_sources(registry, second: str, ok: bool) -> None:
    t = load(registry, """
- rule: LD_PRELOAD trick
  desc: Some desc
  condition: ka.verb = GET
  output: some output
  priority: INFO
  source: k8s_audit

- rule: LD_PRELOAD trick
""" + second)
    if ok:
        assert t.ok, t.errors
    else:
        assert t.errors == [("LOAD_ERR_VALIDATE",
                             "Rule has been re-defined with a different source")]


def test_exception_append_and_override(registry) -> None:
    base = """
- rule: test_rule
  desc: test rule
  condition: proc.cmdline contains curl
  output: command=%proc.cmdline
  priority: INFO
  exceptions:
    - name: test_exception
      fields: [proc.cmdline]
      comps: [contains]
      values:
        - [curl 127.0.0.1]
"""
    t = load(registry, base + """
- rule: test_rule
  exceptions:
    - name: test_exception
      values:
        - [curl 1.1.1.1]
    - name: new_one
      fields: proc.name
      values: [a, b]
  override:
    exceptions: append
""")
    assert t.ok, t.errors
    assert t.compiled("test_rule") == (
        '(proc.cmdline contains curl and not (proc.cmdline contains "curl 127.0.0.1" or '
        'proc.cmdline contains "curl 1.1.1.1") and not proc.name in (a, b))')
    for update, message in [
        ("    - name: test_exception\n      fields: [proc.name]\n      values: [[a]]\n",
         "Can not append exception fields to existing exception, only values"),
        ("    - name: test_exception\n      comps: [=]\n      values: [[a]]\n",
         "Can not append exception comps to existing exception, only values"),
        ("    - name: other\n      values: [[a]]\n",
         "Rule exception must have fields property with a list of fields"),
        ("    - name: other\n      fields: [proc.name]\n",
         "Rule exception must have values property with a list of values"),
    ]:
        t = load(registry, base + "\n- rule: test_rule\n  exceptions:\n" + update
                 + "  append: true\n")
        assert t.errors == [("LOAD_ERR_VALIDATE", message)], update


@pytest.mark.parametrize("flag", ["  append: true\n", "  override:\n    exceptions: append\n"])
def test_exception_append_with_no_values(registry, flag: str) -> None:
    t = load(registry, """
- rule: test_rule
  desc: test rule
  condition: proc.cmdline contains curl
  output: command=%proc.cmdline
  priority: INFO
  exceptions:
    - name: test_exception
      fields: [proc.cmdline]
      comps: [contains]
      values:
        - [curl 127.0.0.1]

- rule: test_rule
  exceptions:
    - name: test_exception
      value: curl 1.1.1.1
""" + flag)
    assert t.ok, t.errors
    assert ("LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values") in t.warnings


def test_exception_replace_requires_fields_and_skips_validation(registry) -> None:
    base = """
- rule: test_rule
  desc: test rule description
  condition: evt.type = close
  output: user=%user.name
  priority: INFO
  exceptions:
    - name: test_exception
      fields: proc.name
      comps: in
      values: ["cat"]
"""
    t = load(registry, base + """
- rule: test_rule
  exceptions:
    - name: test_exception
      values: [echo]
  override:
    exceptions: append

- rule: test_rule
  exceptions:
    - name: test_exception
      values: [id]
  override:
    exceptions: replace
""")
    assert t.errors == [("LOAD_ERR_YAML_VALIDATE", "Item has no mapping for key 'fields'")]
    assert t.warnings == []
    # replaced exceptions are not validated: no default comps, no field check at collect time
    t = load(registry, base + """
- rule: test_rule
  exceptions:
    - name: replaced
      fields: proc.name
      values: [id]
  override:
    exceptions: replace
""")
    assert t.errors and t.error.code.value == "LOAD_ERR_COMPILE_CONDITION"
    t = load(registry, base + """
- rule: test_rule
  exceptions:
    - name: replaced
      fields: proc.name
      comps: in
      values: [id, sh]
  override:
    exceptions: replace
""")
    assert t.ok, t.errors
    assert t.compiled("test_rule") == "(evt.type = close and not proc.name in (id, sh))"
