"""The ``falconet`` command: Falco's flags for validating, listing and describing rules.

Exit codes follow Falco: 0 on success, 1 when a rules file is invalid or a rule is unknown.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from falconet import ENGINE_VERSION, __version__
from falconet.config import Config, ConfigError, load_config
from falconet.fields import FieldRegistry, schema_registry
from falconet.log import configure_logging
from falconet.rules_files import expand_rules_paths

EXIT_OK = 0
EXIT_FAILURE = 1

def _config(path: str | None, options: tuple[str, ...]) -> Config:
    """falco.yaml (``-c``; defaults without it) with ``-o`` overrides; errors end the command."""
    try:
        config = load_config(path, options)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    for warning in config.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return config


def _registry() -> FieldRegistry:
    try:
        return schema_registry()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


def _dump(obj: Any) -> str:
    return orjson.dumps(obj).decode()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-r", "rules_files", multiple=True, metavar="FILE|DIR",
              help="Rules file or directory to load (repeatable; directories are read in "
                   "alphabetical order, .yml/.yaml only).")
@click.option("-V", "--validate", "validate", multiple=True, metavar="FILE",
              help="Validate rules file(s) like 'falco --validate': prints '<file>: Ok' or the "
                   "errors; exit code 1 if any file is invalid. Repeatable; files are loaded in "
                   "order, so later files may extend earlier ones.")
@click.option("-L", "describe_all", is_flag=True,
              help="Describe all loaded rules (with -o json_output=true: full JSON details).")
@click.option("-l", "describe_rule", metavar="RULE", help="Describe one rule.")
@click.option("-c", "config_path", metavar="FILE",
              help="Configuration file (falco.yaml); without it, Falco's defaults apply.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Override a configuration key, with Falco's syntax: dotted paths, list[1], "
                   "list[]=append, {...} for a YAML value (e.g. -o json_output=true, "
                   "-o rules_files[]=my_rules.yaml).")
@click.option("--version", "show_version", is_flag=True, help="Print version information.")
def main(rules_files: tuple[str, ...], validate: tuple[str, ...], describe_all: bool,
         describe_rule: str | None, config_path: str | None, options: tuple[str, ...],
         show_version: bool) -> None:
    """falconet: a Falco-compatible runtime security engine.

    \b
    Examples:
      falconet --validate rules/falconet_rules.yaml
      falconet -r rules/falconet_rules.yaml -L
      falconet -r rules/falconet_rules.yaml -l "Kernel module loaded" -o json_output=true
      falconet -c rules/falco.yaml -o rules_files[0]=rules/falconet_rules.yaml -L
    """
    configure_logging()
    if show_version:
        click.echo(f"falconet version: {__version__}\nEngine version: {ENGINE_VERSION}")
        return
    config = _config(config_path, options)
    json_output = config.json_output
    if validate:
        sys.exit(_run_validate(list(validate), json_output, describe_all, describe_rule))
    if describe_all or describe_rule:
        paths = list(rules_files) or list(config.rules_files)  # -r replaces rules_files
        if not paths:
            raise click.UsageError("-L/-l need rules: give -r FILE|DIR, or rules_files in -c")
        sys.exit(_run_describe(paths, json_output, describe_rule))
    click.echo(click.get_current_context().get_help())


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


def _run_validate(paths: list[str], json_output: bool, describe_all: bool,
                  describe_rule: str | None) -> int:
    from falconet.ruleset.describe import UnknownRuleError, described_rules_as_text
    from falconet.ruleset.report import result_as_json, result_as_text

    registry = _registry()
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
    if json_output:
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


def _run_describe(paths: list[str], json_output: bool, describe_rule: str | None) -> int:
    from falconet.ruleset.describe import UnknownRuleError, described_rules_as_text
    from falconet.ruleset.report import result_as_text

    registry = _registry()
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
    if json_output:
        click.echo(_dump(described))
    else:
        click.echo(described_rules_as_text(described), nl=False)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    main()

