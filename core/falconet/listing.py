"""What ``--list``, ``--list-plugins`` and ``--plugin-info`` print.

Falco groups fields by field class and prints a class once, naming every source that shares it.
falconet's field tables carry no class, so a class here is the fields of one source that share a
name prefix (``evt``, ``proc``, ``ka``); identical classes of several sources (the ``evt.*`` and
``json.*`` fields every JSON plugin source has) are printed once, as upstream does. The plain text
and JSON shapes follow upstream's (``filter_fieldclass_info::as_string``/``as_json``); rich tables
are used only for a terminal, so that piped output stays stable.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from falconet.api import Plugin
from falconet.fields import ArgKind, FieldRegistry, FieldSpec

FORMATS = ("text", "markdown", "json")

_RULE = "-" * 31  # upstream's separator above each field class
_LEFT = 30  # upstream's s_rightblock_start
_WIDTH = 120  # upstream's s_width

_ARG_TAGS = {
    ArgKind.NONE: (),
    ArgKind.INDEX: ("ARG_ALLOWED", "ARG_INDEX"),
    ArgKind.KEY: ("ARG_ALLOWED", "ARG_KEY"),
    ArgKind.ANY: ("ARG_ALLOWED", "ARG_INDEX", "ARG_KEY"),
    ArgKind.INDEX_REQUIRED: ("ARG_REQUIRED", "ARG_INDEX"),
    ArgKind.KEY_REQUIRED: ("ARG_REQUIRED", "ARG_KEY"),
}


@dataclass
class FieldClass:
    """Fields sharing a name prefix, and the sources that have exactly these fields."""

    name: str
    fields: list[FieldSpec]
    sources: list[str] = field(default_factory=list)


def field_tags(spec: FieldSpec) -> list[str]:
    """Upstream's tag names for a field's flags, sorted as upstream's ``std::set`` prints them."""
    tags = list(_ARG_TAGS[spec.arg])
    if spec.is_list:
        tags.append("EPF_IS_LIST")
    if not spec.rhs_allowed:
        tags.append("EPF_NO_RHS")
    if not spec.transformer_allowed:
        tags.append("EPF_NO_TRANSFORMER")
    return sorted(tags)


def _key(spec: FieldSpec) -> tuple[Any, ...]:
    return (spec.name, spec.type, spec.is_list, spec.arg, spec.description)


def field_classes(registry: FieldRegistry, source: str = "") -> list[FieldClass]:
    """The classes of every source (or of ``source``), in registry order, shared ones once."""
    classes: dict[tuple[Any, ...], FieldClass] = {}
    for src in registry.sources:
        if source and src != source:
            continue
        groups: dict[str, list[FieldSpec]] = {}
        for spec in registry.table(src):
            groups.setdefault(spec.name.split(".", 1)[0], []).append(spec)
        for name, specs in groups.items():
            fc = classes.setdefault(
                (name, *(_key(s) for s in specs)), FieldClass(name, specs))
            fc.sources.append(src)
    for fc in classes.values():
        fc.sources.sort()
    return list(classes.values())


def field_names(classes: Iterable[FieldClass]) -> list[str]:
    """Every field name once, in listing order (``-N``)."""
    return list(dict.fromkeys(spec.name for fc in classes for spec in fc.fields))


# --- plain text, markdown, JSON ---------------------------------------------------------------

def _wrap(text: str) -> str:
    lines = textwrap.wrap(text, _WIDTH - _LEFT - 1) or [""]  # upstream counts a trailing space
    return ("\n" + " " * _LEFT).join(lines)


def fields_as_text(classes: Iterable[FieldClass]) -> str:
    """Upstream's verbose ``--list`` text (types shown), one block per class."""
    blocks = []
    for fc in classes:
        lines = [_RULE, f"{'Field Class:':<{_LEFT}}{fc.name}",
                 f"{'Event Sources:':<{_LEFT}}{' '.join(fc.sources)}", ""]
        for spec in fc.fields:
            tags = field_tags(spec)
            desc = f"(Type: {spec.type})"
            if tags:
                desc += f" ({','.join(tags)})"
            if spec.description:
                desc += f" {spec.description}"
            head = (f"{spec.name}\n{'':<{_LEFT}}" if len(spec.name) > _LEFT
                    else f"{spec.name:<{_LEFT}}")
            lines.append(head + _wrap(desc))
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _type_name(spec: FieldSpec) -> str:
    return f"LIST({spec.type})" if spec.is_list else str(spec.type)


