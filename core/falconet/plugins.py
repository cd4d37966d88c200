"""Finding plugins (entry points of group ``falconet``) and loading the ones falco.yaml selects.

``discover()`` asks every installed plugin module, once, which ``Plugin`` objects it brings.
``load_plugins()`` applies falco.yaml's ``plugins:``/``load_plugins:`` with Falco's semantics and
resolves everything the engine needs into plain attributes (sources, field tables, parse
functions, outputs), so nothing per event goes through pluggy.

Where falconet differs from Falco, on purpose: ``library_path`` is not opened (a plugin is found by
its ``name``; a path naming an upstream ``.so`` is logged as mapped to the Python plugin), and
plugin fields for a source nothing loads are accepted (Falco refuses such a plugin as "not
compatible with any known event source"; here the source's rules validate against them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pluggy

from falconet import hookspecs
from falconet.api import EventBatch, EventSource, OutputSpec, Plugin, SourceContext
from falconet.common_fields import common_field_table, json_event_text, json_field_specs
from falconet.config import Config, PluginConfig
from falconet.fields import FieldRegistry, FieldTable, find_upstream_fields_tsv, schema_registry
from falconet.log import get_logger

__all__ = [
    "SYSCALL_LIVE_KINDS",
    "SYSCALL_SOURCE",
    "Catalogue",
    "LoadedPlugin",
    "LoadedSource",
    "PluginError",
    "PluginSet",
    "discover",
    "load_plugins",
    "plugin_manager",
]

#: distributions that provide falconet's own plugins, for the "not installed" hint
KNOWN_DISTRIBUTIONS = {
    "json": "falconet",
    "k8saudit": "falconet-k8s-audit",
    "cloudtrail": "falconet-cloudtrail",
}

#: ``engine.kind`` values with a live syscall driver: the installed plugin that provides the
#: ``syscall`` source runs as that driver (falconet's eBPF probe, whatever upstream driver the
#: kind names); with ``replay`` it reads ``engine.replay.capture_file``; ``nodriver`` leaves the
#: syscall source to ``plugins:`` entries, or to upstream's schema-only field list
SYSCALL_LIVE_KINDS = ("modern_ebpf", "ebpf", "kmod")
SYSCALL_SOURCE = "syscall"

#: fields every plugin source carries (``evt.*``; ``json.*``/``jevt.*`` on JSON sources): tables
#: may repeat them without overlapping
COMMON_FIELDS = frozenset(
    [spec.name for spec in common_field_table("")] + [spec.name for spec in json_field_specs()]
)

_BLANKS = " \t\n\v\f\r"  # what upstream's trim() strips


class PluginError(Exception):
    """A plugin cannot be found, configured or combined with the others."""


# --- discovery ----------------------------------------------------------------------------------


class Catalogue(dict[str, Plugin]):
    """The installed plugins by name, with where each came from and what failed to load."""

    def __init__(self) -> None:
        super().__init__()
        #: plugin name -> "distribution (module)" that registered it
        self.origins: dict[str, str] = {}
        #: entry point or module -> why it could not be loaded (it is left out, others work)
        self.failures: dict[str, str] = {}


def plugin_manager(modules: Iterable[object] = ()) -> pluggy.PluginManager:
    """A plugin manager holding the ``falconet`` hookspecs and ``modules`` (objects with hook
    implementations); ``discover`` adds the entry points."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module in modules:
        pm.register(module)
    return pm


