"""Runtime ruleset: enable/disable selection, priority floor, rule_matching, and bucketing."""

from __future__ import annotations

import pytest

from falconet.config import RuleSelection, load_config
from falconet.event import SchemaEvent
from falconet.ruleset.model import Priority
from falconet.ruleset.ruleset import matches_wildcard

from .conftest import make_ruleset

THREE_RULES = """
- rule: open shadow
  desc: d
  condition: evt.type = open and fd.name = /etc/shadow
  output: shadow opened by %proc.name
  priority: WARNING
  tags: [filesystem, credentials]
- rule: any open
  desc: d
  condition: evt.type in (open, openat)
  output: open %fd.name
  priority: INFO
  tags: [filesystem]
- rule: shell spawned
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: shell %proc.name
  priority: NOTICE
  tags: [process]
"""


def names(rules):
    return [r.name for r in rules]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "anything", True),
        ("**", "anything", True),
        ("*", "", True),
        ("", "", True),
        ("no star", "no star", True),
        ("hello*world", "hello new world", True),
        ("hello*world*", "hello new world yes", True),
        ("*hello*world", "come on hello this world", True),
        ("*hello*****world", "come on hello this world", True),
        ("no star", "", False),
        ("", "no star", False),
        ("star", "no star", False),
        ("hello*world", "hello new thing", False),
        ("hello*world", "hello new world yes", False),
        ("*hello*world", "come on hello this world yes", False),
        ("*hello*world*", "come on hello this yes", False),
        ("*a", "aba", False),  # no backtracking: the first 'a' is taken
        ("a*b", "ab", True),
        ("ab*", "a", False),
    ],
)
def test_matches_wildcard_like_falco(pattern: str, text: str, expected: bool) -> None:
    assert matches_wildcard(pattern, text) is expected


def test_first_match_returns_rules_in_file_order(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES)
    ev = SchemaEvent("syscall", {"evt.type": "open", "fd.name": "/etc/shadow"})
    assert names(rs.evaluate(ev)) == ["open shadow"]


def test_rule_matching_all_returns_every_match(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES, first_match=False)
    ev = SchemaEvent("syscall", {"evt.type": "open", "fd.name": "/etc/shadow"})
    assert names(rs.evaluate(ev)) == ["open shadow", "any open"]


def test_event_type_buckets_skip_rules_of_other_types(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES, first_match=False)
    ev = SchemaEvent("syscall", {"evt.type": "execve", "proc.name": "bash"})
    assert names(rs.evaluate(ev)) == ["shell spawned"]
    ev = SchemaEvent("syscall", {"evt.type": "connect", "proc.name": "bash"})
    assert rs.evaluate(ev) == []


def test_min_priority_rules_are_never_enabled(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES, first_match=False, min_priority=Priority.NOTICE)
    assert names(rs.enabled_rules) == ["open shadow", "shell spawned"]
    assert rs.enable(rule="any open") == 1  # matched, but below the floor: stays disabled
    assert not rs.is_enabled("any open")


def test_selection_disable_by_tag_then_enable_by_wildcard(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES, first_match=False)
    rs.apply_selection([RuleSelection("disable", tag="filesystem"),
                        RuleSelection("enable", rule="open*")])
    assert names(rs.enabled_rules) == ["shell spawned", "open shadow"]
    ev = SchemaEvent("syscall", {"evt.type": "open", "fd.name": "/etc/shadow"})
    assert names(rs.evaluate(ev)) == ["open shadow"]


def test_selection_disable_everything_then_enable_one(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES)
    rs.apply_selection([RuleSelection("disable", rule="*"),
                        RuleSelection("enable", rule="shell spawned")])
    assert names(rs.enabled_rules) == ["shell spawned"]


def test_legacy_substring_selection(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES)
    assert rs.disable(substring="open") == 2
    assert names(rs.enabled_rules) == ["shell spawned"]


def test_selection_from_falco_yaml(registry) -> None:
    config = load_config(None, ["rules[]={disable: {tag: filesystem}}",
                                "rules[]={enable: {rule: any open}}"], env={})
    rs = make_ruleset(registry, THREE_RULES)
    rs.apply_selection(config.rules_selection)
    assert names(rs.enabled_rules) == ["shell spawned", "any open"]


def test_disabled_rule_in_file_can_be_enabled_by_selection(registry) -> None:
    rs = make_ruleset(registry, """
    - rule: quiet
      desc: d
      condition: evt.type = open
      output: o
      priority: INFO
      enabled: false
    """)
    assert rs.enabled_rules == []
    rs.apply_selection([RuleSelection("enable", rule="quiet")])
    assert names(rs.evaluate(SchemaEvent("syscall", {"evt.type": "open"}))) == ["quiet"]


PLUGIN_RULES = """
- rule: create pod
  desc: d
  condition: ka.verb = create and ka.target.resource = pods
  output: o
  priority: INFO
  source: k8s_audit
- rule: delete or patch
  desc: d
  condition: ka.verb in (delete, patch)
  output: o
  priority: INFO
  source: k8s_audit
- rule: not a get
  desc: d
  condition: not ka.verb = get
  output: o
  priority: INFO
  source: k8s_audit
- rule: anonymous
  desc: d
  condition: ka.user.name = "system:anonymous"
  output: o
  priority: INFO
  source: k8s_audit
"""


