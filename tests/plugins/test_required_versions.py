"""Rules files' required_plugin_versions against the loaded plugins' versions (PluginSet.versions
feeding RulesLoader.check_plugin_requirements), with upstream's messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from falconet.plugins import Catalogue, PluginSet, load_plugins
from falconet.ruleset.loader import RulesLoader

from .conftest import SHARED, config

K8S_RULES = SHARED / "upstream" / "rules" / "k8s_audit_rules.yaml"
BOTH = {"plugins": [{"name": "k8saudit", "library_path": "libk8saudit.so"},
                    {"name": "json", "library_path": "libjson.so"}],
        "load_plugins": ["k8saudit", "json"]}


def requiring(version: str) -> str:
    return f"""
- required_plugin_versions:
    - name: k8saudit
      version: {version}
    - name: json
      version: 0.7.0
- rule: Anonymous request
  desc: anonymous user
  condition: ka.user.name = "system:anonymous"
  output: anonymous request (user=%ka.user.name verb=%ka.verb)
  priority: WARNING
  source: k8s_audit
"""


def check(plugin_set: PluginSet, text: str) -> list[str]:
    loader = RulesLoader(plugin_set.registry)
    result = loader.load_text(text, "k8s_rules.yaml")
    assert result.successful, [e.message for e in result.errors]
    return loader.check_plugin_requirements(plugin_set.versions())


@pytest.fixture
def both(installed: Catalogue, fields_tsv: Path) -> PluginSet:
    return load_plugins(config(BOTH), installed, fields_tsv=fields_tsv)


def test_k8saudit_is_version_0_18_0_for_rules(both: PluginSet) -> None:
    assert both.versions() == {"k8saudit": "0.18.0", "json": "0.7.4"}


def test_a_newer_requirement_fails_with_upstreams_message(both: PluginSet) -> None:
    assert check(both, requiring("0.99.0")) == [
        "Plugin 'k8saudit' version '0.18.0' is not compatible with required plugin version "
        "'0.99.0'"]


def test_the_version_upstreams_rules_require_passes(both: PluginSet) -> None:
    assert check(both, requiring("0.18.0")) == []


def test_without_json_loaded_its_requirement_is_unmet(installed: Catalogue,
                                                      fields_tsv: Path) -> None:
    only_k8s = load_plugins(config({**BOTH, "load_plugins": ["k8saudit"]}), installed,
                            fields_tsv=fields_tsv)
    assert check(only_k8s, requiring("0.18.0")) == [
        "Plugin requirement not satisfied, must load one of: json (>= 0.7.0)"]


def test_upstreams_k8s_audit_rules_load_and_are_satisfied(both: PluginSet) -> None:
    if not K8S_RULES.is_file():
        pytest.skip("needs ../shared/upstream/rules/k8s_audit_rules.yaml")
    assert check(both, K8S_RULES.read_text(encoding="utf-8")) == []