def _load_entry_points(pm: pluggy.PluginManager, catalogue: Catalogue) -> dict[int, str]:
    """pluggy's loader, so that a broken entry point leaves the others (after a failure the rest
    load one by one), and an entry point name that a second distribution uses too (pluggy would
    skip it silently) is registered as ``name@distribution``. Returns module id -> origin for
    those."""
    firsts: dict[str, str] = {}  # entry point name -> the distribution pluggy loads it from
    seconds: list[tuple[str, metadata.EntryPoint]] = []
    for dist in metadata.distributions():
        eps = [ep for ep in dist.entry_points if ep.group == hookspecs.PROJECT]
        if not eps:
            continue
        dist_name = dist.metadata["Name"] or "?"  # read only for plugin distributions: slow
        for ep in eps:
            first = firsts.setdefault(ep.name, dist_name)
            if first != dist_name:
                seconds.append((dist_name, ep))
    try:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    except Exception:
        for name, dist_name in firsts.items():
            try:
                pm.load_setuptools_entrypoints(hookspecs.PROJECT, name=name)
            except Exception as exc:  # a broken plugin must not hide the others
                catalogue.failures[f"{dist_name}: entry point {name}"] = _describe(exc)
    extra: dict[int, str] = {}
    for dist_name, ep in seconds:
        try:
            module = ep.load()
            if not pm.is_registered(module):
                pm.register(module, name=f"{ep.name}@{dist_name}")
                extra[id(module)] = f"{dist_name} ({_module_name(module)})"
        except Exception as exc:
            catalogue.failures[f"{dist_name}: entry point {ep.name}"] = _describe(exc)
    return extra


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _origins(pm: pluggy.PluginManager) -> dict[int, str]:
    origins = {}
    for module, dist in pm.list_plugin_distinfo():
        origins[id(module)] = f"{dist.project_name} ({_module_name(module)})"
    return origins


def _module_name(module: object) -> str:
    if isinstance(module, ModuleType):
        return module.__name__
    return getattr(module, "__module__", None) or type(module).__name__


def discover(*, entry_points: bool = True, modules: Iterable[object] = ()) -> Catalogue:
    """Every installed plugin by name: each ``falconet`` entry point's module (and each of
    ``modules``) is asked once, through ``falconet_register_plugins``. A module that fails to
    import or whose hook raises is left out and recorded in ``Catalogue.failures``; two plugins
    with one name are a PluginError naming both providers."""
    catalogue = Catalogue()
    pm = plugin_manager()
    origins = _load_entry_points(pm, catalogue) if entry_points else {}
    for module in modules:
        pm.register(module)
    origins.update(_origins(pm))
    for impl in pm.hook.falconet_register_plugins.get_hookimpls():
        origin = origins.get(id(impl.plugin)) or _module_name(impl.plugin)
        register = _registrar(catalogue, origin)
        try:
            impl.function(*([register] if impl.argnames else []))
        except PluginError:
            raise
        except Exception as exc:
            catalogue.failures[origin] = _describe(exc)
    for where, why in catalogue.failures.items():
        get_logger(component="plugins").error("plugin failed to load", provider=where,
                                               error=why)
    return catalogue


def _registrar(catalogue: Catalogue, origin: str) -> Callable[[Plugin], None]:
    def register(plugin: Plugin) -> None:
        if not isinstance(plugin, Plugin):
            raise PluginError(f"{origin} registered {type(plugin).__name__!r}, which is not a "
                              "falconet.api.Plugin")
        if not plugin.name:
            raise PluginError(f"{origin} registered a plugin without a name")
        if plugin.name in catalogue:
            raise PluginError(
                f"plugin name '{plugin.name}' is registered twice: by "
                f"{catalogue.origins[plugin.name]} and by {origin}; uninstall one of them")
        catalogue[plugin.name] = plugin
        catalogue.origins[plugin.name] = origin

    return register


# --- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin selected by falco.yaml, with its validated configuration."""

    plugin: Plugin
    init_config: Mapping[str, Any]
    open_params: str
    #: as written in falco.yaml (not opened; see the module docstring)
    library_path: str = ""


@dataclass(frozen=True)
class LoadedSource:
    """An event source of a loaded plugin."""

    source: EventSource
    loaded: LoadedPlugin

    def context(self, log: Any = None) -> SourceContext:
        """A fresh context to open (or replay) the source with."""
        return SourceContext(open_params=self.loaded.open_params,
                             init_config=self.loaded.init_config, log=log)


