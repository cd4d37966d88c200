"""Start-up wiring, in upstream's order: config -> plugins -> rules -> outputs -> engine.

``run(RunOptions) -> int`` is what the ``falconet`` command calls to process events (live
sources, or a replay with ``--source NAME -e PATH``). Exit codes follow Falco: 0 when the run
ended normally (end of the replay, ``-M`` elapsed, SIGINT/SIGTERM), 1 on a start-up error
(printed as ``Error: ...`` on stderr, like ``falco``) or when a source failed.

Start-up errors are collected as :class:`StartupError`; everything after start-up is owned by
the engine, the dispatcher and the reloader. ``build_rules`` is used both at start-up and by a
reload (SIGHUP, ``watch_config_files``), so both load rules exactly alike.

The webserver runs in live mode only (as upstream: not with a capture file), and outputs are not
created in ``--dry-run``. ``-w FILE`` records a live source that can record (``EventSource
.can_record``): the source gets the path in ``SourceContext.record_path`` and writes its raw
input there while rules run as usual. ``engine.kind: replay`` in falco.yaml replays
``engine.replay.capture_file`` through the ``syscall`` source, as ``--source syscall -e FILE``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import time
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from falconet.api import Alert, EventSource, Output, OutputContext, RuleInfo, SourceContext
from falconet.config import Config, ConfigError, load_config
from falconet.dispatch import Dispatcher
from falconet.engine import BatchStream, Engine, RulesState, settle_heap
from falconet.fields import FieldRegistry, FieldTable
from falconet.log import configure_logging, get_logger
from falconet.outputs import builtin_outputs
from falconet.plugins import (
    SYSCALL_LIVE_KINDS,
    SYSCALL_SOURCE,
    PluginError,
    PluginSet,
    check_schema,
    load_plugins,
)
from falconet.reload import FileWatcher, Reloader, ReloadError, install_sighup, start_tasks
from falconet.replay import read_json_lines
from falconet.rules_files import expand_rules_paths
from falconet.ruleset.alerts import (
    AlertFormatter,
    AlertOptions,
    clock_ns,
    escape_line,
    iso8601_ns,
)
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.model import Priority
from falconet.ruleset.report import result_as_text
from falconet.ruleset.ruleset import Ruleset
from falconet.stats import EngineStats
from falconet.timebounds import TimeBoundError, parse_bound
from falconet.webserver import WebServer, WebServerError, start_webserver, versions_info

__all__ = ["EXIT_FAILURE", "EXIT_OK", "RunOptions", "StartupError", "build_rules", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1
HOT_RESTART_FAILURE = "Falco internal: hot restart failure"
INTERNAL_SOURCE = "internal"

_log = get_logger()


@dataclass
class RunOptions:
    """The command-line options that shape a run (the CLI fills it)."""

    config_path: str | None = None
    overrides: tuple[str, ...] = ()
    rules_paths: tuple[str, ...] = ()  # -r: replaces rules_files
    replay_source: str | None = None  # --source
    replay_path: str | None = None  # -e
    record_source: str | None = None  # the --source that -w records
    record_path: str | None = None  # -w
    duration_s: float | None = None  # -M
    since: str | None = None  # --since
    until: str | None = None  # --until
    dry_run: bool = False
    enable_sources: tuple[str, ...] = ()
    disable_sources: tuple[str, ...] = ()
    unbuffered: bool = False  # -U
    progress: bool | None = None  # None: when stderr is a terminal


class StartupError(Exception):
    """Stops the run before events flow; printed as ``Error: <message>``."""


# --- config -------------------------------------------------------------------------------------


def load_run_config(options: RunOptions, *, echo_warnings: bool = True) -> Config:
    overrides = list(options.overrides)
    if options.unbuffered:
        overrides.append("buffered_outputs=false")
    try:
        config = load_config(options.config_path, overrides)
    except ConfigError as exc:
        raise StartupError(str(exc)) from exc
    if echo_warnings:
        for warning in config.warnings:
            print(f"Warning: {warning}", file=sys.stderr)
    return config


# --- plugins ------------------------------------------------------------------------------------


def load_run_plugins(config: Config) -> PluginSet:
    try:
        return load_plugins(config)
    except (PluginError, FileNotFoundError) as exc:
        raise StartupError(str(exc)) from exc


# --- rules --------------------------------------------------------------------------------------


@dataclass
class RulesBuild:
    state: RulesState
    files: list[str]
    loaded: int
    enabled: int
    warnings: int
    config: Config


def alert_options(config: Config) -> AlertOptions:
    return AlertOptions(
        json_output=config.json_output,
        json_include_output_property=config.json_include_output_property,
        json_include_tags_property=config.json_include_tags_property,
        json_include_message_property=config.json_include_message_property,
        json_include_output_fields_property=config.json_include_output_fields_property,
        time_format_iso_8601=config.time_format_iso_8601,
        append_output=config.append_output,
    )


def build_rules(config: Config, rules_paths: Sequence[str], registry: FieldRegistry,
                plugin_versions: Mapping[str, str], *, announce: bool = True) -> RulesBuild:
    """Load the rules files (``-r`` paths, else ``rules_files``), check plugin requirements,
    select and index rules, build formatters. Raises ReloadError with upstream's text."""
    entries = list(rules_paths) or list(config.rules_files)
    if not entries:
        raise ReloadError("You must specify at least one rules file/directory via -r or a "
                          "rules_file entry in falco.yaml")
    files = [str(p) for p in expand_rules_paths(entries)]
    loader = RulesLoader(registry)
    if announce:
        _log.info("\n".join(["Loading rules from:", *(f"   {f}" for f in files)]))
    warnings = 0
    error = ""
    for name in files:
        result = loader.load_file(name)
        if not result.successful:
            error = result_as_text(result, loader.contents, verbose=True)
            break
        if result.warnings:
            warnings += len(result.warnings)
            if announce:
                print(result_as_text(result, loader.contents, verbose=True), file=sys.stderr)
    unmet = loader.check_plugin_requirements(dict(plugin_versions))
    if unmet:
        error = unmet[0]  # upstream gives plugin requirements priority
    if error:
        raise ReloadError(error.rstrip("\n"))
    ruleset = Ruleset(loader.rules, registry, min_priority=Priority.parse(config.priority),
                      first_match=config.rule_matching == "first")
    for sel in config.rules_selection:
        verb = "Enabling" if sel.action == "enable" else "Disabling"
        if sel.rule and announce:
            _log.info(f"{verb} rules with name: {sel.rule}")
        if sel.tag and announce:
            _log.info(f"{verb} rules with tag: {sel.tag}")
    ruleset.apply_selection(config.rules_selection)
    options = alert_options(config)
    formatters = {rule.name: AlertFormatter(rule, registry.table(rule.source), options)
                  for rule in ruleset.enabled_rules}
    order = {rule.name: i for i, rule in enumerate(loader.rules)}
    return RulesBuild(RulesState(ruleset, formatters, order), files, len(loader.rules),
                      len(formatters), warnings, config)


