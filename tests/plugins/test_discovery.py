"""discover(): the built-ins come through entry points like any plugin; duplicates and broken
providers are reported by name, and a broken provider does not hide the others."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falconet.api import Plugin
from falconet.hookspecs import hookimpl
from falconet.plugins import Catalogue, PluginError, discover


def module(name: str, body: Callable[[Callable[[Any], None]], None]) -> types.ModuleType:
    """A module object implementing the hook with ``body(register)``."""
    mod = types.ModuleType(name)

    @hookimpl
    def falconet_register_plugins(register: Callable[[Any], None]) -> None:
        body(register)

    mod.falconet_register_plugins = falconet_register_plugins  # type: ignore[attr-defined]
    return mod


def registers(*plugins: Any) -> Callable[[Callable[[Any], None]], None]:
    def body(register: Callable[[Any], None]) -> None:
        for p in plugins:
            register(p)

    return body


def test_builtins_are_found_through_entry_points(installed: Catalogue) -> None:
    assert installed["json"].name == "json"
    assert installed["json"].falco_version == "0.7.4"
    assert installed["json"].capabilities == ["Field Extraction"]
    assert installed.origins["json"] == "falconet (falconet.builtin_plugins)"
    k8s = installed["k8saudit"]
    assert k8s.falco_version == "0.18.0"
    assert k8s.contact == "github.com/falcosecurity/plugins"
    assert k8s.description == "Read Kubernetes Audit Events and monitor Kubernetes Clusters"
    assert installed.origins["k8saudit"] == "falconet-k8s-audit (falconet_k8s_audit.plugin)"
    assert k8s.init_schema is not None
    assert sorted(k8s.init_schema["properties"]) == [
        "maxEventSize", "sslCertificate", "sslClientCA", "sslKey", "useAsync",
        "webhookMaxBatchSize", "webhookMaxQueuedEvents", "webhookReadTimeout", "webhookToken",
        "webhookTokenFile"]
    assert installed.failures == {}


def test_k8saudit_brings_the_ka_field_table(installed: Catalogue) -> None:
    fields = installed["k8saudit"].fields
    assert fields is not None
    (table,) = list(fields())
    assert table.source == "k8s_audit"
    assert sum(1 for spec in table if spec.name.startswith("ka.")) == 100


def test_each_discovery_is_fresh() -> None:
    first = discover(entry_points=False, modules=[module("m1", registers(Plugin("a", "1.0.0")))])
    second = discover(entry_points=False)
    assert list(first) == ["a"]
    assert list(second) == []


def test_modules_register_plugins_like_entry_points() -> None:
    found = discover(entry_points=False, modules=[
        module("first_mod", registers(Plugin("a", "1.0.0"), Plugin("b", "2.0.0"))),
        module("second_mod", registers(Plugin("c", "3.0.0"))),
    ])
    assert sorted(found) == ["a", "b", "c"]
    assert found.origins["a"] == "first_mod"
    assert found.origins["c"] == "second_mod"


def test_two_plugins_with_one_name_name_both_providers() -> None:
    with pytest.raises(PluginError) as err:
        discover(entry_points=False, modules=[
            module("vendor_one.plugin", registers(Plugin("dup", "1.0.0"))),
            module("vendor_two.plugin", registers(Plugin("dup", "1.1.0"))),
        ])
    message = str(err.value)
    assert message.startswith("plugin name 'dup' is registered twice: by ")
    assert "vendor_one.plugin" in message
    assert "vendor_two.plugin" in message


def test_a_plugin_named_like_a_builtin_is_refused(installed: Catalogue) -> None:
    with pytest.raises(PluginError, match=r"plugin name 'json' is registered twice: by "
                       r"falconet \(falconet.builtin_plugins\) and by my_json"):
        discover(modules=[module("my_json", registers(Plugin("json", "9.0.0")))])


def test_registering_something_else_is_refused() -> None:
    with pytest.raises(PluginError) as err:
        discover(entry_points=False, modules=[module("bad_mod", registers({"name": "x"}))])
    assert str(err.value) == "bad_mod registered 'dict', which is not a falconet.api.Plugin"


def test_a_failing_hook_is_recorded_and_leaves_the_others() -> None:
    def explode(register: Callable[[Any], None]) -> None:
        raise RuntimeError("no config")

    found = discover(entry_points=False, modules=[
        module("broken_mod", explode), module("good_mod", registers(Plugin("ok", "1.0.0")))])
    assert list(found) == ["ok"]
    assert found.failures == {"broken_mod": "RuntimeError: no config"}


def _dist_info(root: Path, dist: str, entry_points: str) -> None:
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_an_entry_point_that_fails_to_import_leaves_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "falconet-broken", "[falconet]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover()
    assert {"json", "k8saudit"} <= set(found)
    assert found.failures == {
        "falconet-broken: entry point broken":
            "ModuleNotFoundError: No module named 'no_such_module_here'"}


def test_an_entry_point_name_another_distribution_uses_still_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other_json_plugin.py").write_text(
        "from falconet.api import Plugin\n"
        "from falconet.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def falconet_register_plugins(register):\n"
        "    register(Plugin('other-json', '1.0.0'))\n")
    _dist_info(tmp_path, "falconet-other-json", "[falconet]\njson = other_json_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = discover()
    finally:
        sys.modules.pop("other_json_plugin", None)
    assert {"json", "other-json", "k8saudit"} <= set(found)
    assert found.origins["other-json"] == "falconet-other-json (other_json_plugin)"
    assert found.origins["json"] == "falconet (falconet.builtin_plugins)"
    assert found.failures == {}