def fields_as_markdown(classes: Iterable[FieldClass]) -> str:
    """Upstream's ``--format markdown``: a heading and a table per class."""
    blocks = []
    for fc in classes:
        lines = [f"## Field Class: {fc.name}", "", f"Event Sources: {' '.join(fc.sources)}", "",
                 "Name | Type | Description", ":----|:-----|:-----------"]
        lines += [f"`{s.name}` | {_type_name(s)} | {s.description}" for s in fc.fields]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _argument(spec: FieldSpec) -> dict[str, Any] | None:
    tags = _ARG_TAGS[spec.arg]
    if not tags:
        return None
    return {"required": "ARG_REQUIRED" in tags,
            "type": [t.removeprefix("ARG_") for t in ("ARG_INDEX", "ARG_KEY") if t in tags]}


def fields_as_json(classes: Iterable[FieldClass], names_only: bool = False) -> str:
    """Upstream's ``--format json``: ``{"fieldclasses": [...]}``, or ``{"fieldnames": [...]}``
    with ``-N``; indented by two spaces as upstream prints it."""
    classes = list(classes)
    if names_only:
        doc: dict[str, Any] = {"fieldnames": field_names(classes)}
    else:
        doc = {"fieldclasses": [
            {"name": fc.name, "event_sources": fc.sources,
             "fields": [{"name": s.name, "type": str(s.type), "desc": s.description,
                         "is_list": s.is_list, "argument": _argument(s)} for s in fc.fields]}
            for fc in classes]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def print_fields_rich(classes: Iterable[FieldClass], console: Any) -> None:
    """One table per class, for a terminal."""
    from rich.table import Table

    for fc in classes:
        table = Table(title=f"Field Class: {fc.name}  (sources: {', '.join(fc.sources)})",
                      title_justify="left", expand=False)
        table.add_column("Field", style="bold cyan", no_wrap=True)
        table.add_column("Type", no_wrap=True)
        table.add_column("Argument", no_wrap=True)
        table.add_column("Description")
        for spec in fc.fields:
            arg = _argument(spec)
            arg_text = "" if arg is None else (
                "/".join(arg["type"]).lower() + (" (required)" if arg["required"] else ""))
            table.add_row(spec.name, _type_name(spec), arg_text, spec.description)
        console.print(table)


# --- plugins ------------------------------------------------------------------------------------

def plugin_capabilities(plugin: Plugin) -> list[str]:
    """Upstream's capability lines, with the source named as ``--list-plugins`` shows it."""
    caps = []
    for cap in plugin.capabilities:
        if cap == "Event Sourcing" and plugin.source is not None:
            ident = f"ID={plugin.source.plugin_id}, " if plugin.source.plugin_id else ""
            cap += f" ({ident}source='{plugin.source.name}')"
        caps.append(cap)
    return caps


def plugin_as_text(plugin: Plugin) -> str:
    """Upstream's ``format_plugin_info`` block."""
    lines = [f"Name: {plugin.name}", f"Description: {plugin.description}",
             f"Contact: {plugin.contact}", f"Version: {plugin.version}", "Capabilities:"]
    lines += [f"  - {cap}" for cap in plugin_capabilities(plugin)]
    return "\n".join(lines) + "\n"


def plugins_as_text(plugins: Sequence[Plugin]) -> str:
    """``--list-plugins`` as upstream prints it: a count line, then one block per plugin."""
    blocks = "".join(plugin_as_text(p) + "\n" for p in plugins)
    return f"{len(plugins)} Plugins Loaded:\n\n{blocks}"


def print_plugins_rich(plugins: Sequence[Plugin], console: Any) -> None:
    """``--list-plugins`` for a terminal."""
    from rich.table import Table

    table = Table(title=f"{len(plugins)} Plugins Loaded", title_justify="left")
    for column in ("Name", "Version", "Description", "Contact", "Capabilities"):
        table.add_column(column, style="bold cyan" if column == "Name" else None,
                         no_wrap=column in ("Name", "Version"), overflow="fold")
    for p in plugins:
        table.add_row(p.name, p.version, p.description, p.contact,
                      "\n".join(plugin_capabilities(p)))
    console.print(table)


def plugin_info_as_text(plugin: Plugin, open_params: str | None) -> str:
    """``--plugin-info``: the descriptive block, the init schema, and (for a source) its open
    parameters as falco.yaml configures them (falconet plugins do not suggest any)."""
    parts = [plugin_as_text(plugin) + "\n"]
    if plugin.init_schema is None:
        parts.append("Init config schema type: Not available, plugin does not implement the "
                     "init config schema functionality\n\n")
    else:
        schema = orjson.dumps(_plain(plugin.init_schema), option=orjson.OPT_INDENT_2).decode()
        parts.append(f"Init config schema type: JSON\n{schema}\n\n")
    if plugin.source is not None:
        if open_params:
            parts.append(f"Configured open params:\n{open_params}\n\n")
        else:
            parts.append("No suggested open params available: plugin has not been configured, "
                         "or it does not implement the open params suggestion functionality\n\n")
    return "".join(parts)


def _plain(value: Any) -> Any:
    """Mappings (possibly read-only views) as dicts, so that orjson serializes them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