# --- sources ------------------------------------------------------------------------------------


def _event_source(plugins: PluginSet, name: str) -> EventSource | None:
    loaded = plugins.sources.get(name)
    return None if loaded is None else loaded.source


#: ``--since``/``--until`` in ns since the epoch (either may be None), or None without them
Window = tuple[int | None, int | None] | None


def time_window(options: RunOptions) -> Window:
    """``--since``/``--until`` read once, at start-up (durations count back from then)."""
    if options.since is None and options.until is None:
        return None
    now = time.time_ns()
    try:
        since = None if options.since is None else parse_bound(options.since, now)
        until = None if options.until is None else parse_bound(options.until, now)
    except TimeBoundError as exc:
        raise StartupError(f"--since/--until: {exc}") from exc
    if since is not None and until is not None and until <= since:
        raise StartupError(f"--since {options.since} must be before --until {options.until}")
    return since, until


def _source_context(plugins: PluginSet, name: str, stats: EngineStats,
                    open_params: str | None = None, window: Window = None) -> SourceContext:
    """The loaded plugin's context (or an empty one), counting into the engine's stats."""
    log = get_logger(source=name)
    loaded = plugins.sources.get(name)
    ctx = loaded.context(log) if loaded is not None else SourceContext("", {}, log=log)
    if open_params is not None:
        ctx.open_params = open_params
    if window is not None:
        ctx.since_ns, ctx.until_ns = window
    stats.source(name).counters = ctx.counters
    return ctx


