"""A rules file is data: hostile rule text loads as plain values or is rejected, never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from falconet.event import SchemaEvent
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset


def hostile_rules(marker: Path) -> str:
    payload = f"__import__('os').system('touch {marker}')"
    return f"""
- list: "evil_list"
  items: ["{payload}", "x')+__import__('os').system('touch {marker}')#"]
- macro: evil_macro
  condition: proc.name in (evil_list)
- rule: "x\\"); __import__('os').system('touch {marker}'); (\\""
  desc: "{payload}"
  condition: >
    evil_macro or proc.cmdline = "{{0.__class__}}" or proc.exe contains "\\\\n\\\\x41"
    or fd.name glob "*{{}}*" or proc.name regex "(a|b)*c"
  output: "%proc.name {payload} %"
  priority: WARNING
"""


def test_list_item_that_breaks_the_condition_is_a_load_error(registry) -> None:
    text = """
- list: quoted
  items: ['a"b']
- rule: r
  desc: d
  condition: proc.name in (quoted)
  output: o
  priority: INFO
"""
    result = RulesLoader(registry).load_text(text, "q.yaml")
    (error,) = result.errors  # lists are substituted as text, as upstream: the quote breaks it
    assert error.code == "LOAD_ERR_COMPILE_CONDITION"


def test_hostile_text_is_only_ever_compared(registry, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    loader = RulesLoader(registry)
    text = hostile_rules(marker).replace(" %\"", "\"")
    result = loader.load_text(text, "hostile.yaml")
    assert result.successful, [e.message for e in result.errors]
    ruleset = Ruleset(loader.rules, registry, first_match=False)
    (rule,) = ruleset.enabled_rules
    assert rule.name == f"x\"); __import__('os').system('touch {marker}'); (\""
    payload = f"__import__('os').system('touch {marker}')"
    for name in (payload, "{0.__class__}", "zzz"):
        for field in ("proc.name", "proc.cmdline"):
            ruleset.evaluate(SchemaEvent("syscall", {"evt.type": "open", field: name}))
    assert ruleset.evaluate(SchemaEvent("syscall", {"proc.name": payload})) == [rule]
    assert ruleset.evaluate(SchemaEvent("syscall", {"proc.cmdline": "{0.__class__}"})) == [rule]
    assert ruleset.evaluate(SchemaEvent("syscall", {"proc.name": "zzz"})) == []
    assert not marker.exists()


def test_broken_output_with_trailing_percent_is_rejected(registry, tmp_path: Path) -> None:
    loader = RulesLoader(registry)
    result = loader.load_text(hostile_rules(tmp_path / "pwned"), "hostile.yaml")
    assert not result.successful
    (error,) = result.errors
    assert error.code == "LOAD_ERR_COMPILE_OUTPUT"
    assert error.message == "invalid formatting syntax: formatting cannot end with a %"


@pytest.mark.parametrize("depth", [50, 2000])
def test_deeply_nested_conditions_do_not_crash(registry, depth: int) -> None:
    condition = "(" * depth + "proc.name = a" + ")" * depth
    text = f"""
- rule: deep
  desc: d
  condition: {condition}
  output: o
  priority: INFO
"""
    loader = RulesLoader(registry)
    result = loader.load_text(text, "deep.yaml")
    if depth < 100:
        assert result.successful
        ruleset = Ruleset(loader.rules, registry)
        assert [r.name for r in ruleset.evaluate(SchemaEvent("syscall", {"proc.name": "a"}))] == [
            "deep"]
    else:
        (error,) = result.errors
        assert error.code == "LOAD_ERR_COMPILE_CONDITION"
        assert "max depth" in error.message
