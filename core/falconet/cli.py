"""The ``falconet`` command: Falco's flags for rules, configuration, listings and running.

Steps run in Falco's order (``app.cpp``): help, version, configuration, plugin info, plugin list,
field list, validation, rule description, support; with none of those, the engine runs. Exit codes
follow Falco: 0 on success, 1 on any error -- including a bad command line, which click would
end with 2 (Falco prints ``Error: ...`` and exits 1 for those too). Heavy modules (the rule
engine, the plugins, aiohttp) are imported only by the step that needs them, so ``--version``
and ``-h`` start fast.

Differences from Falco: ``-V`` checks the rules' content but not ``required_plugin_versions``
(the engine does, when it runs), so rules files validate without their plugins configured;
``--support`` reads the rules files without loading them, so it also works when they are broken;
``--plugin-info`` finds any installed plugin by name, configured or not.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

from falconet import ENGINE_VERSION, __version__

if TYPE_CHECKING:
    from falconet.api import Plugin
    from falconet.config import Config
    from falconet.fields import FieldRegistry
    from falconet.plugins import PluginSet

EXIT_OK = 0
EXIT_FAILURE = 1

SECTIONS = ("Rules", "Configuration", "Listings", "Running")

EPILOG = """\b
Examples:
  falconet --validate rules/falconet_rules.yaml
  falconet -r rules/falconet_rules.yaml -L
  falconet -r rules/falconet_rules.yaml -l "Kernel module loaded" -o json_output=true
  falconet -c rules/falco.yaml -o rules_files[0]=rules/falconet_rules.yaml -L
  falconet --list=k8s_audit -N
  falconet --list --format json > fields.json
  falconet --list-plugins
  falconet -c rules/falco.yaml --dry-run
  falconet -c rules/falco.yaml --source k8s_audit -e audit.jsonl -o json_output=true
  falconet -c rules/falco.yaml --source syscall -w run.fcap -M 60
  falconet -c rules/falco.yaml --source syscall -e run.fcap
  falconet -c rules/falco.yaml -M 60 --disable-source syscall

\b
Exit codes: 0 success; 1 any error (invalid rules, bad configuration, bad command line).
"""


class _Option(click.Option):
    """An option that knows which help section it belongs to."""

    def __init__(self, *args: Any, section: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section = section


class _Command(click.Command):
    """Help grouped in sections; usage errors exit 1 as in Falco."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {title: [] for title in SECTIONS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                section = getattr(param, "section", "Listings")  # -h/--help
                rows[section].append(record)
        for title in SECTIONS:
            with formatter.section(title):
                formatter.write_dl(rows[title])

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = EXIT_FAILURE  # type: ignore[misc]  # a ClassVar since click 8.5
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_FAILURE  # type: ignore[misc]  # a ClassVar since click 8.5
            raise


def _opt(section: str, *decls: str, **kwargs: Any) -> Any:
    return click.option(*decls, cls=_Option, section=section, **kwargs)