def replay_stream(options: RunOptions, plugins: PluginSet, stats: EngineStats,
                  progress: bool, window: Window = None) -> dict[str, BatchStream]:
    """``--source NAME -e PATH``: the source's own reader, or the generic JSON-lines one."""
    name = options.replay_source or ""
    path = Path(options.replay_path or "")
    if not path.exists():
        raise StartupError(f"Could not open replay input {path}: no such file or directory")
    source = _event_source(plugins, name)
    if source is None and not plugins.registry.has_source(name):
        known = sorted(set(plugins.sources) | set(plugins.registry.sources))
        raise StartupError(f"Unknown event source '{name}' (known: {', '.join(known)})")
    ctx = _source_context(plugins, name, stats, str(path), window)
    ctx.progress = progress
    if source is not None and source.replay is not None:
        _log.info(f"Opening '{name}' source with a replay of {path}")
        try:  # a reader may check its input before the first batch
            return {name: source.replay(path, ctx)}
        except (OSError, ValueError) as exc:
            raise StartupError(f"Could not open replay input {path}: {exc}") from exc
    # without a loaded source, the field table decides: schema-only fields (upstream's syscall
    # list) read pre-extracted values; a plugin's extractors read the JSON payload
    schema = (any(spec.make_extractor is None for spec in plugins.registry.table(name))
              if source is None else not source.json_payload)
    _log.info(f"Opening '{name}' source with a JSON-lines replay of {path}")
    return {name: read_json_lines(name, path, ctx.counters, schema=schema,
                                  progress=progress, log=ctx.log)}


def enabled_live_sources(options: RunOptions, plugins: PluginSet,
                         rule_sources: Set[str] = frozenset(),
                         engine_kind: str = "modern_ebpf") -> list[str]:
    """Loaded sources, narrowed by --enable-source / --disable-source (as upstream). The
    syscall driver (``engine.kind``) runs when its kind captures live and a loaded rule has
    source ``syscall``, or when --enable-source or -w names it."""
    names = list(plugins.sources)
    for wanted in (*options.enable_sources, *options.disable_sources):
        if wanted not in plugins.sources:
            raise StartupError(f"Attempted enabling/disabling unknown event source: {wanted}")
    if plugins.driver is not None and not (
            engine_kind in SYSCALL_LIVE_KINDS
            and (SYSCALL_SOURCE in rule_sources or SYSCALL_SOURCE in options.enable_sources
                 or (options.record_source == SYSCALL_SOURCE and options.record_path))):
        names.remove(SYSCALL_SOURCE)
    if options.enable_sources:
        names = [n for n in names if n in options.enable_sources]
    names = [n for n in names if n not in options.disable_sources]
    if not names:
        if plugins.driver is not None and len(plugins.sources) == 1:
            hint = (" (the syscall source runs when a loaded rule has source syscall, or with "
                    "--enable-source syscall; other sources come from 'plugins:' entries in "
                    "falco.yaml; or replay a file with --source NAME -e PATH)")
        elif not plugins.sources:
            hint = (" (no loaded plugin provides a live source: list one under 'plugins:' and "
                    "'load_plugins:' in falco.yaml, or replay a file with --source NAME -e PATH)")
        else:
            hint = ""
        raise StartupError(f"Must enable at least one event source{hint}")
    return names


