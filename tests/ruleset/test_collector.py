"""Collecting across items and files: evaluation order, sources, skipping, recompilation, and
the rule-level compile checks (outputs, unknown fields, event types, deprecated items)."""

from __future__ import annotations

import pytest

from falconet.ruleset.collector import Collector
from falconet.ruleset.context import Ctx
from falconet.ruleset.versions import SinspVersion

from .conftest import D, load, rule_with


def rule(name: str, cond: str = "evt.type = open", extra: str = "") -> str:
    return (f"\n- rule: {name}\n  desc: d\n  condition: {cond}\n  output: o %proc.name\n"
            f"  priority: INFO\n{extra}")


def k8s_rule(cond: str) -> str:
    return rule_with(cond, "source: k8s_audit\n").replace("%proc.cmdline", "%ka.user.name")


def test_index_and_visibility_counters() -> None:
    from falconet.ruleset.collector import ListInfo

    col = Collector(SinspVersion.parse("0.62.0"))
    ctx = Ctx.root("x")
    col.define_list(ListInfo(ctx, "a", ["1"]))
    col.define_list(ListInfo(ctx, "b", ["2"]))
    col.append_list(ListInfo(ctx, "a", ["3"]))
    col.define_list(ListInfo(ctx, "a", ["4"]))
    a, b = col.lists["a"], col.lists["b"]
    assert (a.index, a.visibility, a.items) == (0, 3, ["4"])
    assert (b.index, b.visibility) == (1, 1)
    assert list(col.lists) == ["a", "b"]


def test_rules_keep_the_order_of_their_first_definition(registry) -> None:
    t = load(registry, rule("one") + rule("two") + rule("three"),
             rule("two", "evt.type = close") + rule("four"))
    assert [r.name for r in t.loader.rules] == ["one", "two", "three", "four"]
    assert [r.index for r in t.loader.rules] == [0, 1, 2, 4]
    assert t.compiled("two") == "evt.type = close"


def test_later_file_appends_to_earlier_items(registry) -> None:
    t = load(registry, D("""
        - list: bins
          items: [a]
        - macro: m
          condition: proc.name in (bins)
    """) + rule("r", "evt.type = open and m"), """
        - list: bins
          items: [b]
          override:
            items: append
        - rule: r
          condition: and proc.pid = 1
          override:
            condition: append
    """)
    assert [r.successful for r in t.results] == [True, True]
    assert t.compiled("r") == "(evt.type = open and proc.name in (a, b) and proc.pid = 1)"


def test_failed_load_keeps_the_previous_output(registry) -> None:
    t = load(registry, rule("r"), rule("bad", "evt.type = open and undefined_macro"))
    assert t.results[0].successful and not t.results[1].successful
    assert [r.name for r in t.loader.rules] == ["r"]


def test_warnings_about_earlier_files_show_up_again(registry) -> None:
    t = load(registry, "- list: unused\n  items: [a]\n", rule("r"))
    assert t.results[0].warnings[0].message == "List not referred to by any other rule/macro"
    assert [w.code.value for w in t.results[1].warnings] == ["LOAD_UNUSED_LIST"]
    assert t.results[1].warnings[0].locations[0].name == "rules.yaml"


def test_unknown_source_is_skipped_with_a_warning(registry) -> None:
    t = load(registry, rule("r", "nope.field = 1", "  source: nosuchsource\n") + rule("ok"))
    assert t.ok, t.errors
    assert t.warnings == [("LOAD_UNKNOWN_SOURCE", "Unknown source nosuchsource, skipping")]
    assert [r.name for r in t.loader.rules] == ["ok"]


def test_unknown_source_rules_do_not_use_lists_or_macros(registry) -> None:
    t = load(registry, "- list: l\n  items: [a]\n- macro: m\n  condition: x.y in (l)\n"
             + rule("r", "m", "  source: nosuchsource\n"))
    assert t.warning_codes() == ["LOAD_UNKNOWN_SOURCE", "LOAD_UNUSED_MACRO"]