def _fail(message: str) -> NoReturn:
    """Falco's way out: ``Error: <message>`` on stderr, exit code 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAILURE)


def _check_format(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() not in ("text", "markdown", "json"):
        raise click.UsageError(
            f"Invalid format '{value}'. Valid values are: text, markdown, json")
    return value.lower()


@click.command(cls=_Command, epilog=EPILOG,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
# --- Rules
@_opt("Rules", "-r", "rules_files", multiple=True, metavar="FILE|DIR",
      help="Rules file or directory to load (repeatable; replaces rules_files of the "
           "configuration; directories are read in alphabetical order, .yml/.yaml only).")
@_opt("Rules", "-V", "--validate", "validate", multiple=True, metavar="FILE",
      help="Validate rules file(s) and exit: prints '<file>: Ok' or the errors; exit code 1 if "
           "any file is invalid. Repeatable; later files may extend earlier ones.")
@_opt("Rules", "-L", "describe_all", is_flag=True,
      help="Show the name and description of all rules and exit (with -o json_output=true: "
           "rules, macros and lists in full detail).")
@_opt("Rules", "-l", "describe_rule", metavar="RULE",
      help="Show the name and description of one rule and exit.")
# --- Configuration
@_opt("Configuration", "-c", "config_path", metavar="FILE",
      help="Configuration file (falco.yaml); without it, Falco's defaults apply.")
@_opt("Configuration", "-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
      help="Override a configuration key, with Falco's syntax: dotted paths, list[1], "
           "list[]=append, {...} for a YAML value (e.g. -o json_output=true, "
           "-o rules_files[]=my_rules.yaml).")
@_opt("Configuration", "--support", "support", is_flag=True,
      help="Print support information (versions, system, command line, merged configuration "
           "with ${VAR} references unexpanded, rules files with their content) as JSON and exit.")
# --- Listings
@_opt("Listings", "--list", "list_source", is_flag=False, flag_value="", default=None,
      metavar="[SOURCE]",
      help="List the fields of every loaded source, or of SOURCE only (--list=k8s_audit), "
           "and exit.")
@_opt("Listings", "-N", "names_only", is_flag=True,
      help="With --list: print field names only.")
@_opt("Listings", "--list-events", "list_events", is_flag=True,
      help="List the event types the loaded sources produce (the syscall source: each syscall "
           "its probe captures, with upstream's parameter names and types) and exit.")
@_opt("Listings", "--format", "list_format", metavar="text|markdown|json",
      callback=_check_format,
      help="With --list or --list-events: output format (default text).")
@_opt("Listings", "--markdown", "markdown", is_flag=True,
      help="DEPRECATED: use --format markdown.")
@_opt("Listings", "--list-plugins", "list_plugins", is_flag=True,
      help="Print the plugins the configuration loads and exit.")
@_opt("Listings", "--plugin-info", "plugin_info", metavar="NAME",
      help="Print a plugin's description, init_config JSON schema and open parameters and exit "
           "(NAME: the plugin's name or its configured library_path).")
@_opt("Listings", "--version", "show_version", is_flag=True,
      help="Print version information and exit (JSON with -o json_output=true).")
# --- Running
@_opt("Running", "-e", "replay_path", metavar="PATH",
      help="Replay events from a file or directory (JSON lines, .gz too; a syscall capture "
           "made with -w) instead of live sources, then exit.")
@_opt("Running", "-w", "record_path", metavar="FILE",
      help="Record the raw events of the --source source (default syscall) into a capture "
           "FILE (.gz: compressed) while rules run as usual; replay it with -e. See "
           "docs/capture-format.md.")
@_opt("Running", "--source", "replay_source", metavar="NAME",
      help="The source whose reader reads -e (default: the only loaded source, else syscall), "
           "or that -w records (default syscall).")
@_opt("Running", "-M", "duration", type=click.FloatRange(min=0), metavar="SECONDS",
      help="Stop after SECONDS.")
@_opt("Running", "--since", "since", metavar="TIME",
      help="Skip events older than TIME: 2024-05-01T10:00:00Z, or a duration back from now "
           "(5d, 12h, 30m). Sources that can (CloudTrail files) do not even read them.")
@_opt("Running", "--until", "until", metavar="TIME",
      help="Skip events at or after TIME (same forms as --since).")
@_opt("Running", "--dry-run", "dry_run", is_flag=True,
      help="Load the configuration, plugins and rules, start nothing, and exit.")
@_opt("Running", "-U", "--unbuffered", "unbuffered", is_flag=True,
      help="Flush every output line (more CPU; useful when piping alerts into a program).")
@_opt("Running", "--enable-source", "enable_sources", multiple=True, metavar="SOURCE",
      help="Enable only these sources (repeatable; cannot be mixed with --disable-source).")
@_opt("Running", "--disable-source", "disable_sources", multiple=True, metavar="SOURCE",
      help="Turn a source off (repeatable; not all of them; cannot be mixed with "
           "--enable-source).")
@_opt("Running", "--progress/--no-progress", "progress", default=None,
      help="Show a progress bar while replaying -e (default: when stderr is a terminal).")
def main(rules_files: tuple[str, ...], validate: tuple[str, ...],
         describe_all: bool, describe_rule: str | None, config_path: str | None,
         options: tuple[str, ...], support: bool, list_source: str | None, names_only: bool,
         list_events: bool, list_format: str | None, markdown: bool, list_plugins: bool,
         plugin_info: str | None,
         show_version: bool, replay_path: str | None, record_path: str | None,
         replay_source: str | None, duration: float | None, since: str | None,
         until: str | None, dry_run: bool, unbuffered: bool,
         enable_sources: tuple[str, ...], disable_sources: tuple[str, ...],
         progress: bool | None) -> None:
    """falconet: a Falco-compatible runtime security engine.

    With no listing or validation option, falconet loads the configuration, plugins and rules
    and runs until interrupted (or -M, or the end of -e).
    """
    if markdown and list_format is not None:
        _fail("Cannot specify both --markdown and --format options together")
    if markdown:
        click.echo("WARNING: --markdown is deprecated, use --format markdown instead.", err=True)
        list_format = "markdown"
    if show_version and not (config_path or options):
        _print_version(json_output=False)
        return
    if not (show_version or plugin_info is not None or list_plugins or list_source is not None
            or list_events or validate or describe_all or describe_rule or support):
        if enable_sources and disable_sources and replay_path is None:
            _fail("You can not mix --enable-source and --disable-source")
        record_source = None
        if record_path is not None:
            if replay_path is not None:
                _fail("-w records live events: it cannot be combined with -e")
            record_source, replay_source = replay_source or "syscall", None
        if replay_path is not None and replay_source is None:
            replay_source = _default_replay_source(config_path, options)
        sys.exit(_run_engine(
            config_path=config_path, overrides=options, rules_paths=rules_files,
            replay_source=replay_source, replay_path=replay_path,
            record_source=record_source, record_path=record_path, duration_s=duration or None,
            since=since, until=until, dry_run=dry_run, enable_sources=enable_sources,
            disable_sources=disable_sources, unbuffered=unbuffered, progress=progress))

    from falconet.log import configure_logging

    configure_logging()
    config = _config(config_path, options)
    if show_version:
        _print_version(config.json_output)
        return
    if plugin_info is not None:
        sys.exit(_run_plugin_info(config, plugin_info))
    if list_plugins:
        sys.exit(_run_list_plugins(config))
    if list_source is not None:
        sys.exit(_run_list_fields(config, list_source, names_only, list_format or "text"))
    if list_events:
        sys.exit(_run_list_events(config, list_format or "text"))
    if validate:
        sys.exit(_run_validate(config, list(validate), describe_all, describe_rule))
    if describe_all or describe_rule:
        paths = list(rules_files) or list(config.rules_files)  # -r replaces rules_files
        if not paths:
            raise click.UsageError("-L/-l need rules: give -r FILE|DIR, or rules_files in -c")
        sys.exit(_run_describe(config, paths, describe_rule))
    sys.exit(_run_support(config, config_path, options, rules_files))


# --- configuration and plugins -----------------------------------------------------------------

def _config(path: str | None, options: tuple[str, ...]) -> Config:
    """falco.yaml (``-c``; defaults without it) with ``-o`` overrides; errors end the command."""
    from falconet.config import ConfigError, load_config

    try:
        config = load_config(path, options)
    except ConfigError as exc:
        _fail(str(exc))
    for warning in config.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return config


def _print_version(json_output: bool) -> None:
    """Upstream's ``print_version``: aligned lines, or ``versions_info`` JSON."""
    if json_output:
        from falconet.support import engine_info

        click.echo(_dump(engine_info(_discovered())))
        return
    click.echo(f"falconet version: {__version__}\n"
               f"Engine version:   {ENGINE_VERSION}\n"
               f"Python version:   {sys.version.split()[0]}")