def recording(options: RunOptions, plugins: PluginSet) -> tuple[str, Path] | None:
    """``-w FILE``: (source, path) to record, checked before anything starts; None without -w.
    (Whether that source is enabled is checked once the enabled sources are known.)"""
    if options.record_path is None:
        return None
    name = options.record_source or "syscall"
    path = Path(options.record_path)
    why = ""
    if name not in plugins.sources:
        why = f"no loaded plugin provides the source '{name}'"
    elif not plugins.sources[name].source.can_record:
        why = f"the source '{name}' cannot record its events"
    elif path.is_dir() or not path.parent.is_dir():
        why = f"{path} is a directory" if path.is_dir() else f"no directory {path.parent}"
    if why:
        raise StartupError(f"Cannot record with -w: {why}")
    return name, path


def rule_infos(state: RulesState, source: str) -> tuple[RuleInfo, ...]:
    """The enabled rules of ``source``, as ``SourceContext.rules`` hands them to it."""
    return tuple(RuleInfo(rule.name, rule.event_types)
                 for rule in state.ruleset.enabled_rules if rule.source == source)


def unextracted_fields(state: RulesState, source: str,
                       table: FieldTable) -> dict[str, list[str]]:
    """Rule name -> the fields its condition or output reads that nothing extracts for
    ``source`` (schema-only fields of upstream's list: absent on live events)."""
    out: dict[str, list[str]] = {}
    for rule in state.ruleset.enabled_rules:
        if rule.source != source:
            continue
        labels = list(rule.checked.fields)
        formatter = state.formatters.get(rule.name)
        if formatter is not None:
            labels += [t.text for t in formatter.message.field_tokens if not t.has_transformer]
        missing: list[str] = []
        for label in labels:
            found = table.lookup(label.split("[", 1)[0])
            if (found is not None and found[0].make_extractor is None
                    and found[0].name not in missing):
                missing.append(found[0].name)
        if missing:
            out[rule.name] = missing
    return out


def _warn_unextracted(state: RulesState, name: str, plugins: PluginSet) -> None:
    missing = unextracted_fields(state, name, plugins.registry.table(name))
    if missing:
        listing = "; ".join(f"{rule} ({', '.join(fields)})" for rule, fields in missing.items())
        _log.warning(f"{len(missing)} enabled rules of source '{name}' use fields this source "
                     "does not extract yet (absent on its events: conditions on them are false, "
                     f"outputs show <NA>): {listing}")


def live_streams(names: Sequence[str], plugins: PluginSet, stats: EngineStats,
                 record: tuple[str, Path] | None = None, state: RulesState | None = None,
                 contexts: dict[str, SourceContext] | None = None,
                 window: Window = None) -> dict[str, BatchStream]:
    """Open each live source. One that cannot open ends the run when it is the only one (or
    the recorded one); otherwise it is logged and the others run."""
    streams: dict[str, BatchStream] = {}
    for name in names:
        loaded = plugins.sources[name]
        ctx = _source_context(plugins, name, stats, window=window)
        if state is not None:
            ctx.rules = rule_infos(state, name)
        if record is not None and record[0] == name:
            ctx.record_path = record[1]
            _log.info(f"Recording '{name}' source to {record[1]}")
        _log.info(f"Opening '{name}' source with plugin '{loaded.loaded.plugin.name}'")
        try:
            streams[name] = loaded.source.open(ctx)
        except Exception as exc:
            if len(names) == 1 or (record is not None and record[0] == name):
                raise StartupError(f"Could not open source '{name}': {exc}") from exc
            _log.error(f"Could not open source '{name}': {exc} (the other sources run)")
            continue
        if contexts is not None:
            contexts[name] = ctx
        if state is not None:
            _warn_unextracted(state, name, plugins)
    if not streams:
        raise StartupError("Could not open any event source")
    return streams