@dataclass
class PluginSet:
    """Everything the loaded plugins bring, resolved once: plain attributes for the engine."""

    loaded: list[LoadedPlugin] = field(default_factory=list)
    registry: FieldRegistry = field(default_factory=FieldRegistry)
    sources: dict[str, LoadedSource] = field(default_factory=dict)
    #: source -> the parse functions that see its batches, in load order
    parsers: dict[str, list[Callable[[EventBatch], None]]] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    #: the ``syscall`` source when ``engine.kind`` selected it (not a ``plugins:`` entry: it is
    #: in ``sources`` but not in ``loaded``, as upstream's driver is no plugin); None otherwise.
    #: It runs live only with a ``SYSCALL_LIVE_KINDS`` kind and rules that need it (app.py)
    driver: LoadedSource | None = None

    def versions(self) -> dict[str, str]:
        """Loaded plugin name -> the version ``required_plugin_versions`` is checked against."""
        return {lp.plugin.name: lp.plugin.falco_version for lp in self.loaded}


def load_plugins(config: Config, available: Mapping[str, Plugin] | None = None, *,
                 fields_tsv: Path | None = None) -> PluginSet:
    """Load the plugins falco.yaml selects, as Falco does: ``load_plugins`` absent means every
    ``plugins`` entry (in YAML order), present means those names in that order. ``available``
    defaults to ``discover()``; ``fields_tsv`` to upstream's field list when it can be found
    (without it, only loaded plugins' sources and an empty ``syscall`` table exist)."""
    catalogue = discover() if available is None else available
    log = get_logger(component="plugins")
    loaded = [_load_one(entry, catalogue, log) for entry in _selected(config)]
    plugin_set = PluginSet(loaded=loaded)
    plugin_set.sources = _sources(loaded)
    driver = _syscall_driver(config, catalogue, plugin_set.sources)
    if driver is not None:
        plugin_set.sources[SYSCALL_SOURCE] = plugin_set.driver = driver
    plugin_set.registry = _registry([*loaded, *([driver.loaded] if driver else [])],
                                    plugin_set.sources, fields_tsv)
    plugin_set.parsers = _parsers(loaded, plugin_set.registry)
    plugin_set.outputs = _outputs(loaded)
    return plugin_set


def _syscall_driver(config: Config, available: Mapping[str, Plugin],
                    sources: Mapping[str, LoadedSource]) -> LoadedSource | None:
    """The installed plugin with the ``syscall`` source, unless ``engine.kind`` is ``nodriver``
    or a ``plugins:`` entry provides that source already (its fields and its replay reader
    serve ``engine.kind: replay`` and ``-e`` too)."""
    if config.engine_kind == "nodriver" or SYSCALL_SOURCE in sources:
        return None
    for plugin in available.values():
        if plugin.source is not None and plugin.source.name == SYSCALL_SOURCE:
            return LoadedSource(plugin.source, LoadedPlugin(plugin=plugin, init_config={},
                                                            open_params=""))
    return None


def _selected(config: Config) -> list[PluginConfig]:
    """falco.yaml's ``plugins:`` entries that ``load_plugins:`` selects (configuration.cpp)."""
    if config.load_plugins is None:
        entries = list(config.plugins)
    else:
        entries = []
        for name in config.load_plugins:
            entry = next((p for p in config.plugins if p.name == name), None)
            if entry is None:
                raise PluginError(
                    f"Cannot load plugin '{name}': plugin config not found for given name")
            entries.append(entry)
    names: set[str] = set()
    for entry in entries:
        if entry.name in names:  # sinsp_plugin_manager::add
            raise PluginError(f"found another plugin with name {entry.name}. Aborting.")
        names.add(entry.name)
    return entries


def _load_one(entry: PluginConfig, available: Mapping[str, Plugin], log: Any) -> LoadedPlugin:
    plugin = available.get(entry.name)
    if plugin is None:
        raise PluginError(_not_installed(entry.name, available))
    if entry.library_path:
        log.notice("plugin library_path is not opened: falconet uses the installed Python plugin "
                 "of the same name", plugin=entry.name, library_path=entry.library_path,
                 provided_by=getattr(available, "origins", {}).get(entry.name, "?"))
    init_config = _init_config(entry.name, entry.init_config)
    if plugin.init_schema is not None:
        init_config = _coerce_scalars(plugin.init_schema, init_config)
    _validate(plugin, init_config)
    return LoadedPlugin(plugin=plugin, init_config=init_config,
                        open_params=entry.open_params.strip(_BLANKS),
                        library_path=entry.library_path)


