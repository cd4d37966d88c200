"""falco.yaml loading: defaults, -o syntax, config_files, ${ENV}, validation, the bundled file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from falconet.config import ConfigError, apply_override, interpolate_env, load_config, parse_key
from falconet.config_schema import SCHEMA, Map

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "rules" / "falco.yaml"


def write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def over(*options: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for o in options:
        apply_override(root, o)
    return root


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_are_upstream_falco_yaml_values() -> None:
    c = load_config(None, env={})
    assert c.priority == "debug"
    assert c.rule_matching == "first"
    assert c.rules_files == ("/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml",
                             "/etc/falco/rules.d")
    assert (c.json_output, c.json_include_output_property, c.json_include_message_property,
            c.json_include_output_fields_property, c.json_include_tags_property) == (
        False, True, False, True, True)
    assert c.stdout_output is True and c.syslog_output is True
    assert c.file_output.filename == "./events.txt" and not c.file_output.enabled
    assert c.outputs_queue_capacity == 0 and c.buffered_outputs is False
    assert c.webserver.listen_port == 8765 and c.webserver.k8s_healthz_endpoint == "/healthz"
    assert c.webserver.enabled is True
    assert c.http_output.user_agent == "falcosecurity/falco"
    assert c.http_output.max_consecutive_timeouts == 5
    assert c.metrics.interval == "1h" and c.metrics.enabled is False
    assert c.log_level == "info" and c.log_stderr and c.log_syslog
    assert c.engine_kind == "modern_ebpf"
    assert c.capture.default_duration_ms == 5000 and c.capture.mode == "rules"
    assert c.watch_config_files is True
    assert c.append_output[0].suggested_output is True
    assert c.load_plugins is None and c.plugins == ()
    assert c.warnings == () and c.raw == {}


def test_null_value_reads_as_default(tmp_path: Path) -> None:
    c = load_config(write(tmp_path / "f.yaml", "priority:\nwebserver:\n  listen_port:\n"), env={})
    assert c.priority == "debug" and c.webserver.listen_port == 8765


def test_included_mapping_replaces_the_whole_top_level_key(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"webserver": {"listen_port": 9000}})
    main = write(tmp_path / "falco.yaml", {"config_files": [str(inc)],
                                           "webserver": {"enabled": False, "listen_port": 1}})
    c = load_config(main, env={})
    assert c.webserver.listen_port == 9000
    assert c.webserver.enabled is True  # back to the default: the merge is per top-level key


# --- -o key=value ------------------------------------------------------------------------------


def test_override_dotted_key() -> None:
    c = load_config(None, ["webserver.listen_port=9999", "http_output.url=http://x/y"], env={})
    assert c.webserver.listen_port == 9999
    assert c.http_output.url == "http://x/y"


def test_override_value_split_at_first_equal_sign() -> None:
    assert over("program_output.program=a=b")["program_output"]["program"] == "a=b"


def test_override_typed_scalars() -> None:
    c = load_config(None, ["json_output=true", "outputs_queue.capacity=5", "priority=WARNING",
                           "buffered_outputs=yes", "log_stderr=off"], env={})
    assert c.json_output is True and c.outputs_queue_capacity == 5
    assert c.priority == "warning" and c.buffered_outputs is True and c.log_stderr is False


def test_override_values_stay_text_in_raw_like_upstream() -> None:
    c = load_config(None, ["outputs_queue.capacity=5", "static_fields.n=007"], env={})
    assert c.raw["outputs_queue"]["capacity"] == "5"
    assert c.static_fields == {"n": "007"}  # a string key keeps the text as written


def test_override_index_replaces_item(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"rules_files": ["/a", "/b", "/c"]})
    c = load_config(main, ["rules_files[1]=/B"], env={})
    assert c.rules_files == ("/a", "/B", "/c")


def test_override_index_into_mapping_item(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"plugins": [{"name": "a"}, {"name": "b"}]})
    c = load_config(main, ["plugins[1].open_params=p"], env={})
    assert c.plugins[1].open_params == "p" and c.plugins[0].open_params == ""


def test_override_index_out_of_range() -> None:
    with pytest.raises(ConfigError, match=r'key "rules_files\[3\]": index 3 is out of range'):
        over("rules_files[0]=/a", "rules_files[3]=/b")


def test_override_append_creates_and_extends_sequence() -> None:
    c = load_config(None, ["rules[].disable.rule=*", "rules[].enable.tag=network",
                           "rules[].enable.rule=Read sensitive*"], env={})
    assert [(s.action, s.rule, s.tag) for s in c.rules_selection] == [
        ("disable", "*", ""), ("enable", "", "network"), ("enable", "Read sensitive*", "")]


def test_override_append_to_file_list(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"load_plugins": ["k8saudit"]})
    c = load_config(main, ["load_plugins[]=json"], env={})
    assert c.load_plugins == ("k8saudit", "json")


def test_override_yaml_object_value() -> None:
    c = load_config(None, ["append_output[]={match: {source: syscall, tags: [net]}, "
                           "extra_output: 'on %proc.name', extra_fields: [evt.type, "
                           "{home: '%proc.cwd'}]}"], env={})
    (a,) = c.append_output
    assert a.source == "syscall" and a.tags == ("net",) and a.extra_output == "on %proc.name"
    assert a.extra_fields == ("evt.type", ("home", "%proc.cwd"))


def test_override_object_replaces_mapping() -> None:
    c = load_config(None, ["webserver={listen_port: 1, enabled: false}"], env={})
    assert c.webserver.listen_port == 1 and c.webserver.enabled is False


def test_override_braces_only_when_both_ends() -> None:
    assert over("static_fields.a={x")["static_fields"]["a"] == "{x"


@pytest.mark.parametrize(("key", "steps"), [
    (r"static_fields.kubernetes\.io/role", ["static_fields", "kubernetes.io/role"]),
    (r"a\[0\]", ["a[0]"]),
    (r"a\\b", ["a\\b"]),
    ("matrix[1][3].x", ["matrix", 1, 3, "x"]),
    ("rules[].enable.tag", ["rules", None, "enable", "tag"]),
])
def test_parse_key_forms(key: str, steps: list[Any]) -> None:
    assert parse_key(key) == steps


def test_override_escaped_dot_key() -> None:
    c = load_config(None, [r"static_fields.kubernetes\.io/role=master"], env={})
    assert c.static_fields == {"kubernetes.io/role": "master"}


@pytest.mark.parametrize(("option", "message"), [
    ("json_output", r'Error parsing config option "json_output". Must be of the form key=val'),
    ("a..b=1", r'key "a..b": Parsing error: unexpected character at pos 2'),
    ("a\\=1", r"trailing backslash at pos 1"),
    (r"a\x=1", r"invalid escape sequence '\\x' at pos 1"),
    ("a[x]=1", r"expected a numeric index, found 'x'"),
    ("a[0]b=1", r"expected '.' character"),
])
def test_override_syntax_errors(option: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        over(option)


def test_override_through_a_scalar_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not a mapping"):
        over("priority=debug", "priority.x=1")


# --- config_files ------------------------------------------------------------------------------


def test_config_files_default_append(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"rules_files": ["/extra"], "priority": "error"})
    main = write(tmp_path / "falco.yaml", {"config_files": [str(inc)], "rules_files": ["/main"],
                                           "priority": "debug"})
    c = load_config(main, env={})
    assert c.rules_files == ("/main", "/extra") and c.priority == "error"
    assert c.loaded_files == (str(main), str(inc))


def test_config_files_override(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"rules_files": ["/extra"], "priority": "error"})
    main = write(tmp_path / "falco.yaml", {
        "config_files": [{"path": str(inc), "strategy": "override"}], "rules_files": ["/main"]})
    c = load_config(main, env={})
    assert c.rules_files == ("/extra",) and c.priority == "error"


def test_config_files_add_only(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"rules_files": ["/extra"], "priority": "error",
                                        "json_output": True})
    main = write(tmp_path / "falco.yaml", {
        "config_files": [{"path": str(inc), "strategy": "add-only"}], "rules_files": ["/main"],
        "priority": "debug"})
    c = load_config(main, env={})
    assert c.rules_files == ("/main",) and c.priority == "debug" and c.json_output is True


def test_config_files_directory_sorted_and_missing_skipped(tmp_path: Path) -> None:
    d = tmp_path / "config.d"
    d.mkdir()
    write(d / "b.yaml", {"rules_files": ["/b"], "priority": "notice"})
    write(d / "a.yaml", {"rules_files": ["/a"], "priority": "error"})
    main = write(tmp_path / "falco.yaml", {"config_files": [str(tmp_path / "nope.yaml"), str(d)],
                                           "rules_files": []})
    c = load_config(main, env={})
    assert c.rules_files == ("/a", "/b") and c.priority == "notice"


def test_config_files_from_override(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"priority": "alert"})
    main = write(tmp_path / "falco.yaml", {"priority": "debug"})
    c = load_config(main, [f"config_files[]={inc}"], env={})
    assert c.priority == "alert"


def test_overrides_apply_after_config_files(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"priority": "alert"})
    main = write(tmp_path / "falco.yaml", {"config_files": [str(inc)]})
    assert load_config(main, ["priority=error"], env={}).priority == "error"


def test_config_files_wrong_strategy_warns_and_appends(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"rules_files": ["/extra"]})
    main = write(tmp_path / "falco.yaml", {
        "config_files": [{"path": str(inc), "strategy": "wrong"}], "rules_files": ["/main"]})
    c = load_config(main, env={})
    assert c.rules_files == ("/main", "/extra")
    assert c.warnings == ("config_files[0].strategy: expected one of append, override, "
                          "add-only, got 'wrong' (using 'append')",)


def test_config_files_relative_paths_are_relative_to_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    write(tmp_path / "inc.yaml", {"priority": "error"})
    main = write(sub / "falco.yaml", {"config_files": ["inc.yaml"]})
    monkeypatch.chdir(tmp_path)
    assert load_config(main, env={}).priority == "error"


def test_config_files_nested_directive_is_an_error(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", {"config_files": ["/x"]})
    main = write(tmp_path / "falco.yaml", {"config_files": [str(inc)]})
    with pytest.raises(ConfigError, match="'config_files' directive in included config file"):
        load_config(main, env={})


def test_config_files_including_main_file_is_an_error(tmp_path: Path) -> None:
    main = tmp_path / "falco.yaml"
    write(main, {"config_files": [str(main)]})
    with pytest.raises(ConfigError, match="recursively include main config file"):
        load_config(main, env={})


# --- ${ENV} ------------------------------------------------------------------------------------


def test_env_interpolation_set(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", 'http_output:\n  url: "https://${HOST}/hook?t=${TOKEN}"\n'
                                      'webserver:\n  listen_port: "${PORT}"\n')
    c = load_config(main, env={"HOST": "h.example", "TOKEN": "s3cret", "PORT": "9090"})
    assert c.http_output.url == "https://h.example/hook?t=s3cret"
    assert c.webserver.listen_port == 9090


def test_env_interpolation_missing_is_empty(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", "file_output:\n  filename: /var/${NOPE}log\n")
    assert load_config(main, env={}).file_output.filename == "/var/log"


def test_env_interpolation_escaped(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", "program_output:\n  program: echo $${HOME} ${X}\n")
    assert load_config(main, env={"HOME": "/h", "X": "x"}).program_output.program == \
        "echo ${HOME} x"


def test_env_interpolation_in_included_file_and_lists(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.yaml", "rules_files:\n  - ${DIR}/r.yaml\n")
    main = write(tmp_path / "f.yaml", f"config_files: [{inc}]\nrules_files: []\n")
    assert load_config(main, env={"DIR": "/d"}).rules_files == ("/d/r.yaml",)


@pytest.mark.parametrize(("text", "expected"), [
    ("${A}${B}", "ab"),
    ("x${A", "x${A"),            # unclosed: left alone
    ("$5 ${A}", "$5 ${A}"),      # upstream stops scanning at a '$' that starts nothing
    ("${R}", "a"),               # a value holding ${..} is expanded again
])
def test_interpolate_env_quirks(text: str, expected: str) -> None:
    assert interpolate_env(text, {"A": "a", "B": "b", "R": "${A}"}) == expected


def test_env_unset_for_typed_key_reads_default(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", "json_output: ${UNSET}\noutputs_queue:\n"
                                      "  capacity: ${UNSET}\n")
    c = load_config(main, env={})
    assert c.json_output is False and c.outputs_queue_capacity == 0


def test_overrides_are_not_interpolated() -> None:
    c = load_config(None, ["http_output.url=${URL}"], env={"URL": "u"})
    assert c.http_output.url == "${URL}"


# --- validation --------------------------------------------------------------------------------


def test_unknown_keys_warn_with_path(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"stdout_outptu": {"enabled": True},
                                       "webserver": {"listen_prot": 1},
                                       "plugins": [{"name": "x", "bogus": 1}]})
    c = load_config(main, env={})
    assert c.warnings == (  # in document order (safe_dump sorted the keys)
        "unknown configuration key 'plugins[0].bogus' (ignored)",
        "unknown configuration key 'stdout_outptu' (ignored)",
        "unknown configuration key 'webserver.listen_prot' (ignored)",
    )
    assert c.raw["stdout_outptu"] == {"enabled": True}


@pytest.mark.parametrize(("option", "message"), [
    ("priority=loud", "priority: expected one of emergency, alert, critical, error, warning, "
                      "notice, informational, debug, got 'loud'"),
    ("outputs_queue.capacity=x", "outputs_queue.capacity: expected an integer, got 'x'"),
    ("outputs_queue.capacity=-1", "outputs_queue.capacity: expected an integer >= 0, got -1"),
    ("json_output=maybe", "json_output: expected a boolean, got 'maybe'"),
    ("rule_matching=some", "rule_matching: expected one of first, all, got 'some'"),
    ("engine.kind=gvisor", "engine.kind: expected one of kmod, ebpf, modern_ebpf, replay, "
                           "nodriver, got 'gvisor'"),
    ("webserver.listen_port=http", "webserver.listen_port: expected an integer, got 'http'"),
    ("http_output.max_consecutive_timeouts=[1]",
     "http_output.max_consecutive_timeouts: expected an integer, got '[1]'"),
    ("capture.mode=some", "capture.mode: expected one of rules, all_rules, got 'some'"),
    ("log_level=verbose", "log_level: expected one of emergency, alert, critical, error, "
                          "warning, notice, info, debug, got 'verbose'"),
    ("stdout_output=on", "stdout_output: expected a mapping, got 'on'"),
    ("syslog_output.proto=relp", "syslog_output.proto: expected one of udp, tcp, got 'relp'"),
    ("syslog_output.port=0", "syslog_output.port: expected an integer >= 1, got 0"),
    ("syslog_output.port=65536", "syslog_output.port: expected a port number (1-65535), "
                                 "got 65536"),
    ("append_output[0].match.tags={a: 1}", "append_output[0].match.tags: expected a list, "
                                           "got a mapping"),
])
def test_wrong_types_name_the_key(option: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [option], env={})
    assert str(info.value) == message


def test_wrong_type_in_file_names_list_path(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"plugins": [{"name": "a"}, {"name": "b",
                                                                   "init_config": [1]}]})
    with pytest.raises(ConfigError, match=r"^plugins\[1\]\.init_config: expected a mapping or "
                                          r"a string, got a list$"):
        load_config(main, env={})


def test_priority_info_alias_and_case() -> None:
    assert load_config(None, ["priority=Info"], env={}).priority == "informational"


def test_rules_file_and_rules_files_both_set(tmp_path: Path) -> None:
    main = write(tmp_path / "f.yaml", {"rules_file": ["/a"], "rules_files": ["/b"]})
    with pytest.raises(ConfigError, match="both 'rules_files' and 'rules_file' keys set"):
        load_config(main, env={})


def test_rules_file_singular_is_deprecated_but_read(tmp_path: Path) -> None:
    c = load_config(write(tmp_path / "f.yaml", {"rules_file": "/only.yaml"}), env={})
    assert c.rules_files == ("/only.yaml",)
    assert any("deprecated config key 'rules_file'" in w for w in c.warnings)


@pytest.mark.parametrize(("options", "message"), [
    (["file_output.enabled=true", "file_output.filename="], "file_output.filename: required"),
    (["http_output.enabled=true"], "http_output.url: required"),
    (["engine.kind=replay"], "engine.replay.capture_file: required"),
    (["rules[].enable.x=1"], r"rules\[0\].enable: expected a 'rule' or a 'tag'"),
    (["plugins[].library_path=x.so"], r"plugins\[0\].name: required key is missing"),
])
def test_cross_key_checks(options: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, options, env={})


def test_syslog_output_remote_keys() -> None:
    c = load_config(None, env={})
    assert (c.syslog.enabled, c.syslog.host, c.syslog.port, c.syslog.proto,
            c.syslog.facility) == (True, "", 514, "udp", "user")
    c = load_config(None, ["syslog_output.host=logs.internal", "syslog_output.port=6514",
                           "syslog_output.proto=TCP", "syslog_output.facility=Local3"], env={})
    assert (c.syslog.host, c.syslog.port, c.syslog.proto, c.syslog.facility) == (
        "logs.internal", 6514, "tcp", "local3")
    with pytest.raises(ConfigError, match=r"^syslog_output\.facility: expected one of kern, user"):
        load_config(None, ["syslog_output.facility=local9"], env={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(write(tmp_path / "f.yaml", "- a\n"), env={})


# --- the bundled falco.yaml --------------------------------------------------------------------


def test_bundled_falco_yaml_loads_without_warnings() -> None:
    c = load_config(BUNDLED, env={})
    assert c.warnings == ()
    assert c.load_plugins == ()  # the key is present (empty): no plugin is loaded


def test_bundled_falco_yaml_matches_defaults() -> None:
    bundled = load_config(BUNDLED, env={}).typed
    defaults = load_config(None, env={}).typed
    differing = {k for k in defaults if bundled[k] != defaults[k]}
    assert differing == {"config_files"}


def _paths(spec: Map, prefix: str = "") -> list[str]:
    out = []
    for name, sub in spec.fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        if isinstance(sub, Map) and name != "match":
            out.extend(_paths(sub, path + "."))
    return out


def test_bundled_falco_yaml_documents_every_key() -> None:
    doc = yaml.safe_load(BUNDLED.read_text())
    text = BUNDLED.read_text()
    missing = []
    for path in _paths(SCHEMA):
        node: Any = doc
        for part in path.split("."):
            node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
        if node is KeyError and path.split(".")[-1] not in text:
            missing.append(path)
    assert missing == []