# --- outputs ------------------------------------------------------------------------------------


#: the falco.yaml keys that decide which outputs exist and how they deliver
_OUTPUT_KEYS = ("stdout_output", "file_output", "program_output", "http_output",
                "syslog_output", "json_output", "buffered_outputs", "outputs_queue",
                "output_timeout")


def output_settings(config: Config) -> dict[str, Any]:
    """What a reload compares to decide whether the outputs must be created again."""
    settings = {key: config.typed.get(key) for key in _OUTPUT_KEYS}
    settings["plugin_outputs"] = dict(config.plugin_outputs)
    return settings


def _drain_timeout(config: Config) -> float:
    return float(config.typed.get("output_timeout", 2000)) / 1000


def create_outputs(config: Config, plugins: PluginSet) -> dict[str, Output]:
    ctx = OutputContext(json_output=config.json_output,
                        log=get_logger(component="output"))
    outputs: dict[str, Output] = {}
    try:
        outputs.update(builtin_outputs(config, ctx))
        for key, section in config.plugin_outputs.items():
            spec = plugins.outputs.get(key.removesuffix("_output"))
            if spec is None:
                print(f"Warning: unknown configuration key '{key}' (ignored): no loaded plugin "
                      f"provides the output '{key.removesuffix('_output')}'", file=sys.stderr)
                continue
            if section is None or section == {}:
                continue
            if not isinstance(section, Mapping):
                raise ConfigError(f"{key}: expected a mapping")
            settings = {k: v for k, v in section.items() if k != "enabled"}
            if section.get("enabled") is not True:
                continue
            if spec.config_schema is not None:
                check_schema(spec.config_schema, settings, key,
                             bad_schema=f"output '{spec.name}' has an invalid config_schema")
            outputs[spec.name] = spec.create(settings, ctx)
    except (OSError, ValueError, ConfigError, PluginError) as exc:
        raise StartupError(f"Could not create outputs: {exc}") from exc
    return outputs


def internal_alert(config: Config, rule: str, message: str, priority: Priority) -> Alert:
    """An alert of the engine itself (``falco_outputs::handle_msg``): not counted per rule."""
    now = time.time_ns()
    hostname = alert_options(config).hostname
    doc = {"hostname": hostname, "output": message, "output_fields": {},
           "priority": priority.label, "rule": rule, "source": INTERNAL_SOURCE,
           "time": iso8601_ns(now)}
    if config.json_output:
        line = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
    else:
        when = iso8601_ns(now) if config.time_format_iso_8601 else clock_ns(now)
        line = escape_line(f"{when}: {priority.label} {message} ()")  # one line, as alerts
    return Alert(rule, priority.label, INTERNAL_SOURCE, now, line, doc)


# --- the run ------------------------------------------------------------------------------------


