"""The typed description of every falco.yaml key falconet understands.

Upstream validates falco.yaml twice: a JSON schema (`config_json_schema.h`, whose failures are only
logged) and the typed reads in `configuration.cpp` (yaml-cpp's ``as<T>()``, whose failures stop
Falco). We keep one description and give it both roles: a key nobody knows is a *warning* (the
path is named, the value is ignored) and a value of the wrong type is a :class:`ConfigError` that
names the key path.

Typing is *weak*, as upstream's: yaml-cpp scalars are text converted on read, so ``"5"`` is a fine
integer and ``"yes"`` a fine boolean. This is also what makes ``-o key=value`` work, since
overrides are stored as text (see ``config.py``). A null value (``key:`` with nothing after it)
reads as the key's default, as ``as<T>(default)`` does; so does an empty string for a
non-string key (an unset ``${VAR}``). Unlike upstream, whose ``as<T>(default)`` silently falls
back on any value it cannot convert, a wrong type is an error here: a typo'd port should not
quietly become 8765.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any


class ConfigError(ValueError):
    """A falco.yaml / ``-o`` problem that stops start-up; the message names the key path."""


# yaml-cpp's convert<bool> accepts these spellings (case variants listed explicitly upstream).
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_INT_RE = re.compile(r"[-+]?(0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)")


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Spec:
    """One node of the description: ``check`` returns the typed value or raises ConfigError."""

    default: Any = None

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        raise NotImplementedError

    def fail(self, path: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{path}: expected {expected}, got {_show(value)}")


class Bool(Spec):
    def __init__(self, default: bool = False) -> None:
        self.default = default

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None or value == "":
            return self.default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in _TRUE:
            return True
        if isinstance(value, str) and value in _FALSE:
            return False
        raise self.fail(path, "a boolean", value)


class Int(Spec):
    def __init__(self, default: int = 0, minimum: int | None = None) -> None:
        self.default = default
        self.minimum = minimum

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None or value == "":
            return self.default
        result: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            text = value.strip()
            base = 0 if text.lstrip("+-").startswith(("0x", "0o")) else 10
            result = int(text, base)
        if result is None:
            raise self.fail(path, "an integer", value)
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(f"{path}: expected an integer >= {self.minimum}, got {result!r}")
        return result


class Float(Spec):
    def __init__(self, default: float = 0.0) -> None:
        self.default = default

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None or value == "":
            return self.default
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self.fail(path, "a number", value)


class Str(Spec):
    def __init__(self, default: str = "") -> None:
        self.default = default

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None:
            return self.default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise self.fail(path, "a string", value)


class Enum(Spec):
    """A string from a fixed set; ``aliases`` map other spellings to a canonical one."""

    def __init__(self, choices: Sequence[str], default: str, *, nocase: bool = False,
                 aliases: Mapping[str, str] | None = None, lenient: bool = False) -> None:
        self.choices = tuple(choices)
        self.default = default
        self.nocase = nocase
        self.aliases = dict(aliases or {})
        self.lenient = lenient  # a bad value warns and reads as the default

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None or value == "":
            return self.default
        if isinstance(value, str):
            key = value.lower() if self.nocase else value
            key = self.aliases.get(key, key)
            if key in self.choices:
                return key
        error = self.fail(path, "one of " + ", ".join(self.choices), value)
        if self.lenient:
            warnings.append(f"{error} (using '{self.default}')")
            return self.default
        raise error


class List(Spec):
    """A sequence; a lone scalar reads as a one-item list (yaml_helper::get_sequence does)."""

    def __init__(self, item: Spec, default: Sequence[Any] = (), *,
                 scalar_ok: bool = True) -> None:
        self.item = item
        self.default = list(default)
        self.scalar_ok = scalar_ok

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None:
            value = copy.deepcopy(self.default)
        if isinstance(value, list):
            return [self.item.check(v, f"{path}[{i}]", warnings) for i, v in enumerate(value)]
        if self.scalar_ok and isinstance(value, (str, int, float, bool)):
            return [self.item.check(value, f"{path}[0]", warnings)]
        raise self.fail(path, "a list", value)


class Map(Spec):
    """A mapping with known keys; unknown keys warn and are dropped from the typed value."""

    def __init__(self, fields: Mapping[str, Spec], *, required: Sequence[str] = (),
                 fill_defaults: bool = True) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.fill_defaults = fill_defaults

    @property  # type: ignore[override]
    def default(self) -> Any:
        return {k: _copy_default(s) for k, s in self.fields.items()}

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.fail(path or "configuration", "a mapping", value)
        for name in self.required:
            if value.get(name) is None:
                raise ConfigError(f"{_join(path, name)}: required key is missing")
        out: dict[str, Any] = {}
        for key, sub in value.items():
            spec = self.fields.get(str(key))
            if spec is None:
                warnings.append(
                    f"unknown configuration key '{_join(path, str(key))}' (ignored)")
                continue
            out[str(key)] = spec.check(sub, _join(path, str(key)), warnings)
        for key, spec in self.fields.items() if self.fill_defaults else ():
            if key not in out:
                out[key] = _copy_default(spec)
        return out


class FreeMap(Spec):
    """A mapping whose keys are the user's (static_fields, init_config); values as ``values``."""

    def __init__(self, values: Spec | None = None) -> None:
        self.values = values
        self.default: dict[str, Any] = {}

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, "a mapping", value)
        if self.values is None:
            return dict(value)
        return {str(k): self.values.check(v, _join(path, str(k)), warnings)
                for k, v in value.items()}