@pytest.mark.parametrize(
    ("source", "cond", "output"),
    [
        ("k8s_audit", "ka.verb = GET and ka.target.resource = pods", "%ka.user.name"),
        ("aws_cloudtrail", "ct.name = ConsoleLogin and ct.error exists", "%ct.user"),
    ],
)
def test_plugin_sources(registry, source: str, cond: str, output: str) -> None:
    t = load(registry, f"""
        - rule: r
          desc: d
          condition: {cond}
          output: user={output}
          priority: WARNING
          source: {source}
    """)
    assert t.ok, t.errors
    assert t.warnings == []
    r = t.rule("r")
    assert (r.source, r.event_types) == (source, None)


def test_field_of_another_source_is_an_error(registry) -> None:
    t = load(registry, rule_with("ka.verb = GET"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION",
                         "filter_check called with nonexistent field ka.verb")]


def test_disabled_rules_are_compiled(registry) -> None:
    t = load(registry, rule("r", "proc.nonexistent = 1", "  enabled: false\n"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION",
                         "filter_check called with nonexistent field proc.nonexistent")]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("bad %proc.nonexistent", "unknown filter"),
        ("trailing %", "invalid formatting syntax: formatting cannot end with a %"),
    ],
)
def test_output_errors(registry, output: str, message: str) -> None:
    t = load(registry, rule_with("evt.type = open").replace("command=%proc.cmdline", output))
    assert t.error.code.value == "LOAD_ERR_COMPILE_OUTPUT"
    assert message in t.error.message
    assert [loc.item_type for loc in t.error.locations] == ["rules content", "rule",
                                                            "rule output"]


def test_output_is_checked_before_the_condition(registry) -> None:
    t = load(registry, rule_with("proc.nonexistent = 1").replace("%proc.cmdline", "%proc.nope"))
    assert t.error.code.value == "LOAD_ERR_COMPILE_OUTPUT"


@pytest.mark.parametrize(
    ("cond", "output"),
    [("proc.nonexistent = 1", "%proc.name"), ("evt.type = open", "%proc.nonexistent")],
)
def test_skip_if_unknown_filter(registry, cond: str, output: str) -> None:
    text = rule("skipped", cond, "  skip-if-unknown-filter: true\n").replace("%proc.name",
                                                                              output)
    t = load(registry, text + rule("kept"))
    assert t.ok, t.errors
    assert t.warning_codes() == ["LOAD_UNKNOWN_FILTER"]
    assert t.result.warnings[0].message.startswith(("filter_check called with nonexistent field",
                                                     "unknown filter: "))
    assert [r.name for r in t.loader.rules] == ["kept"]