def run(options: RunOptions) -> int:
    """Run falconet; returns the process exit code."""
    try:
        return asyncio.run(_run(options))
    except StartupError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _run(options: RunOptions) -> int:
    config = load_run_config(options)
    try:
        configure_logging(config)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    if config.loaded_files:
        _log.info("\n".join(["Falco initialized with configuration files:",
                             *(f"   {f}" for f in config.loaded_files)]))
    plugins = load_run_plugins(config)
    try:
        built = build_rules(config, options.rules_paths, plugins.registry, plugins.versions())
    except ReloadError as exc:
        raise StartupError(str(exc)) from exc
    stats = EngineStats()
    _record_rules(stats, built)
    options = _engine_replay(options, config)
    if config.capture.enabled:
        _log.warning("capture.enabled is set, but captures triggered by alerts are not "
                     "supported (ignored): record a run with --source syscall -w FILE")
    replay = options.replay_source is not None or options.replay_path is not None
    if replay and not (options.replay_source and options.replay_path):
        raise StartupError("a replay needs both --source NAME and -e PATH")
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    window = time_window(options)
    if replay and options.record_path is not None:
        raise StartupError("-w records live events: it cannot be combined with a replay")
    record = None if replay else recording(options, plugins)
    rule_sources = {rule.source for rule in built.state.ruleset.enabled_rules}
    live_names = [] if replay else enabled_live_sources(options, plugins, rule_sources,
                                                        config.engine_kind)
    if record is not None and record[0] not in live_names:
        raise StartupError(f"Cannot record with -w: the source '{record[0]}' is not enabled")
    if not replay:
        _log.info("Enabled event sources: " + ", ".join(live_names))
    if options.dry_run:
        _log.info("Dry run: rules loaded and sources checked, not processing events")
        return EXIT_OK
    contexts: dict[str, SourceContext] = {}
    streams = (replay_stream(options, plugins, stats, progress, window) if replay
               else live_streams(live_names, plugins, stats, record, built.state, contexts,
                                 window))
    outputs = create_outputs(config, plugins)
    dispatcher = Dispatcher(outputs, stats, config.outputs_queue_capacity)
    engine = Engine(built.state, dispatcher, stats, plugins.parsers, window)
    settle_heap()
    return await _serve(options, config, built, plugins, stats, engine, dispatcher, streams,
                        webserver=not replay and config.webserver.enabled, contexts=contexts)


def _engine_replay(options: RunOptions, config: Config) -> RunOptions:
    """``engine.kind: replay`` (upstream's capture replay) without ``-e``/``-w``: replay
    ``engine.replay.capture_file`` through the syscall source."""
    if (config.engine_kind != "replay" or options.replay_path is not None
            or options.record_path is not None):
        return options
    capture_file = str(config.typed["engine"]["replay"]["capture_file"])
    return dataclasses.replace(options, replay_source=options.replay_source or "syscall",
                               replay_path=capture_file)


def _notify_rules(state: RulesState, contexts: Mapping[str, SourceContext]) -> None:
    """Hand reloaded rules to the live sources that asked (``on_rules_change``)."""
    for name, ctx in contexts.items():
        if ctx.on_rules_change is None:
            continue
        try:
            ctx.on_rules_change(rule_infos(state, name))
        except Exception as exc:
            _log.error("a source failed to take the reloaded rules", source=name,
                       error=repr(exc))


def _record_rules(stats: EngineStats, built: RulesBuild) -> None:
    stats.rules.files = len(built.files)
    stats.rules.loaded = built.loaded
    stats.rules.enabled = built.enabled
    stats.rules.warnings = built.warnings
    stats.rules.errors = 0
    stats.rules.loaded_ns = time.time_ns()