class OneOf(Spec):
    """The first alternative that fits by shape: scalars to ``scalar``, mappings to ``mapping``."""

    def __init__(self, *, scalar: Spec | None = None, mapping: Spec | None = None,
                 expected: str) -> None:
        self.scalar = scalar
        self.mapping = mapping
        self.expected = expected
        self.default = None

    def check(self, value: Any, path: str, warnings: list[str]) -> Any:
        if isinstance(value, Mapping) and self.mapping is not None:
            return self.mapping.check(value, path, warnings)
        if self.scalar is not None and (value is None or isinstance(value, (str, int, float))):
            return self.scalar.check(value, path, warnings)
        raise self.fail(path, self.expected, value)


def _copy_default(spec: Spec) -> Any:
    if isinstance(spec, (List, Map)):
        return spec.check(None, "", [])
    return copy.deepcopy(spec.default)


PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational",
              "debug")
LOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
LOG_FORMATS = ("console", "json")
#: syslog(3) facility names and codes (<syslog.h>), for ``syslog_output.facility``.
SYSLOG_FACILITIES = {"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
                     "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
                     **{f"local{i}": 16 + i for i in range(8)}}
ENGINE_KINDS = ("kmod", "ebpf", "modern_ebpf", "replay", "nodriver")
UPSTREAM_RULES_FILES = ("/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml",
                        "/etc/falco/rules.d")

_selector = Map({"rule": Str(), "tag": Str()})
_rule_selection = Map({"enable": _selector, "disable": _selector}, fill_defaults=False)
_config_file = OneOf(
    scalar=Str(),
    mapping=Map({"path": Str(), "strategy": Enum(("append", "override", "add-only"), "append",
                                             lenient=True)},
                required=("path",)),
    expected="a path or {path, strategy}")
_plugin = Map({"name": Str(), "library_path": Str(),
               "init_config": OneOf(scalar=Str(), mapping=FreeMap(),
                                    expected="a mapping or a string"),
               "open_params": Str()}, required=("name",))
_append_output = Map({
    "match": Map({"source": Str(), "tags": List(Str()), "rule": Str()}),
    "extra_output": Str(),
    "extra_fields": List(OneOf(scalar=Str(), mapping=FreeMap(Str()),
                               expected="a field name or {name: format}")),
    "suggested_output": Bool(False),
})
_ebpf_buffers = {"buf_size_preset": Int(4), "drop_failed_exit": Bool(False)}