def _not_installed(name: str, available: Mapping[str, Plugin]) -> str:
    installed = ", ".join(sorted(available)) or "none"
    dist = KNOWN_DISTRIBUTIONS.get(name, f"falconet-{name}")
    text = (f"Cannot load plugin '{name}': no installed falconet plugin has this name "
            f"(installed plugins: {installed}); install the package that provides it, "
            f"e.g. pip install {dist}")
    failures = getattr(available, "failures", None)
    if failures:
        text += "; these failed to load: " + "; ".join(f"{k}: {v}" for k, v in failures.items())
    return text


def _init_config(name: str, raw: Mapping[str, Any] | str) -> dict[str, Any]:
    """falco.yaml's ``init_config``: a YAML mapping or a JSON string (empty: ``{}``)."""
    if isinstance(raw, Mapping):
        value: Any = dict(raw)
    elif not raw.strip(_BLANKS):
        value = {}
    else:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise PluginError(f"plugin '{name}' init_config: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise PluginError(f"plugin '{name}' init_config: expected a mapping (a JSON object), "
                          f"got {type(value).__name__}")
    return value


def _scalar(text: str, kind: object) -> Any:
    """``text`` read as the JSON-schema type ``kind`` (integer, number, boolean), or None."""
    word = text.strip()
    if kind == "boolean":
        return {"true": True, "false": False}.get(word.lower())
    try:
        number: int | float = int(word)
    except ValueError:
        if kind != "number":
            return None
        try:
            number = float(word)
        except ValueError:
            return None
    return number if kind in ("integer", "number") else None