def test_plugin_source_is_indexed_by_the_most_pinning_field(registry) -> None:
    rs = make_ruleset(registry, PLUGIN_RULES, first_match=False)
    summary = rs.index_summary()["k8s_audit"]
    assert summary["index_field"] == "ka.verb"
    rs.evaluate(SchemaEvent("k8s_audit", {"ka.verb": "list"}))
    # "list" is named by no rule: its bucket holds the rules that can match any verb
    assert rs.index_summary()["k8s_audit"]["max_bucket"] == 2


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ka.verb": "create", "ka.target.resource": "pods"}, ["create pod", "not a get"]),
        ({"ka.verb": "patch"}, ["delete or patch", "not a get"]),
        ({"ka.verb": "get", "ka.user.name": "system:anonymous"}, ["anonymous"]),
        ({"ka.verb": "list"}, ["not a get"]),
        # absent ka.verb: `not ka.verb = get` is true (absent field => comparison false)
        ({"ka.user.name": "system:anonymous"}, ["not a get", "anonymous"]),
    ],
)
def test_plugin_buckets_give_the_same_verdicts_as_evaluating_everything(
    registry, fields, expected
) -> None:
    rs = make_ruleset(registry, PLUGIN_RULES, first_match=False)
    assert names(rs.evaluate(SchemaEvent("k8s_audit", fields))) == expected


def test_events_of_a_source_without_rules_match_nothing(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES)
    assert rs.evaluate(SchemaEvent("aws_cloudtrail", {"ct.name": "x"})) == []


def test_bucket_whose_rules_never_read_the_index_field(registry) -> None:
    rs = make_ruleset(registry, """
- rule: create pod
  desc: d
  condition: ka.verb = create and ka.target.resource = pods
  output: o
  priority: INFO
  source: k8s_audit
- rule: only user
  desc: d
  condition: ka.user.name = bob
  output: o
  priority: INFO
  source: k8s_audit
""", first_match=False)
    assert rs.index_summary()["k8s_audit"]["index_field"] == "ka.verb"
    ev = SchemaEvent("k8s_audit", {"ka.verb": "watch", "ka.user.name": "bob"})
    assert names(rs.evaluate(ev)) == ["only user"]


def test_evaluate_batch_returns_only_matching_events(registry) -> None:
    rs = make_ruleset(registry, THREE_RULES, first_match=False)
    events = [SchemaEvent("syscall", {"evt.type": t, "fd.name": "/etc/shadow", "proc.name": "x"})
              for t in ("open", "close", "execve", "openat")]
    got = [(e.fields["evt.type"], names(r)) for e, r in rs.evaluate_batch("syscall", events)]
    assert got == [("open", ["open shadow", "any open"]), ("openat", ["any open"])]
    assert rs.evaluate_batch("k8s_audit", events) == []


class CursorBatch(list):
    """A batch read through a cursor, the protocol ``SyscallBatch`` follows: the index moves one
    event object along the batch and asks ``keep`` for a real event only where a rule matched."""

    def __init__(self, events: list[SchemaEvent]) -> None:
        super().__init__(events)
        self.kept = 0

    def cursor(self):
        cur = SchemaEvent(self[0].source)
        for ev in list.__iter__(self):
            cur.fields, cur.evt_type, cur.num = ev.fields, ev.evt_type, ev.num
            yield cur

    def keep(self, event: SchemaEvent) -> SchemaEvent:
        self.kept += 1
        return SchemaEvent(event.source, event.fields, evt_type=event.evt_type, num=event.num)


NO_INDEX_RULES = """
- rule: user bo
  desc: d
  condition: ka.user.name startswith bo
  output: o
  priority: INFO
  source: k8s_audit
"""


@pytest.mark.parametrize(("rules", "source", "index_field", "events"), [
    (THREE_RULES, "syscall", "evt.type",
     [{"evt.type": t, "fd.name": "/etc/shadow", "proc.name": p}
      for t in ("open", "close", "execve", "openat") for p in ("bash", "cat")]),
    (PLUGIN_RULES, "k8s_audit", "ka.verb",
     [{"ka.verb": v, "ka.target.resource": "pods", "ka.user.name": u}
      for v in ("create", "get", "patch", "list") for u in ("system:anonymous", "bob")]),
    (NO_INDEX_RULES, "k8s_audit", None, [{"ka.user.name": u} for u in ("bob", "alice", "bo")]),
])
def test_a_cursor_batch_gets_the_verdicts_of_its_events_one_by_one(
        registry, rules, source, index_field, events) -> None:
    rs = make_ruleset(registry, rules, first_match=False)
    batch = CursorBatch([SchemaEvent(source, f, num=n) for n, f in enumerate(events, 1)])
    expected = [(ev.num, names(hits)) for ev in list(batch) if (hits := rs.evaluate(ev))]
    assert rs.index_summary()[source]["index_field"] == index_field
    got = rs.evaluate_batch(source, batch)
    assert [(ev.num, names(hits)) for ev, hits in got] == expected and expected
    assert batch.kept == len(got) == len({id(ev) for ev, _hits in got})