# Defaults are the values upstream's own falco.yaml sets (not the C++ fall-backs, which differ for
# e.g. stdout_output.enabled), except where falconet has nothing to point at (plugins).
SCHEMA = Map({
    "config_files": List(_config_file),
    "watch_config_files": Bool(True),
    "rules_files": List(Str(), UPSTREAM_RULES_FILES),
    "rules_file": List(Str()),
    "rules": List(_rule_selection, scalar_ok=False),
    "engine": Map({
        "kind": Enum(ENGINE_KINDS, "modern_ebpf"),
        "kmod": Map(_ebpf_buffers),
        "ebpf": Map({"probe": Str(""), **_ebpf_buffers}),
        "modern_ebpf": Map({"cpus_for_each_buffer": Int(2, minimum=0), **_ebpf_buffers,
                            "disable_iterators": Bool(False)}),
        "replay": Map({"capture_file": Str()}),
        "nodriver": FreeMap(),
    }),
    "capture": Map({"enabled": Bool(False), "path_prefix": Str("/tmp/falco"),
                    "mode": Enum(("rules", "all_rules"), "rules"),
                    "default_duration": Int(5000, minimum=0),
                    "max_file_size_mb": Int(0, minimum=0)}),
    "load_plugins": List(Str()),
    "plugins": List(_plugin, scalar_ok=False),
    "plugins_hostinfo": Bool(True),
    "time_format_iso_8601": Bool(False),
    "buffer_format_base64": Bool(False),
    "priority": Enum(PRIORITIES, "debug", nocase=True, aliases={"info": "informational"}),
    "json_output": Bool(False),
    "json_include_output_property": Bool(True),
    "json_include_message_property": Bool(False),
    "json_include_output_fields_property": Bool(True),
    "json_include_tags_property": Bool(True),
    "buffered_outputs": Bool(False),
    "rule_matching": Enum(("first", "all"), "first", nocase=True),
    "outputs_queue": Map({"capacity": Int(0, minimum=0)}),
    "append_output": List(_append_output, [{"suggested_output": True}], scalar_ok=False),
    "static_fields": FreeMap(Str()),
    "stdout_output": Map({"enabled": Bool(True)}),
    # host/port/proto/facility are falconet's: remote delivery (Falco only calls syslog(3)).
    "syslog_output": Map({"enabled": Bool(True), "host": Str(), "port": Int(514, minimum=1),
                          "proto": Enum(("udp", "tcp"), "udp", nocase=True),
                          "facility": Enum(tuple(SYSLOG_FACILITIES), "user", nocase=True)}),
    "file_output": Map({"enabled": Bool(False), "keep_alive": Bool(False),
                        "filename": Str("./events.txt")}),
    "program_output": Map({"enabled": Bool(False), "keep_alive": Bool(False),
                           "program": Str("jq '{text: .output}' | curl -d @- -X POST "
                                          "https://hooks.slack.com/services/XXX")}),
    "http_output": Map({
        "enabled": Bool(False), "url": Str(), "user_agent": Str("falcosecurity/falco"),
        "insecure": Bool(False), "ca_cert": Str(), "ca_bundle": Str(),
        "ca_path": Str("/etc/ssl/certs"), "mtls": Bool(False),
        "client_cert": Str("/etc/ssl/certs/client.crt"),
        "client_key": Str("/etc/ssl/certs/client.key"), "echo": Bool(False),
        "compress_uploads": Bool(False), "keep_alive": Bool(False),
        "max_consecutive_timeouts": Int(5, minimum=0)}),
    "webserver": Map({
        "enabled": Bool(True), "threadiness": Int(0, minimum=0),
        "listen_port": Int(8765, minimum=0), "listen_address": Str("0.0.0.0"),
        "k8s_healthz_endpoint": Str("/healthz"), "prometheus_metrics_enabled": Bool(False),
        "ssl_enabled": Bool(False), "ssl_certificate": Str("/etc/falco/falco.pem")}),
    "log_stderr": Bool(True),
    "log_syslog": Bool(True),
    "log_level": Enum(LOG_LEVELS, "info"),
    "log_format": Enum(LOG_FORMATS, "console"),  # falconet extension
    "libs_logger": Map({"enabled": Bool(True),
                        "severity": Enum(("fatal", "critical", "error", "warning", "notice",
                                          "info", "debug", "trace"), "info")}),
    "output_timeout": Int(2000, minimum=0),
    "metrics": Map({
        "enabled": Bool(False), "interval": Str("1h"), "output_rule": Bool(True),
        "output_file": Str(), "rules_counters_enabled": Bool(True),
        "resource_utilization_enabled": Bool(True), "state_counters_enabled": Bool(True),
        "kernel_event_counters_enabled": Bool(True),
        "kernel_event_counters_per_cpu_enabled": Bool(False),
        "libbpf_stats_enabled": Bool(True), "plugins_metrics_enabled": Bool(True),
        "kernel_iter_event_counters_enabled": Bool(True),
        "jemalloc_stats_enabled": Bool(False), "convert_memory_to_mb": Bool(True),
        "include_empty_values": Bool(False)}),
    # Accepted so an upstream falco.yaml loads without warnings; the syscall plugin reads them.
    "syscall_event_timeouts": Map({"max_consecutives": Int(1000, minimum=1)}),
    "syscall_event_drops": Map({
        "threshold": Float(0.1),
        "actions": List(Enum(("ignore", "log", "alert", "exit"), "log"), ["log", "alert"]),
        "rate": Float(0.03333), "max_burst": Float(1), "simulate_drops": Bool(False)}),
    "base_syscalls": Map({"custom_set": List(Str()), "repair": Bool(False), "all": Bool(False)}),
    "falco_libs": Map({"thread_table_size": Int(262144, minimum=0),
                       "thread_table_auto_purging_interval_s": Int(300, minimum=0),
                       "thread_table_auto_purging_thread_timeout_s": Int(300, minimum=0),
                       "snaplen": Int(80, minimum=0)}),
})
