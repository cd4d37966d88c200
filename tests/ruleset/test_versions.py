"""required_engine_version and required_plugin_versions, with libsinsp's version semantics."""

from __future__ import annotations

import pytest

from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.versions import SinspVersion

from .conftest import load

RULE = """
- rule: test_rule
  desc: test rule description
  condition: evt.type = close
  output: user=%user.name command=%proc.cmdline file=%fd.name
  priority: INFO
  enabled: false
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.26.0", (0, 26, 0, True)),
        ("1.2.3", (1, 2, 3, True)),
        ("0.10.0-rc1", (0, 10, 0, True)),
        (" 0.1.2", (0, 1, 2, True)),
        ("0. 1. 2", (0, 1, 2, True)),
        ("+0.1.2", (0, 1, 2, True)),
        ("0.-1.0", (0, 4294967295, 0, True)),
        ("0.1", (0, 0, 0, False)),
        ("seven", (0, 0, 0, False)),
        ("v0.1.2", (0, 0, 0, False)),
        ("0 .1.2", (0, 0, 0, False)),
        ("", (0, 0, 0, False)),
    ],
)
def test_sinsp_version_parsing(text: str, expected: tuple[int, int, int, bool]) -> None:
    v = SinspVersion.parse(text)
    assert (v.major, v.minor, v.patch, v.valid) == expected


@pytest.mark.parametrize(
    ("have", "want", "ok"),
    [("0.62.0", "0.62.0", True), ("0.62.0", "0.57.0", True), ("0.62.0", "0.62.1", False),
     ("0.62.0", "0.63.0", False), ("1.0.0", "0.62.0", False), ("0.62.0", "x", False),
     ("0.4.1", "0.4.0", True), ("0.10.0", "0.9.9", True)],
)
def test_compatible_with(have: str, want: str, ok: bool) -> None:
    assert SinspVersion.parse(have).compatible_with(SinspVersion.parse(want)) is ok


@pytest.mark.parametrize("version", ["0.26.0", "26", "0.62.0", "62", "'15'", "0x10"])
def test_required_engine_version_accepted(registry, version: str) -> None:
    t = load(registry, f"- required_engine_version: {version}\n" + RULE)
    assert t.ok, t.errors
    assert t.warnings == []


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("seven", "Unable to parse engine version 'seven' as a semver string. Expected "
                  "\"x.y.z\" semver format."),
        ("0.1", "Unable to parse engine version '0.1' as a semver string. Expected \"x.y.z\" "
                "semver format."),
        ("-1", "Unable to parse engine version '-1' as a semver string. Expected \"x.y.z\" "
               "semver format."),
        ("", "Mapping for key 'required_engine_version' is empty"),
        ("[1]", "Value is not a scalar value"),
    ],
)
def test_required_engine_version_invalid(registry, version: str, message: str) -> None:
    t = load(registry, f"- required_engine_version: {version}\n" + RULE)
    assert t.errors == [("LOAD_ERR_YAML_VALIDATE", message)]


@pytest.mark.parametrize(
    ("version", "required"),
    [("0.63.0", "0.63.0"), ("63", "0.63.0"), ("1.0.0", "1.0.0"), ("0.62.1", "0.62.1"),
     ("4294967295", "0.4294967295.0")],
)
def test_required_engine_version_too_new(registry, version: str, required: str) -> None:
    t = load(registry, f"- required_engine_version: {version}\n" + RULE)
    assert t.errors == [("LOAD_ERR_VALIDATE", f"Rules require engine version {required}, but "
                                              "engine version is 0.62.0")]
    assert [(loc.item_type, loc.line, loc.column) for loc in t.error.locations] == [
        ("rules content", 1, 1), ("required_engine_version", 1, 3)]


def test_required_engine_version_is_the_maximum_over_files(registry) -> None:
    t = load(registry, "- required_engine_version: 0.50.0\n- required_engine_version: 10\n",
             "- required_engine_version: 0.57.0\n", "- required_engine_version: 0.26.0\n")
    assert all(r.successful for r in t.results)
    assert t.loader.required_engine_version == "0.57.0"
    assert load(registry, RULE).loader.required_engine_version is None


def test_other_engine_versions(registry) -> None:
    loader = RulesLoader(registry, engine_version="0.63.0")
    result = loader.load_text("- required_engine_version: 0.63.0\n", "r.yaml")
    assert result.successful
    loader = RulesLoader(registry, engine_version="0.61.0")
    result = loader.load_text("- required_engine_version: 62\n", "r.yaml")
    assert result.errors[0].message == ("Rules require engine version 0.62.0, but engine "
                                        "version is 0.61.0")


PLUGINS = """
- required_plugin_versions:
  - name: k8saudit
    version: 0.7.0
    alternatives:
      - name: k8saudit-eks
        version: 0.4.0
      - name: k8saudit-gke
        version: 0.1.0
  - name: json
    version: 0.7.0
