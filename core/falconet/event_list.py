"""What ``--list-events`` prints: the event types the loaded sources produce.

A source lists its event types through ``EventSource.events`` (the ``syscall`` source: the
syscalls its probe captures, named and typed as upstream's event table). The markdown shape is
upstream's ``falco --list-events --markdown`` table (``Default | Dir | Name | Params``, a flag
parameter followed by its flag names); "Default" is always "Yes": every event listed is produced.
The text shape is one line per event, ``< openat(FD fd, FD dirfd, FSPATH name, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from falconet.api import EventInfo, EventParam

#: (source name, its event types)
SourceEvents = tuple[str, Sequence[EventInfo]]


def _title(source: str) -> str:
    return "Syscall events" if source == "syscall" else f"{source} events"


def _markdown_param(param: EventParam) -> str:
    text = f"{param.type} **{param.name}**"
    if param.values:
        text += ": " + ", ".join(f"*{value}*" for value in param.values)
    return text


def events_as_markdown(sources: Sequence[SourceEvents]) -> str:
    lines: list[str] = []
    for source, events in sources:
        lines += [f"## {_title(source)}", "", "Default | Dir | Name | Params ",
                  ":-------|:----|:-----|:-----"]
        lines += [f"Yes | `{e.direction}` | `{e.name}` | "
                  + ", ".join(_markdown_param(p) for p in e.params) for e in events]
        lines.append("")
    return "\n".join(lines)


def events_as_text(sources: Sequence[SourceEvents]) -> str:
    lines: list[str] = []
    for source, events in sources:
        lines += [f"{_title(source)}:", ""]
        lines += [f"{e.direction} {e.name}("
                  + ", ".join(f"{p.type} {p.name}" for p in e.params) + ")" for e in events]
        lines.append("")
    return "\n".join(lines)


def events_as_json(sources: Sequence[SourceEvents]) -> str:
    doc = {"events": [
        {"source": source, "name": e.name, "dir": e.direction,
         "params": [{"name": p.name, "type": p.type, "values": list(p.values)}
                    for p in e.params]}
        for source, events in sources for e in events]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


RENDERERS = {"text": events_as_text, "markdown": events_as_markdown, "json": events_as_json}