def _coerce_scalars(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` with each string that the schema types as an integer, number or boolean read
    as one (``"5"`` -> 5, ``"false"`` -> False): ``-o plugins[0].init_config.key=5`` gives a
    string, as every ``-o`` value is, and Falco reads such strings by the type it expects. A
    string that does not read as that type is left for the schema check to report."""
    properties = schema.get("properties")
    if not isinstance(value, dict) or not isinstance(properties, Mapping):
        return value
    out = dict(value)
    for key, item in value.items():
        sub = properties.get(key)
        if not isinstance(sub, Mapping):
            continue
        if isinstance(item, str) and (parsed := _scalar(item, sub.get("type"))) is not None:
            out[key] = parsed
        elif isinstance(item, dict):
            out[key] = _coerce_scalars(sub, item)
    return out


def _validate(plugin: Plugin, value: Mapping[str, Any]) -> None:
    """Check ``init_config`` against the plugin's JSON schema; the error names the key path."""
    if plugin.init_schema is not None:
        check_schema(plugin.init_schema, value, f"plugin '{plugin.name}' init_config",
                     bad_schema=f"plugin '{plugin.name}' has an invalid init_schema")


def check_schema(schema: Mapping[str, Any], value: Any, what: str, *, bad_schema: str) -> None:
    """Validate ``value`` (a plugin's ``init_config``, a plugin output's settings) against a
    plugin's JSON schema; the PluginError says ``what`` and the key path of the first error."""
    validator_cls = jsonschema.validators.validator_for(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise PluginError(f"{bad_schema}: {exc.message}") from None
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(value))
    if error is None:
        return
    where = _key_path(error.absolute_path)
    raise PluginError(f"{what}: {where}: {error.message}" if where else f"{what}: {error.message}")


def _key_path(steps: Iterable[str | int]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _sources(loaded: Sequence[LoadedPlugin]) -> dict[str, LoadedSource]:
    sources: dict[str, LoadedSource] = {}
    ids: dict[int, str] = {}
    for lp in loaded:
        source = lp.plugin.source
        if source is None:
            continue
        other = sources.get(source.name)
        if other is not None:
            raise PluginError(
                f"plugins '{other.loaded.plugin.name}' and '{lp.plugin.name}' both provide the "
                f"event source '{source.name}': load only one of them")
        if source.plugin_id:
            if source.plugin_id in ids:  # sinsp_plugin_manager::add
                raise PluginError(f"found another plugin with ID {source.plugin_id}. Aborting.")
            ids[source.plugin_id] = lp.plugin.name
        sources[source.name] = LoadedSource(source, lp)
    return sources


def _registry(loaded: Sequence[LoadedPlugin], sources: Mapping[str, LoadedSource],
              fields_tsv: Path | None) -> FieldRegistry:
    """Upstream's schema-only tables, with each source a plugin brings replaced by that plugin's
    table (plus the common fields) and every other plugin's fields added to their sources. The
    ``syscall`` table is the exception: its plugin's fields replace the schema-only ones of the
    same name and the others stay, so rules using fields the live source does not extract yet
    still load (their values are absent)."""
    path = fields_tsv or find_upstream_fields_tsv()
    if path is not None:
        registry = schema_registry(path)
    else:
        registry = FieldRegistry()
        registry.table("syscall")
    for name, ls in sources.items():
        if name != SYSCALL_SOURCE:
            registry.replace_table(_seed(name, ls.source, ls.loaded.plugin.name))
    contributions: list[tuple[LoadedPlugin, FieldTable]] = []
    for lp in loaded:
        contributions.extend((lp, table) for table in _tables(lp.plugin))
    # a source's own plugin goes first, so its evt.pluginname/evt.plugininfo are the ones kept
    contributions.sort(key=lambda c: 0 if _owner(sources, c[1].source) is c[0] else 1)
    provided: dict[str, dict[str, str]] = {}
    for lp, table in contributions:
        known = registry.has_source(table.source)
        target = registry.table(table.source)
        if not known and table.source != "syscall":
            for spec in common_field_table(table.source):
                target.add(spec)
        mine = provided.setdefault(table.source, {})
        for spec in table:
            if spec.name in mine:
                if spec.name in COMMON_FIELDS:
                    continue
                raise PluginError(  # falco's init_inspectors.cpp
                    f"Plugin '{lp.plugin.name}' supports extraction of field '{spec.name}' that "
                    f"is overlapping for source '{table.source}'")
            target.fields[spec.name] = spec  # replaces a schema-only or common placeholder
            mine[spec.name] = lp.plugin.name
    return registry


def _owner(sources: Mapping[str, LoadedSource], source: str) -> LoadedPlugin | None:
    ls = sources.get(source)
    return None if ls is None else ls.loaded


def _seed(name: str, source: EventSource, plugin_name: str) -> FieldTable:
    """The fields a loaded source has before any plugin's table: ``evt.*``, and ``json.*``/
    ``jevt.*`` when its payload is JSON (the syscall source brings all its own fields)."""
    table = FieldTable(name)
    if name == "syscall":
        return table
    info = json_event_text if source.json_payload else None
    for spec in common_field_table(name, plugin_name=plugin_name, plugin_info=info):
        table.add(spec)
    if source.json_payload:
        for spec in json_field_specs():
            table.add(spec)
    return table


def _tables(plugin: Plugin) -> list[FieldTable]:
    if plugin.fields is None:
        return []
    try:
        tables = list(plugin.fields())
    except Exception as exc:
        raise PluginError(f"plugin '{plugin.name}': building its field tables failed: "
                          f"{_describe(exc)}") from exc
    for table in tables:
        if not isinstance(table, FieldTable):
            raise PluginError(f"plugin '{plugin.name}': fields() returned "
                              f"{type(table).__name__!r}, not a FieldTable")
    return tables


def _parsers(loaded: Sequence[LoadedPlugin],
             registry: FieldRegistry) -> dict[str, list[Callable[[EventBatch], None]]]:
    parsers: dict[str, list[Callable[[EventBatch], None]]] = {}
    for lp in loaded:
        for parser in lp.plugin.parsers:
            for source in parser.sources or registry.sources:
                parsers.setdefault(source, []).append(parser.parse)
    return parsers


def _outputs(loaded: Sequence[LoadedPlugin]) -> dict[str, OutputSpec]:
    outputs: dict[str, OutputSpec] = {}
    owners: dict[str, str] = {}
    for lp in loaded:
        for spec in lp.plugin.outputs:
            if spec.name in outputs:
                raise PluginError(f"plugins '{owners[spec.name]}' and '{lp.plugin.name}' both "
                                  f"provide the output '{spec.name}': load only one of them")
            outputs[spec.name] = spec
            owners[spec.name] = lp.plugin.name
    return outputs