"""


def test_plugin_versions_are_kept_with_alternatives(registry) -> None:
    t = load(registry, PLUGINS)
    assert t.ok, t.errors
    reqs = t.loader.required_plugin_versions
    assert [[(r.name, r.version) for r in alts] for alts in reqs] == [
        [("k8saudit", "0.7.0"), ("k8saudit-eks", "0.4.0"), ("k8saudit-gke", "0.1.0")],
        [("json", "0.7.0")],
    ]
    assert t.loader.describe_plugin_versions() == [
        {"name": "k8saudit", "version": "0.7.0",
         "alternatives": [{"name": "k8saudit-eks", "version": "0.4.0"},
                          {"name": "k8saudit-gke", "version": "0.1.0"}]},
        {"name": "json", "version": "0.7.0", "alternatives": []},
    ]


@pytest.mark.parametrize(
    ("loaded", "errors"),
    [
        ({"k8saudit": "0.7.0", "json": "0.7.0"}, []),
        ({"k8saudit": "0.9.1", "json": "0.7.3"}, []),
        ({"k8saudit-gke": "0.1.0", "json": "0.7.0"}, []),
        ({"k8saudit-eks": "0.3.0", "json": "0.7.0"},
         ["Plugin 'k8saudit-eks' version '0.3.0' is not compatible with required plugin "
          "version '0.4.0'"]),
        ({"k8saudit": "1.0.0", "json": "0.7.0"},
         ["Plugin 'k8saudit' version '1.0.0' is not compatible with required plugin version "
          "'0.7.0'"]),
        ({"k8saudit": "latest", "json": "0.7.0"},
         ["Plugin 'k8saudit' has invalid version string 'latest'"]),
        ({"json": "0.7.0"},
         ["Plugin requirement not satisfied, must load one of: k8saudit (>= 0.7.0), "
          "k8saudit-eks (>= 0.4.0), k8saudit-gke (>= 0.1.0)"]),
        ({},
         ["Plugin requirement not satisfied, must load one of: k8saudit (>= 0.7.0), "
          "k8saudit-eks (>= 0.4.0), k8saudit-gke (>= 0.1.0)",
          "Plugin requirement not satisfied, must load one of: json (>= 0.7.0)"]),
    ],
)
def test_check_plugin_requirements(registry, loaded: dict[str, str], errors: list[str]) -> None:
    t = load(registry, PLUGINS)
    assert t.loader.check_plugin_requirements(loaded) == errors


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("- required_plugin_versions: foo\n", "LOAD_ERR_YAML_VALIDATE",
         "Value of required_plugin_versions must be a sequence"),
        ("- required_plugin_versions:\n  - foo\n", "LOAD_ERR_YAML_VALIDATE",
         "Plugin version must be a mapping"),
        ("- required_plugin_versions:\n  - version: 1.0.0\n", "LOAD_ERR_YAML_VALIDATE",
         "Item has no mapping for key 'name'"),
        ("- required_plugin_versions:\n  - name: a\n", "LOAD_ERR_YAML_VALIDATE",
         "Item has no mapping for key 'version'"),
        ("- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n    alternatives: x\n",
         "LOAD_ERR_YAML_VALIDATE", "Value of plugin version alternatives must be a sequence"),
        ("- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n    alternatives: [x]\n",
         "LOAD_ERR_YAML_VALIDATE", "Plugin version alternative must be a mapping"),
        ("- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n    alternatives:\n"
         "      - name: b\n", "LOAD_ERR_YAML_VALIDATE", "Item has no mapping for key 'version'"),
        ("- required_plugin_versions:\n  - name: a\n    version: latest\n", "LOAD_ERR_VALIDATE",
         "Invalid required version 'latest' for plugin 'a'"),
        ("- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n    alternatives:\n"
         "      - name: b\n        version: x\n", "LOAD_ERR_VALIDATE",
         "Invalid required version 'x' for plugin 'b'"),
        ("- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n    alternatives:\n"
         "      - name: a\n        version: 2.0.0\n", "LOAD_ERR_VALIDATE",
         "Defined multiple alternative version requirements for plugin 'a'"),
    ],
)
def test_plugin_version_errors(registry, text: str, code: str, message: str) -> None:
    t = load(registry, text)
    assert t.errors == [(code, message)]


def test_plugin_version_error_context(registry) -> None:
    t = load(registry, "- required_plugin_versions:\n  - name: a\n    version: 1.0.0\n"
             "    alternatives:\n      - name: b\n")
    assert [(loc.item_type, loc.item_name, loc.line, loc.column) for loc in
            t.error.locations] == [
        ("rules content", "", 1, 1), ("required plugin versions", "", 2, 3),
        ("required plugin versions entry", "a", 2, 5),
        ("required plugin versions alternative", "b", 5, 9)]


def test_plugin_requirements_accumulate_across_files(registry) -> None:
    t = load(registry, "- required_plugin_versions:\n  - name: a\n    version: 0.1.0\n",
             "- required_plugin_versions:\n  - name: a\n    version: 0.2.0\n")
    assert t.loader.check_plugin_requirements({"a": "0.1.5"}) == [
        "Plugin 'a' version '0.1.5' is not compatible with required plugin version '0.2.0'"]