def _discovered() -> list[Plugin]:
    """Every installed plugin (entry points), loaded or not."""
    from falconet.plugins import PluginError, discover

    try:
        return list(discover().values())
    except PluginError as exc:
        _fail(str(exc))


def _plugin_set(config: Config) -> PluginSet:
    """What ``config`` loads (plugins, sources, field tables); a plugin error ends the command."""
    from falconet.plugins import PluginError, load_plugins

    try:
        return load_plugins(config)
    except PluginError as exc:
        _fail(str(exc))


def _dump(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _console() -> Any:
    """A rich console when stdout is a terminal, else None (plain, stable text)."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


# --- listings ----------------------------------------------------------------------------------

def _run_list_fields(config: Config, source: str, names_only: bool, fmt: str) -> int:
    from falconet import listing

    registry = _plugin_set(config).registry
    if source and not registry.has_source(source):
        _fail("Value for --list must be a valid source type")
    classes = listing.field_classes(registry, source)
    if fmt == "json":
        click.echo(listing.fields_as_json(classes, names_only), nl=False)
    elif names_only:
        click.echo("\n".join(listing.field_names(classes)))
    elif fmt == "markdown":
        click.echo(listing.fields_as_markdown(classes), nl=False)
    elif (console := _console()) is not None:
        listing.print_fields_rich(classes, console)
    else:
        click.echo(listing.fields_as_text(classes), nl=False)
    return EXIT_OK


def _run_list_events(config: Config, fmt: str) -> int:
    from falconet.event_list import RENDERERS

    sources = [(name, loaded.source.events())
               for name, loaded in sorted(_plugin_set(config).sources.items())
               if loaded.source.events is not None]
    click.echo(RENDERERS[fmt](sources), nl=False)
    return EXIT_OK


def _run_list_plugins(config: Config) -> int:
    from falconet import listing

    plugins = [lp.plugin for lp in _plugin_set(config).loaded]
    if (console := _console()) is not None:
        listing.print_plugins_rich(plugins, console)
    else:
        click.echo(listing.plugins_as_text(plugins), nl=False)
    return EXIT_OK


def _run_plugin_info(config: Config, name: str) -> int:
    """Upstream matches the configured ``plugins:`` entries by name or library_path; falconet
    also knows every installed plugin by name, configured or not."""
    from falconet import listing

    entry = next((p for p in config.plugins if name in (p.name, p.library_path)), None)
    wanted = entry.name if entry is not None else name
    plugin = next((p for p in _discovered() if p.name == wanted), None)
    if plugin is None:
        _fail(f"can't find plugin and print its info: {name}")
    open_params = entry.open_params if entry is not None else None
    click.echo(listing.plugin_info_as_text(plugin, open_params), nl=False)
    return EXIT_OK


def _run_support(config: Config, config_path: str | None, options: Sequence[str],
                 rules_paths: Sequence[str]) -> int:
    from falconet.support import support_document

    plugins = [lp.plugin for lp in _plugin_set(config).loaded]
    doc = support_document(config, config_path, options, rules_paths,
                           ["falconet", *sys.argv[1:]], plugins)
    click.echo(_dump(doc))
    return EXIT_OK


# --- rules: validate and describe ---------------------------------------------------------------

def _load(paths: list[str], registry: FieldRegistry) -> tuple[Any, list[Any]]:
    from falconet.ruleset.loader import RulesLoader

    loader = RulesLoader(registry)
    results = []
    for path in paths:
        result = loader.load_file(path)
        results.append(result)
        if not result.successful:
            break
    return loader, results


def _describer(loader: Any, registry: FieldRegistry) -> Any:
    from falconet.ruleset.describe import Describer

    return Describer(
        loader.rules, loader.macros, loader.lists,
        required_engine_version=loader.required_engine_version,
        required_plugin_versions=loader.describe_plugin_versions(),
        registry=registry,
    )


def _run_validate(config: Config, paths: list[str], describe_all: bool,
                  describe_rule: str | None) -> int:
    from falconet.ruleset.describe import UnknownRuleError, described_rules_as_text
    from falconet.ruleset.report import result_as_json, result_as_text

    registry = _plugin_set(config).registry
    loader, results = _load(paths, registry)
    ok = all(r.successful for r in results)
    summary: list[str] = []
    for res in results:
        if not res.successful or not res.warnings:
            summary.append(result_as_text(res, loader.contents, verbose=True))
        else:
            summary.append(f"{res.name}: Ok, with warnings")
            click.echo(result_as_text(res, loader.contents, verbose=True), err=True)
    described = None
    if ok and (describe_all or describe_rule):
        try:
            described = _describer(loader, registry).describe(describe_rule)
        except UnknownRuleError as exc:
            click.echo(str(exc), err=True)
            return EXIT_FAILURE
    if config.json_output:
        doc: dict[str, Any] = {
            "falco_load_results": [result_as_json(r, loader.contents) for r in results]
        }
        if described is not None:
            doc["falco_describe_results"] = described
        click.echo(_dump(doc))
    else:
        click.echo("\n".join(summary))
        if described is not None:
            click.echo()
            click.echo(described_rules_as_text(described), nl=False)
    return EXIT_OK if ok else EXIT_FAILURE


def _run_describe(config: Config, paths: list[str], describe_rule: str | None) -> int:
    from falconet.rules_files import expand_rules_paths
    from falconet.ruleset.describe import UnknownRuleError, described_rules_as_text
    from falconet.ruleset.report import result_as_text

    registry = _plugin_set(config).registry
    files = expand_rules_paths(paths)
    loader, results = _load([str(f) for f in files], registry)
    for res in results:
        if not res.successful:
            click.echo(result_as_text(res, loader.contents, verbose=True), err=True)
            return EXIT_FAILURE
    try:
        described = _describer(loader, registry).describe(describe_rule)
    except UnknownRuleError as exc:
        click.echo(str(exc), err=True)
        return EXIT_FAILURE
    if config.json_output:
        click.echo(_dump(described))
    else:
        click.echo(described_rules_as_text(described), nl=False)
    return EXIT_OK


# --- running -----------------------------------------------------------------------------------

def _run_engine(**options: Any) -> int:
    """Hand over to the engine, which loads configuration, plugins and rules itself and
    returns the exit code."""
    from falconet.app import RunOptions, run

    return run(RunOptions(**options))


def _default_replay_source(config_path: str | None, options: tuple[str, ...]) -> str:
    """``-e`` without ``--source``: the only source the configuration loads, else syscall.
    Configuration and plugin errors are left for the engine to report, once."""
    from falconet.config import ConfigError, load_config
    from falconet.log import configure_logging
    from falconet.plugins import PluginError, load_plugins

    configure_logging()  # plugin discovery logs; keep stdout for alerts
    try:
        sources = list(load_plugins(load_config(config_path, options)).sources)
    except (ConfigError, PluginError):
        return "syscall"
    return sources[0] if len(sources) == 1 else "syscall"


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="falconet")
