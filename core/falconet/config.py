"""falco.yaml loading as Falco does it (`userspace/falco/configuration.cpp`, `yaml_helper.h`).

Order, as upstream's ``init_from_file``:

1. read the main file and replace ``${VAR}`` in its string values (``$${x}`` gives ``${x}``);
2. apply the ``-o config_files...`` overrides, then merge every ``config_files`` entry (a file, or
   a directory's regular files in sorted order) with its strategy: ``append`` (default: sequences
   are appended, anything else replaced), ``override`` (replaced) or ``add-only`` (only new keys).
   The merge is per top-level key: an included ``webserver:`` replaces the whole mapping;
3. apply every ``-o key=value`` in order. Overrides are not env-interpolated; a value wrapped in
   ``{...}`` is YAML, anything else is kept as text and typed by the key it lands on (yaml-cpp
   reads ``"true"`` as a bool and ``"5"`` as an int when the key asks for one);
4. validate and type the result against :data:`falconet.config_schema.SCHEMA`.
"""

from __future__ import annotations

import copy
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from falconet.config_schema import SCHEMA, ConfigError

__all__ = [
    "AppendOutput",
    "Capture",
    "Config",
    "ConfigError",
    "FileOutput",
    "HttpOutput",
    "Metrics",
    "PluginConfig",
    "ProgramOutput",
    "RuleSelection",
    "SyslogOutput",
    "Webserver",
    "apply_override",
    "interpolate_env",
    "load_config",
    "parse_key",
]

CONFIGS_KEY = "config_files"

# ---------------------------------------------------------------------------------------------
# ${ENV} interpolation


