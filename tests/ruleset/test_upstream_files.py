"""Falco's own rules files load with zero errors and exactly the warnings upstream gives (none).

Load time is measured by ``bench/rule_eval.py``, not asserted here.
"""

from __future__ import annotations

from collections import Counter

import pytest

from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.report import summary_string

from .conftest import UPSTREAM_RULES

# file -> (rules, macros, lists, required engine version, required plugins with alternatives)
FILES = {
    "falco_rules.yaml": (25, 87, 49, "0.57.0", [[("container", "0.4.0")]]),
    "falco-incubating_rules.yaml": (31, 82, 54, "0.57.0", [[("container", "0.4.0")]]),
    "falco-sandbox_rules.yaml": (37, 183, 60, "0.57.0", [[("container", "0.4.0")]]),
    "k8s_audit_rules.yaml": (48, 45, 18, "0.15.0", None),
    "aws_cloudtrail_rules.yaml": (22, 0, 1, "0.10.0", None),
}


def _text(name: str) -> str:
    path = UPSTREAM_RULES / name
    if not path.is_file():
        pytest.skip(f"needs ../shared/upstream/rules/{name} (upstream rules file)")
    return path.read_text()


@pytest.mark.parametrize("name", list(FILES))
def test_upstream_file_loads_clean(registry, name: str) -> None:
    text = _text(name)
    source = "k8s_audit" if name.startswith("k8s") else (
        "aws_cloudtrail" if name.startswith("aws") else "syscall")
    loader = RulesLoader(registry)
    result = loader.load_text(text, name)
    assert result.errors == [], summary_string(result)
    assert Counter(w.code.value for w in result.warnings) == Counter(), summary_string(result)
    rules, macros, lists, engine, plugins = FILES[name]
    assert (len(loader.rules), len(loader.macros), len(loader.lists)) == (rules, macros, lists)
    assert loader.required_engine_version == engine
    if plugins is not None:
        assert [[(r.name, r.version) for r in alts]
                for alts in loader.required_plugin_versions] == plugins
    assert {r.source for r in loader.rules} == {source}
    assert all(m.used for m in loader.macros) and all(li.used for li in loader.lists)


def test_k8s_audit_plugin_requirements(registry) -> None:
    text = _text("k8s_audit_rules.yaml")
    loader = RulesLoader(registry)
    assert loader.load_text(text, "k8s_audit_rules.yaml").successful
    reqs = loader.required_plugin_versions
    assert [alts[0].name for alts in reqs] == ["k8saudit", "json"]
    assert [a.name for a in reqs[0]][1:], "k8saudit lists alternatives (eks, gke...)"
    assert loader.check_plugin_requirements({"k8saudit": "0.18.0", "json": "0.7.0"}) == []
    assert loader.check_plugin_requirements({"json": "0.7.0"})[0].startswith(
        "Plugin requirement not satisfied, must load one of: k8saudit (>= ")


def test_all_five_in_one_loader(registry) -> None:
    texts = {name: _text(name) for name in FILES}
    loader = RulesLoader(registry)
    for name, text in texts.items():
        result = loader.load_text(text, name)
        assert result.successful, summary_string(result)
        assert result.warnings == [], summary_string(result)
    assert len(loader.rules) == sum(f[0] for f in FILES.values())
    assert loader.required_engine_version == "0.57.0"
    # evaluation order is definition order across files
    assert loader.rules[0].name == "Directory traversal monitored file read"
    assert [r.index for r in loader.rules] == sorted(r.index for r in loader.rules)


@pytest.mark.parametrize(
    ("rule", "compiled", "events"),
    [
        ("Remove Bulk Data from Disk",
         "(evt.type in (execve, execveat) and proc.name in (shred, mkfs, mke2fs) and not "
         "evt.num = 0)", ["execve", "execveat"]),
        ("PTRACE anti-debug attempt",
         "(evt.type = ptrace and evt.arg.request contains PTRACE_TRACEME and not proc.name in "
         "(<NA>, N/A))", ["ptrace"]),
        ("Packet socket created in container",
         "(evt.type = socket and container.id != host and evt.arg.domain contains AF_PACKET and "
         "not proc.name in ())", ["socket"]),
        ("Debugfs Launched in Privileged Container",
         "(evt.type in (execve, execveat) and container.id != host and container.privileged = "
         "true and proc.name = debugfs)", ["execve", "execveat"]),
    ],
)
def test_upstream_compiled_conditions(registry, rule: str, compiled: str,
                                      events: list[str]) -> None:
    loader = RulesLoader(registry)
    assert loader.load_text(_text("falco_rules.yaml"), "falco_rules.yaml").successful
    r = next(r for r in loader.rules if r.name == rule)
    assert r.condition_compiled == compiled
    assert sorted(r.event_types or ()) == events