async def _serve(options: RunOptions, config: Config, built: RulesBuild, plugins: PluginSet,
                 stats: EngineStats, engine: Engine, dispatcher: Dispatcher,
                 streams: dict[str, BatchStream], *, webserver: bool,
                 contexts: Mapping[str, SourceContext] | None = None) -> int:
    loop = asyncio.get_running_loop()
    current = {"config": config, "files": built.files}

    def on_terminate(signame: str) -> None:
        _log.info(f"{signame} received, exiting...")
        engine.stop(signame)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_terminate, sig.name)

    def on_reopen() -> None:
        _log.info("SIGUSR1 received, reopening outputs", outputs=", ".join(dispatcher.reopen()))

    loop.add_signal_handler(signal.SIGUSR1, on_reopen)

    def rebuild() -> RulesBuild:
        try:
            new_config = load_run_config(options, echo_warnings=False)
        except StartupError as exc:
            raise ReloadError(f"config: {exc}") from exc
        return build_rules(new_config, options.rules_paths, plugins.registry, plugins.versions(),
                           announce=False)

    async def apply(new: RulesBuild) -> None:
        settings = output_settings(new.config)
        outputs = None
        if settings != output_settings(current["config"]):  # type: ignore[arg-type]
            try:
                outputs = create_outputs(new.config, plugins)
            except StartupError as exc:
                raise ReloadError(str(exc)) from exc
        engine.swap(new.state)
        _notify_rules(new.state, contexts or {})
        current["config"], current["files"] = new.config, new.files
        _record_rules(stats, new)
        stats.rules.reloads += 1
        if outputs is not None:
            _log.info("outputs reconfigured", outputs=", ".join(outputs) or "none")
            await dispatcher.replace(outputs, new.config.outputs_queue_capacity,
                                     _drain_timeout(new.config))

    def on_failure(message: str) -> None:
        stats.rules.failed_reloads += 1
        dispatcher.put(internal_alert(current["config"], HOT_RESTART_FAILURE,  # type: ignore
                                      f"{HOT_RESTART_FAILURE}: {message}", Priority.CRITICAL))

    def watched() -> list[str]:
        cfg: Config = current["config"]  # type: ignore[assignment]
        return [*cfg.loaded_files, *(options.rules_paths or cfg.rules_files),
                *current["files"]]  # type: ignore[misc]

    reloader = Reloader(rebuild, apply, on_failure)
    watcher = FileWatcher(watched, reloader.request) if config.watch_config_files else None
    if watcher is not None:
        reloader.on_done = watcher.rearm
    install_sighup(loop, reloader)
    try:
        server = await _start_webserver(config, stats, plugins, engine) if webserver else None
    except StartupError:
        await dispatcher.close(0)
        raise
    tasks = start_tasks(reloader, watcher)
    try:
        ok = await engine.run(streams, duration_s=options.duration_s,
                              drain_timeout=_drain_timeout(config))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            try:
                await server.stop()
            except Exception as exc:
                _log.error("webserver failed to stop", error=repr(exc))
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
            loop.remove_signal_handler(sig)
    engine.print_summary()
    return EXIT_OK if ok else EXIT_FAILURE


async def _start_webserver(config: Config, stats: EngineStats, plugins: PluginSet,
                           engine: Engine) -> WebServer:
    """The health/metrics server; failing to listen ends the run, as upstream."""
    settings = config.webserver
    ssl = " (SSL)" if settings.ssl_enabled else ""
    _log.info(f"Starting health webserver with threadiness {settings.threadiness}, listening "
              f"on {settings.listen_address}:{settings.listen_port}{ssl}")
    try:
        return await start_webserver(settings, stats, versions_info(plugins.versions()),
                                     lambda: not engine.stopping, metrics=config.metrics)
    except WebServerError as exc:
        raise StartupError(f"an error occurred while starting webserver: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """A minimal entry (``python -m falconet.app``) for tests and scripts; the ``falconet``
    command is the full interface: ``-c FILE -o K=V -r PATH --source NAME -e PATH -M SECONDS
    --dry-run``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m falconet.app")
    parser.add_argument("-c", dest="config_path")
    parser.add_argument("-o", dest="overrides", action="append", default=[])
    parser.add_argument("-r", dest="rules_paths", action="append", default=[])
    parser.add_argument("--source", dest="replay_source")
    parser.add_argument("-e", dest="replay_path")
    parser.add_argument("-M", dest="duration_s", type=float)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--enable-source", dest="enable_sources", action="append", default=[])
    parser.add_argument("--disable-source", dest="disable_sources", action="append", default=[])
    parser.add_argument("-U", dest="unbuffered", action="store_true")
    args = parser.parse_args(argv)
    return run(RunOptions(
        config_path=args.config_path, overrides=tuple(args.overrides),
        rules_paths=tuple(args.rules_paths), replay_source=args.replay_source,
        replay_path=args.replay_path, duration_s=args.duration_s, dry_run=args.dry_run,
        enable_sources=tuple(args.enable_sources), disable_sources=tuple(args.disable_sources),
        unbuffered=args.unbuffered, progress=False))


if __name__ == "__main__":
    sys.exit(main())
