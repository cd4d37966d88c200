"""load_plugins(): falco.yaml's plugins:/load_plugins: with Falco's semantics, init_config
parsing and schema validation, and the checks that keep plugins from clashing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from falconet.api import EventParser, JsonEvent, OutputSpec, Plugin
from falconet.log import configure_logging
from falconet.plugins import Catalogue, PluginError, load_plugins

from .conftest import config, plugin, source, table

K8S = {"name": "k8saudit", "library_path": "libk8saudit.so",
       "init_config": {"sslCertificate": "/etc/falco/falco.pem"},
       "open_params": "http://:9765/k8s-audit"}
JSON = {"name": "json", "library_path": "libjson.so", "init_config": ""}


def names(plugin_set: object) -> list[str]:
    return [lp.plugin.name for lp in plugin_set.loaded]  # type: ignore[attr-defined]


# --- selection ----------------------------------------------------------------------------------


def test_without_load_plugins_every_entry_loads_in_yaml_order(installed: Catalogue) -> None:
    loaded = load_plugins(config({"plugins": [JSON, K8S]}), installed)
    assert names(loaded) == ["json", "k8saudit"]


def test_load_plugins_selects_those_names_in_its_order(installed: Catalogue) -> None:
    doc = {"plugins": [JSON, K8S], "load_plugins": ["k8saudit", "json"]}
    assert names(load_plugins(config(doc), installed)) == ["k8saudit", "json"]
    doc = {"plugins": [JSON, K8S], "load_plugins": ["k8saudit"]}
    assert names(load_plugins(config(doc), installed)) == ["k8saudit"]


def test_an_empty_load_plugins_loads_nothing(installed: Catalogue) -> None:
    loaded = load_plugins(config({"plugins": [JSON, K8S], "load_plugins": [],
                                  "engine": {"kind": "nodriver"}}), installed)
    assert loaded.loaded == []
    assert loaded.versions() == {}
    assert loaded.sources == {}


def test_load_plugins_naming_no_plugins_entry_is_upstreams_error(installed: Catalogue) -> None:
    doc = {"plugins": [JSON], "load_plugins": ["json", "k8saudit"]}
    with pytest.raises(PluginError) as err:
        load_plugins(config(doc), installed)
    assert str(err.value) == ("Cannot load plugin 'k8saudit': plugin config not found for "
                              "given name")


def test_a_plugins_entry_nothing_installed_provides_lists_the_installed_ones() -> None:
    available = {"json": plugin("json"), "k8saudit": plugin("k8saudit")}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "cloudtrail"}]}), available)
    assert str(err.value) == (
        "Cannot load plugin 'cloudtrail': no installed falconet plugin has this name "
        "(installed plugins: json, k8saudit); install the package that provides it, "
        "e.g. pip install falconet-cloudtrail")


def test_a_plugin_listed_twice_is_upstreams_error() -> None:
    doc = {"plugins": [{"name": "a"}, {"name": "a"}]}
    with pytest.raises(PluginError) as err:
        load_plugins(config(doc), {"a": plugin("a")})
    assert str(err.value) == "found another plugin with name a. Aborting."


def test_a_shared_library_path_maps_to_the_python_plugin_with_one_notice(
        installed: Catalogue, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    capsys.readouterr()
    loaded = load_plugins(config({"plugins": [
        K8S, {"name": "json", "library_path": "/usr/share/falco/plugins/libjson.so"}]}),
        installed)
    assert loaded.loaded[0].plugin is installed["k8saudit"]
    assert loaded.loaded[1].library_path == "/usr/share/falco/plugins/libjson.so"
    lines = capsys.readouterr().err.splitlines()
    notice = ("plugin library_path is not opened: falconet uses the installed Python plugin of "
              "the same name component=plugins ")
    assert [line.split(": ", 1)[1] for line in lines] == [
        notice + "plugin=k8saudit library_path=libk8saudit.so "
        "provided_by='falconet-k8s-audit (falconet_k8s_audit.plugin)'",
        notice + "plugin=json library_path=/usr/share/falco/plugins/libjson.so "
        "provided_by='falconet (falconet.builtin_plugins)'",
    ]


def test_no_library_path_no_notice(installed: Catalogue,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    capsys.readouterr()
    load_plugins(config({"plugins": [{"name": "json"}]}), installed)
    assert capsys.readouterr().err == ""


# --- init_config and open_params ------------------------------------------------------------------


def test_init_config_as_a_mapping_or_a_json_string_is_the_same(installed: Catalogue) -> None:
    as_map = {**K8S, "init_config": {"maxEventSize": 1024, "sslCertificate": "/c.pem"}}
    as_json = {**K8S, "init_config": '{"maxEventSize": 1024, "sslCertificate": "/c.pem"}'}
    for entry in (as_map, as_json):
        (lp,) = load_plugins(config({"plugins": [entry]}), installed).loaded
        assert lp.init_config == {"maxEventSize": 1024, "sslCertificate": "/c.pem"}


def test_an_empty_or_absent_init_config_is_an_empty_mapping(installed: Catalogue) -> None:
    for entry in ({"name": "json"}, {"name": "json", "init_config": ""},
                  {"name": "json", "init_config": "  "}, {"name": "json", "init_config": None}):
        (lp,) = load_plugins(config({"plugins": [entry]}), installed).loaded
        assert lp.init_config == {}


def test_init_config_that_is_not_json_names_the_plugin(installed: Catalogue) -> None:
    entry = {**K8S, "init_config": "{maxEventSize: 1}"}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [entry]}), installed)
    assert str(err.value) == ("plugin 'k8saudit' init_config: invalid JSON: Expecting property "
                              "name enclosed in double quotes: line 1 column 2 (char 1)")


def test_init_config_that_is_not_an_object_is_refused(installed: Catalogue) -> None:
    with pytest.raises(PluginError, match=r"^plugin 'k8saudit' init_config: expected a mapping "
                       r"\(a JSON object\), got list$"):
        load_plugins(config({"plugins": [{**K8S, "init_config": "[1, 2]"}]}), installed)


@pytest.mark.parametrize(("init_config", "message"), [
    ({"maxEventSize": "abc"}, "maxEventSize: 'abc' is not of type 'integer'"),
    ({"maxEventSize": "1.5"}, "maxEventSize: '1.5' is not of type 'integer'"),
    ('{"webhookMaxBatchSize": -1}', "webhookMaxBatchSize: -1 is less than the minimum of 0"),
    ({"useAsync": "yes"}, "useAsync: 'yes' is not of type 'boolean'"),
])
def test_schema_errors_name_the_key(installed: Catalogue, init_config: object,
                                    message: str) -> None:
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{**K8S, "init_config": init_config}]}), installed)
    assert str(err.value) == f"plugin 'k8saudit' init_config: {message}"


def test_init_config_strings_are_read_as_the_types_the_schema_wants(installed: Catalogue) -> None:
    """What ``-o plugins[0].init_config.key=value`` gives: every value a string."""
    entry = {**K8S, "init_config": {"maxEventSize": "1024", "useAsync": "False",
                                    "sslCertificate": "123"}}
    (lp,) = load_plugins(config({"plugins": [entry]}), installed).loaded
    assert lp.init_config == {"maxEventSize": 1024, "useAsync": False, "sslCertificate": "123"}


def test_unknown_init_config_keys_are_accepted_as_upstream(installed: Catalogue) -> None:
    entry = {**K8S, "init_config": {"someFutureKey": 1}}
    (lp,) = load_plugins(config({"plugins": [entry]}), installed).loaded
    assert lp.init_config == {"someFutureKey": 1}


def test_nested_schema_errors_give_the_whole_path() -> None:
    schema = {"type": "object", "properties": {"server": {"type": "object", "properties": {
        "ports": {"type": "array", "items": {"type": "integer"}}}}}, "required": ["server"]}
    available = {"p": plugin("p", init_schema=schema)}
    entry = {"name": "p", "init_config": {"server": {"ports": [80, "http"]}}}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [entry]}), available)
    assert str(err.value) == "plugin 'p' init_config: server.ports[1]: 'http' is not of type " \
        "'integer'"
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "p"}]}), available)
    assert str(err.value) == "plugin 'p' init_config: 'server' is a required property"


def test_a_plugin_with_a_broken_schema_is_named() -> None:
    available = {"p": plugin("p", init_schema={"type": "no-such-type"})}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "p"}]}), available)
    assert str(err.value).startswith("plugin 'p' has an invalid init_schema: ")


def test_open_params_are_trimmed(installed: Catalogue) -> None:
    entry = {**K8S, "open_params": "  \thttp://:9765/k8s-audit \n"}
    (lp,) = load_plugins(config({"plugins": [entry]}), installed).loaded
    assert lp.open_params == "http://:9765/k8s-audit"


# --- sources, fields, parsers, outputs ---------------------------------------------------------


def test_two_plugins_with_one_source_are_refused() -> None:
    available = {"a": plugin("a", src=source("demo")), "b": plugin("b", src=source("demo"))}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "a"}, {"name": "b"}]}), available)
    assert str(err.value) == ("plugins 'a' and 'b' both provide the event source 'demo': load "
                              "only one of them")


def test_two_sources_with_one_plugin_id_are_upstreams_error() -> None:
    available = {"a": plugin("a", src=source("one", plugin_id=999)),
                 "b": plugin("b", src=source("two", plugin_id=999))}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "a"}, {"name": "b"}]}), available)
    assert str(err.value) == "found another plugin with ID 999. Aborting."


def test_overlapping_fields_are_upstreams_error() -> None:
    available = {
        "a": plugin("a", src=source("demo"), tables=(table("demo", "demo.user", "demo.x"),)),
        "b": plugin("b", tables=(table("demo", "demo.y", "demo.x"),)),
    }
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "a"}, {"name": "b"}]}), available)
    assert str(err.value) == ("Plugin 'b' supports extraction of field 'demo.x' that is "
                              "overlapping for source 'demo'")


def test_common_fields_repeated_by_tables_do_not_overlap(installed: Catalogue) -> None:
    # k8saudit's table carries evt.* and json.*, which every JSON source has anyway
    extra = plugin("extra", tables=(table("k8s_audit", "kx.name"),))
    available = {**installed, "extra": extra}
    loaded = load_plugins(config({"plugins": [{"name": "extra"}, K8S, JSON]}), available)
    k8s = loaded.registry.table("k8s_audit")
    assert {"kx.name", "ka.user.name", "json.value", "evt.pluginname"} <= set(k8s.fields)


def test_the_sources_table_replaces_the_schema_and_keeps_common_fields(fields_tsv: Path) -> None:
    own = table("k8s_audit", "ka.user.name")
    available = {"mini": plugin("mini", src=source("k8s_audit"), tables=(own,))}
    loaded = load_plugins(config({"plugins": [{"name": "mini"}]}), available,
                          fields_tsv=fields_tsv)
    k8s = loaded.registry.table("k8s_audit")
    assert "ka.verb" not in k8s  # schema-only fields of a loaded source are gone
    assert {"ka.user.name", "evt.time", "evt.source", "json.value", "jevt.rawtime"} <= set(
        k8s.fields)
    ev = JsonEvent("k8s_audit", b'{"user.name": "x", "name": "alice"}', ts=5)
    assert k8s.fields["ka.user.name"].extractor(None)(ev) == "alice"
    assert k8s.fields["evt.pluginname"].extractor(None)(ev) == "mini"
    assert k8s.fields["evt.plugininfo"].extractor(None)(ev) == '{"user.name": "x", "name": ' \
        '"alice"}'
    assert k8s.fields["json.value"].extractor("/name")(ev) == "alice"
    # sources no loaded plugin brings keep upstream's schema tables
    assert "proc.name" in loaded.registry.table("syscall")
    assert "ct.name" in loaded.registry.table("aws_cloudtrail")


def test_k8saudit_fields_replace_the_schema_fields(installed: Catalogue,
                                                   fields_tsv: Path) -> None:
    loaded = load_plugins(config({"plugins": [K8S, JSON]}), installed, fields_tsv=fields_tsv)
    k8s = loaded.registry.table("k8s_audit")
    doc = {"kind": "Event", "auditID": "a-1", "user": {"username": "alice"}}
    ev = JsonEvent("k8s_audit", orjson.dumps(doc), ts=7)
    assert k8s.fields["ka.user.name"].extractor(None)(ev) == "alice"
    assert k8s.fields["evt.pluginname"].extractor(None)(ev) == "k8saudit"
    assert k8s.fields["jevt.value"].extractor("/auditID")(ev) == "a-1"
    assert loaded.registry.sources == ["syscall", "k8s_audit", "aws_cloudtrail"]


def test_fields_for_another_source_extend_it(fields_tsv: Path) -> None:
    available = {"proc-extra": plugin("proc-extra", tables=(table("syscall", "procx.tag"),))}
    loaded = load_plugins(config({"plugins": [{"name": "proc-extra"}]}), available,
                          fields_tsv=fields_tsv)
    syscall = loaded.registry.table("syscall")
    assert "procx.tag" in syscall
    assert "proc.name" in syscall
    assert "evt.type" in syscall


def test_without_upstreams_field_list_only_loaded_sources_exist(
        installed: Catalogue, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FALCONET_FIELDS_TSV", str(tmp_path / "absent.tsv"))
    loaded = load_plugins(config({"plugins": [K8S, JSON], "engine": {"kind": "nodriver"}}),
                          installed)
    assert loaded.registry.sources == ["syscall", "k8s_audit"]
    assert len(loaded.registry.table("syscall")) == 0
    assert "ka.user.name" in loaded.registry.table("k8s_audit")
    demo = {"d": plugin("d", src=source("demo"), tables=(table("demo", "demo.user"),))}
    loaded = load_plugins(config({"plugins": [{"name": "d"}]}), demo)
    assert loaded.registry.sources == ["syscall", "demo"]
    assert {"demo.user", "evt.num", "json.obj"} <= set(loaded.registry.table("demo").fields)


def test_sources_parsers_outputs_and_versions_are_plain_attributes() -> None:
    seen: list[str] = []
    everywhere = EventParser(sources=(), parse=lambda batch: seen.append("all"))
    only_demo = EventParser(sources=("demo",), parse=lambda batch: seen.append("demo"))
    out = OutputSpec(name="demo", create=lambda cfg, ctx: None)  # type: ignore[arg-type,return-value]
    available = {
        "d": Plugin("d", "1.2.0", compatible_version="0.9.0", source=source("demo"),
                    parsers=(everywhere, only_demo), outputs=(out,)),
    }
    doc = {"plugins": [{"name": "d", "init_config": {"k": 1}, "open_params": " p "}]}
    loaded = load_plugins(config(doc), available)
    assert loaded.versions() == {"d": "0.9.0"}
    assert loaded.outputs == {"demo": out}
    ls = loaded.sources["demo"]
    assert ls.loaded is loaded.loaded[0]
    ctx = ls.context()
    assert (ctx.open_params, ctx.init_config) == ("p", {"k": 1})
    for parse in loaded.parsers["demo"]:
        parse([])
    assert seen == ["all", "demo"]
    assert set(loaded.parsers) == set(loaded.registry.sources)
    seen.clear()
    for parse in loaded.parsers["syscall"]:
        parse([])
    assert seen == ["all"]


def test_two_outputs_with_one_name_are_refused() -> None:
    out = OutputSpec(name="o", create=lambda cfg, ctx: None)  # type: ignore[arg-type,return-value]
    available = {"a": plugin("a", outputs=(out,)), "b": plugin("b", outputs=(out,))}
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "a"}, {"name": "b"}]}), available)
    assert str(err.value) == "plugins 'a' and 'b' both provide the output 'o': load only one of " \
        "them"


def test_a_fields_function_that_raises_is_named() -> None:
    def broken() -> list[object]:
        raise KeyError("x")

    available = {"p": Plugin("p", "1.0.0", fields=broken)}  # type: ignore[arg-type]
    with pytest.raises(PluginError) as err:
        load_plugins(config({"plugins": [{"name": "p"}]}), available)
    assert str(err.value) == "plugin 'p': building its field tables failed: KeyError: 'x'"