def interpolate_env(value: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` with its value (or nothing when unset); ``$${x}`` becomes ``${x}``.

    Upstream's scan, kept with its quirks: a ``$`` followed by anything but ``{``/``${`` stops the
    scan (the rest of the string is left alone), an unclosed ``${`` stops it too, and a value that
    itself holds ``${...}`` is expanded again.
    """
    pos = value.find("$")
    while pos != -1:
        rest = value[pos:]
        if rest.startswith("${"):
            end = rest.find("}")
            if end == -1:
                break
            name = rest[2:end]
            value = value[:pos] + env.get(name, "") + value[pos + end + 1:]
        elif rest.startswith("$${"):
            if rest.find("}") == -1:
                break
            value = value[:pos] + value[pos + 1:]
            pos += 1
        else:
            break
        pos = value.find("$", pos)
    return value


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Interpolate every string value (not mapping keys) of a loaded document."""
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, str) and "$" in node:
        return interpolate_env(node, env)
    return node


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read config file ({path}): {exc.strerror or exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Cannot read config file ({path}): {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"Cannot read config file ({path}): the document is not a mapping")
    result = _interpolate_tree(doc, env)
    assert isinstance(result, dict)
    return result


# ---------------------------------------------------------------------------------------------
# config_files


def _include(root: dict[str, Any], path: Path, strategy: str, env: Mapping[str, str]) -> None:
    for key, value in _read_yaml(path, env).items():
        if key == CONFIGS_KEY:
            raise ConfigError(
                f"Config error: '{CONFIGS_KEY}' directive in included config file {path}.")
        if strategy == "add-only":
            if key not in root:  # a key set to null counts as set (yaml-cpp IsDefined)
                root[key] = value
        elif strategy == "append" and isinstance(value, list):
            existing = root.get(key)
            root[key] = (existing if isinstance(existing, list) else []) + value
        else:
            root[key] = value


def _config_file_entries(root: Mapping[str, Any]) -> list[tuple[str, str]]:
    raw = root.get(CONFIGS_KEY)
    entries = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    result = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            if entry.get("path") is None:
                raise ConfigError(f"{CONFIGS_KEY}[{i}].path: required key is missing")
            strategy = entry.get("strategy") or "append"
            if strategy not in ("append", "override", "add-only"):
                strategy = "append"  # upstream's strategy_from_string falls back likewise
            result.append((str(entry["path"]), str(strategy)))
        elif isinstance(entry, (str, int, float)):
            result.append((str(entry), "append"))
        else:
            raise ConfigError(f"{CONFIGS_KEY}[{i}]: expected a path or {{path, strategy}}")
    return result


def _merge_config_files(root: dict[str, Any], main: Path | None, env: Mapping[str, str],
                        loaded: list[str]) -> None:
    for name, strategy in _config_file_entries(root):
        inc = Path(name)
        if main is not None and inc == main:
            raise ConfigError(f"Config error: '{CONFIGS_KEY}' directive tried to recursively "
                              f"include main config file: {main}.")
        if inc.is_file():
            loaded.append(name)
            _include(root, inc, strategy, env)
        elif inc.is_dir():
            # Upstream takes every regular file of the folder, sorted by full path.
            for child in sorted(str(p) for p in inc.iterdir() if p.is_file()):
                loaded.append(child)
                _include(root, Path(child), strategy, env)
        # A missing entry is skipped silently, as a missing rules file is.


# ---------------------------------------------------------------------------------------------
# -o key=value

Step = str | int | None  # a mapping key, a sequence index, or None for "append" (``[]``)


def parse_key(key: str, *, can_append: bool = True) -> list[Step]:
    """Split an ``-o`` key into steps, following yaml_helper::get_node's grammar.

    ``Key := NodeKey ('.' NodeKey)*``;
    ``NodeKey := (Char | '\\' ('.'|'['|']'|'\\'))+ ('[' int? ']')*``. An empty ``[]`` appends.
    """
    steps: list[Step] = []
    name = ""
    have_name = False  # an escaped char counts even when it is the only one
    i = 0

    def err(msg: str) -> ConfigError:
        return ConfigError(f'Config error at key "{key}": Parsing error: {msg}')

    def flush(pos: int) -> None:
        nonlocal name, have_name
        if not have_name:
            raise err(f"unexpected character at pos {pos}")
        steps.append(name)
        name, have_name = "", False

    while i < len(key):
        c = key[i]
        if c == "\\":
            if i + 1 >= len(key):
                raise err(f"trailing backslash at pos {i}")
            nxt = key[i + 1]
            if nxt not in ".[]\\":
                raise err(f"invalid escape sequence '\\{nxt}' at pos {i}")
            name += nxt
            have_name = True
            i += 2
            continue
        if c == ".":
            flush(i)
            i += 1
            continue
        if c == "[":
            if have_name:
                flush(i)
            elif not steps or not isinstance(steps[-1], int | None):
                raise err(f"unexpected character at pos {i}")
            close = key.find("]", i)
            if close == -1:
                raise err(f"missing ']' for '[' at pos {i}")
            idx = key[i + 1:close]
            if idx == "" and can_append:
                steps.append(None)
            else:
                try:
                    steps.append(int(idx))
                except ValueError:
                    raise err(f"expected a numeric index, found '{idx}'") from None
            i = close + 1
            if i < len(key) and key[i] == ".":
                i += 1
                if i >= len(key):
                    raise err(f"unexpected character at pos {i - 1}")
            elif i < len(key) and key[i] != "[":
                raise err(f"expected '.' character at pos {i - 1}")
            continue
        name += c
        have_name = True
        i += 1
    if have_name:
        steps.append(name)
    elif not steps or key.endswith("."):
        raise err(f"unexpected character at pos {max(len(key) - 1, 0)}")
    return steps


def _set_path(root: dict[str, Any], key: str, value: Any) -> None:
    steps = parse_key(key)
    node: Any = root
    parent: Any = None
    slot: Step = None
    for n, step in enumerate(steps):
        last = n == len(steps) - 1
        if isinstance(step, str):
            if node is None:
                node = {}
                _assign(parent, slot, node)
            if not isinstance(node, dict):
                raise ConfigError(f'Config error at key "{key}": \'{step}\' is set on a value '
                                  "that is not a mapping")
            if last:
                node[step] = value
                return
            parent, slot, node = node, step, node.get(step)
            continue
        if node is None:
            node = []
            _assign(parent, slot, node)
        if not isinstance(node, list):
            raise ConfigError(f'Config error at key "{key}": indexing a value that is not a '
                              "sequence")
        if step is None:
            node.append(None)
            step = len(node) - 1
        elif step == len(node):
            node.append(None)
        elif not 0 <= step < len(node):
            raise ConfigError(f'Config error at key "{key}": index {step} is out of range '
                              f"(the sequence has {len(node)} items)")
        if last:
            node[step] = value
            return
        parent, slot, node = node, step, node[step]


def _assign(parent: Any, slot: Step, value: Any) -> None:
    parent[slot] = value


def _override_value(text: str) -> Any:
    if text.startswith("{") and text.endswith("}"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"Error parsing config option value {text!r}: {exc}") from exc
    return text


def apply_override(root: dict[str, Any], option: str) -> None:
    """Apply one ``-o key=value`` to the document ``root`` (in place)."""
    key, sep, text = option.partition("=")
    if not sep:
        raise ConfigError(f'Error parsing config option "{option}". Must be of the form '
                          "key=val or key.subkey=val")
    _set_path(root, key, _override_value(text))


# ---------------------------------------------------------------------------------------------
# The typed view


@dataclass(frozen=True)
class RuleSelection:
    """One ``rules:`` entry: ``action`` is enable|disable; ``rule`` a wildcard, ``tag`` a tag."""

    action: str
    rule: str = ""
    tag: str = ""


@dataclass(frozen=True)
class AppendOutput:
    source: str = ""
    tags: tuple[str, ...] = ()
    rule: str = ""
    extra_output: str = ""
    extra_fields: tuple[str | tuple[str, str], ...] = ()  # name, or (name, format)
    suggested_output: bool = False


@dataclass(frozen=True)
class FileOutput:
    enabled: bool
    keep_alive: bool
    filename: str


@dataclass(frozen=True)
class ProgramOutput:
    enabled: bool
    keep_alive: bool
    program: str


@dataclass(frozen=True)
class SyslogOutput:
    """``syslog_output``: an empty ``host`` means the local syslog(3), as Falco; a host name
    sends RFC 5424 messages over ``proto`` (udp|tcp) to ``host:port`` (falconet's extension)."""

    enabled: bool
    host: str
    port: int
    proto: str
    facility: str


@dataclass(frozen=True)
class HttpOutput:
    enabled: bool
    url: str
    user_agent: str
    insecure: bool
    ca_cert: str
    ca_bundle: str
    ca_path: str
    mtls: bool
    client_cert: str
    client_key: str
    echo: bool
    compress_uploads: bool
    keep_alive: bool
    max_consecutive_timeouts: int


@dataclass(frozen=True)
class Webserver:
    enabled: bool
    threadiness: int
    listen_port: int
    listen_address: str
    k8s_healthz_endpoint: str
    prometheus_metrics_enabled: bool
    ssl_enabled: bool
    ssl_certificate: str


@dataclass(frozen=True)
class Metrics:
    enabled: bool
    interval: str
    output_rule: bool
    output_file: str
    rules_counters_enabled: bool
    settings: Mapping[str, Any]  # every metrics.* key, typed


@dataclass(frozen=True)
class Capture:
    enabled: bool
    path_prefix: str
    mode: str
    default_duration_ms: int
    max_file_size_mb: int


@dataclass(frozen=True)
class PluginConfig:
    name: str
    library_path: str = ""
    init_config: Mapping[str, Any] | str = ""
    open_params: str = ""


@dataclass(frozen=True)
class Config:
    """What the engine needs from falco.yaml; ``raw`` is the merged document, before typing."""

    rules_files: tuple[str, ...]
    rules_selection: tuple[RuleSelection, ...]
    priority: str
    rule_matching: str
    json_output: bool
    json_include_output_property: bool
    json_include_message_property: bool
    json_include_output_fields_property: bool
    json_include_tags_property: bool
    append_output: tuple[AppendOutput, ...]
    buffered_outputs: bool
    outputs_queue_capacity: int
    time_format_iso_8601: bool
    stdout_output: bool
    syslog_output: bool
    syslog: SyslogOutput  # the whole ``syslog_output`` mapping
    file_output: FileOutput
    program_output: ProgramOutput
    http_output: HttpOutput
    webserver: Webserver
    log_level: str
    log_stderr: bool
    log_syslog: bool
    log_format: str  # falconet extension: console | json
    watch_config_files: bool
    metrics: Metrics
    plugins: tuple[PluginConfig, ...]
    load_plugins: tuple[str, ...] | None  # None: the key is absent, load every ``plugins`` entry
    engine_kind: str
    static_fields: Mapping[str, str]
    capture: Capture
    typed: Mapping[str, Any] = field(repr=False)  # every known key, typed, defaults filled
    raw: Mapping[str, Any] = field(repr=False)
    warnings: tuple[str, ...] = ()
    loaded_files: tuple[str, ...] = ()
    #: ``<name>_output`` sections of outputs that plugins bring (by key), not validated here
    plugin_outputs: Mapping[str, Any] = field(default_factory=dict)


def load_config(path: str | Path | None, overrides: Sequence[str] = (),
                env: Mapping[str, str] | None = None) -> Config:
    """Load falco.yaml at ``path`` (None: defaults only), merge config_files, apply ``-o``."""
    env = os.environ if env is None else env
    main = Path(path) if path is not None else None
    root: dict[str, Any] = _read_yaml(main, env) if main is not None else {}
    loaded = [str(main)] if main is not None else []
    for option in overrides:
        if option.startswith(CONFIGS_KEY):
            apply_override(root, option)
    _merge_config_files(root, main, env, loaded)
    for option in overrides:
        apply_override(root, option)
    return build_config(root, loaded)


def build_config(root: Mapping[str, Any], loaded: Sequence[str] = ()) -> Config:
    """Validate and type a merged document."""
    raw = copy.deepcopy(dict(root))
    if raw.get("rules_files") is not None and raw.get("rules_file") is not None:
        raise ConfigError("both 'rules_files' and 'rules_file' keys set")
    warnings: list[str] = []
    # `<name>_output` sections that falconet does not know belong to plugin outputs, checked
    # once plugins are loaded (falconet.app), so they do not warn here.
    plugin_outputs = {k: v for k, v in raw.items()
                      if isinstance(k, str) and k.endswith("_output") and k not in SCHEMA.fields}
    t = SCHEMA.check({k: v for k, v in raw.items() if k not in plugin_outputs}, "", warnings)
    if raw.get("rules_file") is not None:
        rules_files = t["rules_file"]
        warnings.append("Using deprecated config key 'rules_file' (singular form). "
                        "Please use new 'rules_files' config key (plural form).")
    else:
        rules_files = t["rules_files"]
    _check_consistency(t)
    return Config(
        rules_files=tuple(rules_files),
        rules_selection=tuple(_selections(t["rules"])),
        priority=t["priority"],
        rule_matching=t["rule_matching"],
        json_output=t["json_output"],
        json_include_output_property=t["json_include_output_property"],
        json_include_message_property=t["json_include_message_property"],
        json_include_output_fields_property=t["json_include_output_fields_property"],
        json_include_tags_property=t["json_include_tags_property"],
        append_output=tuple(_append_output(a) for a in t["append_output"]),
        buffered_outputs=t["buffered_outputs"],
        outputs_queue_capacity=t["outputs_queue"]["capacity"],
        time_format_iso_8601=t["time_format_iso_8601"],
        stdout_output=t["stdout_output"]["enabled"],
        syslog_output=t["syslog_output"]["enabled"],
        syslog=SyslogOutput(**t["syslog_output"]),
        file_output=FileOutput(**t["file_output"]),
        program_output=ProgramOutput(**t["program_output"]),
        http_output=HttpOutput(**t["http_output"]),
        webserver=Webserver(**t["webserver"]),
        log_level=t["log_level"],
        log_stderr=t["log_stderr"],
        log_syslog=t["log_syslog"],
        log_format=t["log_format"],
        watch_config_files=t["watch_config_files"],
        metrics=Metrics(enabled=t["metrics"]["enabled"], interval=t["metrics"]["interval"],
                        output_rule=t["metrics"]["output_rule"],
                        output_file=t["metrics"]["output_file"],
                        rules_counters_enabled=t["metrics"]["rules_counters_enabled"],
                        settings=dict(t["metrics"])),
        plugins=tuple(PluginConfig(name=p["name"], library_path=p["library_path"],
                                   init_config=p["init_config"] if p["init_config"] else "",
                                   open_params=p["open_params"]) for p in t["plugins"]),
        load_plugins=tuple(t["load_plugins"]) if "load_plugins" in raw else None,
        engine_kind=t["engine"]["kind"],
        static_fields=dict(t["static_fields"]),
        capture=Capture(enabled=t["capture"]["enabled"], path_prefix=t["capture"]["path_prefix"],
                        mode=t["capture"]["mode"],
                        default_duration_ms=t["capture"]["default_duration"],
                        max_file_size_mb=t["capture"]["max_file_size_mb"]),
        typed=t,
        raw=raw,
        warnings=tuple(warnings),
        loaded_files=tuple(loaded),
        plugin_outputs=plugin_outputs,
    )


def _check_consistency(t: Mapping[str, Any]) -> None:
    """The cross-key checks upstream's load_yaml makes after the typed reads."""
    if t["file_output"]["enabled"] and not t["file_output"]["filename"]:
        raise ConfigError("file_output.filename: required when file_output.enabled is true")
    if t["program_output"]["enabled"] and not t["program_output"]["program"]:
        raise ConfigError("program_output.program: required when program_output.enabled is true")
    if t["syslog_output"]["port"] > 65535:
        raise ConfigError(f"syslog_output.port: expected a port number (1-65535), "
                          f"got {t['syslog_output']['port']}")
    if t["http_output"]["enabled"] and not t["http_output"]["url"]:
        raise ConfigError("http_output.url: required when http_output.enabled is true")
    if t["engine"]["kind"] == "replay" and not t["engine"]["replay"]["capture_file"]:
        raise ConfigError("engine.replay.capture_file: required when engine.kind is 'replay'")
    _check_listen_address(t["webserver"]["listen_address"])


def _check_listen_address(address: str) -> None:
    """Upstream refuses a webserver address that is not an IPv4/IPv6 literal (no host names)."""
    try:
        ipaddress.ip_address(address.strip())
    except ValueError:
        raise ConfigError(f'webserver.listen_address: "{address}" is not a valid IP '
                          "address") from None


def _selections(entries: Sequence[Mapping[str, Any]]) -> list[RuleSelection]:
    result = []
    for i, entry in enumerate(entries):
        # upstream's convert<rule_selection_config> looks at `enable` first
        action = "enable" if "enable" in entry else ("disable" if "disable" in entry else "")
        if not action:
            raise ConfigError(f"rules[{i}]: expected an 'enable' or 'disable' entry")
        sel = entry[action]
        if not sel["rule"] and not sel["tag"]:
            raise ConfigError(f"rules[{i}].{action}: expected a 'rule' or a 'tag'")
        result.append(RuleSelection(action=action, rule=sel["rule"], tag=sel["tag"]))
    return result


def _append_output(entry: Mapping[str, Any]) -> AppendOutput:
    fields: list[str | tuple[str, str]] = []
    for f in entry["extra_fields"]:
        if isinstance(f, Mapping):
            fields.extend((str(k), str(v)) for k, v in f.items())
        else:
            fields.append(f)
    match = entry["match"]
    return AppendOutput(source=match["source"], tags=tuple(match["tags"]), rule=match["rule"],
                        extra_output=entry["extra_output"], extra_fields=tuple(fields),
                        suggested_output=entry["suggested_output"])