def test_skip_if_unknown_filter_on_unknown_event_type(registry) -> None:
    t = load(registry, rule("r", "evt.type = foo", "  skip-if-unknown-filter: true\n"))
    assert t.warnings == [("LOAD_UNKNOWN_FILTER", "unknown event type foo")]
    assert [loc.item_type for loc in t.result.warnings[0].locations] == [
        "rules content", "rule", "rule condition", "condition expression"]
    t = load(registry, rule("r", "evt.type = foo"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION", "unknown event type foo")]


def test_skip_if_unknown_filter_does_not_hide_other_errors(registry) -> None:
    t = load(registry, rule("r", "proc.pid = abc", "  skip-if-unknown-filter: true\n"))
    assert t.errors == [("LOAD_ERR_COMPILE_CONDITION", "abc is not a valid number")]


def test_container_info_is_deprecated_and_dropped(registry) -> None:
    t = load(registry, rule_with("evt.type = open").replace(
        "command=%proc.cmdline", "cmd=%proc.cmdline %container.info"))
    assert t.ok, t.errors
    assert t.warnings == [("LOAD_DEPRECATED_ITEM",
                           "%container.info is deprecated and no more useful, and will be dropped "
                           "by Falco 1.0.0. The container plugin will automatically add required "
                           "fields to the output message.")]
    assert t.rule("test_rule").output == "cmd=%proc.cmdline "


def test_deprecated_fields(dep_registry) -> None:
    registry = dep_registry
    t = load(registry, rule_with("evt.type = close").replace(
        "command=%proc.cmdline", "dir=%evt.dir lat=%evt.latency.ns"))
    assert t.ok, t.errors
    assert t.warnings == [
        ("LOAD_DEPRECATED_ITEM",
         "usage of deprecated field 'evt.dir' has been detected in the rule output"),
        ("LOAD_DEPRECATED_ITEM",
         "usage of deprecated field 'evt.latency' has been detected in the rule output"),
        ("LOAD_DEPRECATED_ITEM",
         "usage of deprecated field 'evt.latency.ns' has been detected in the rule output"),
    ]
    assert [w.deprecated_field for w in t.result.warnings] == ["evt.dir", "evt.latency",
                                                                "evt.latency.ns"]
    t = load(registry, rule_with("evt.type = close and evt.dir = < and evt.latency > 0"))
    assert [(w.code.value, w.deprecated_field) for w in t.result.warnings] == [
        ("LOAD_DEPRECATED_ITEM", "evt.dir"), ("LOAD_DEPRECATED_ITEM", "evt.latency")]
    assert t.result.warnings[0].message.startswith("due to the drop of enter events, 'evt.dir")


def test_deprecated_field_snippet_is_the_condition(dep_registry) -> None:
    t = load(dep_registry, """
        - macro: spawned_process
          condition: evt.type in (execve, execveat) and evt.dir = <

        - rule: test_rule
          desc: test rule
          condition: >
            spawned_process and proc.name = bash
          output: command=%proc.cmdline
          priority: INFO
    """)
    (w,) = t.result.warnings
    assert w.code.value == "LOAD_DEPRECATED_ITEM"
    assert w.snippet == "spawned_process and proc.name = bash\n^\n"
    loc = w.locations[-1]
    assert (loc.item_type, loc.name, loc.line, loc.column) == (
        "condition expression", '"spawned_process a..."', 8, 5)


@pytest.mark.parametrize(
    ("cond", "na"),
    [
        ('ka.user.name = "<NA>"', True),
        ("ka.user.name != <NA>", True),
        ("ka.user.name in (a, <NA>)", True),
        ("tolower(ka.user.name) = <NA>", True),
        ("ka.user.name contains <NA>", False),
        ("ka.user.name = x", False),
        ("ka.verb = GET and not ka.user.name intersects (<NA>)", True),
    ],
)
def test_unsafe_na_check(registry, cond: str, na: bool) -> None:
    t = load(registry, k8s_rule(cond))
    assert t.ok, t.errors
    assert (("LOAD_UNSAFE_NA_CHECK", "") in t.warnings) is na


@pytest.mark.parametrize(
    ("cond", "extra", "warns"),
    [
        ("evt.type = open", "", False),
        ("proc.name = cat", "", True),
        ("proc.name = cat", "warn_evttypes: false\n", False),
        ("evt.type != open", "", True),
        ("evt.type = open and evt.type = close", "", True),
        ("evt.type in (open, openat, openat2)", "", False),
        ("evt.type = open or proc.name = cat", "", True),
    ],
)
def test_no_evttype_warning(registry, cond: str, extra: str, warns: bool) -> None:
    t = load(registry, rule_with(cond, extra))
    assert t.ok, t.errors
    expected = [("LOAD_NO_EVTTYPE", "Rule matches too many evt.type values. This has a "
                                    "significant performance penalty.")] if warns else []
    assert t.warnings == expected


def test_no_evttype_only_for_syscall_rules(registry) -> None:
    t = load(registry, k8s_rule("ka.verb = GET"))
    assert t.ok and t.warnings == []


def test_never_true_warns_in_0_44(registry) -> None:
    t = load(registry, "- macro: never_true\n  condition: (evt.num=0)\n"
             + rule_with("never_true"))
    assert t.warning_codes() == ["LOAD_NO_EVTTYPE"]


def test_capture_defaults(registry) -> None:
    t = load(registry, rule("r"))
    r = t.rule("r")
    assert (r.capture, r.capture_duration, r.enabled, r.warn_evttypes,
            r.skip_if_unknown_filter, r.source) == (False, 0, True, True, False, "syscall")
