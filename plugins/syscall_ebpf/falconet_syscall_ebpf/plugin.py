"""Registration of the ``syscall`` plugin through the ``falconet`` entry point.

The plugin brings the ``syscall`` event source (the live probe, ``live.open_source``; captures
and JSON lines of field values, ``replay.replay_source``) and the fields it extracts
(``fields.py``). Like upstream's driver it is selected by ``engine.kind`` in falco.yaml
(``modern_ebpf``, ``ebpf``), not by a ``plugins:`` entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from falconet.api import EventInfo, EventParam, EventSource, FieldTable, Plugin, SourceContext
from falconet.hookspecs import hookimpl
from falconet_syscall_ebpf import __version__
from falconet_syscall_ebpf.fields import SOURCE, syscall_field_table

__all__ = ["PLUGIN_NAME", "falconet_register_plugins", "syscall_plugin"]

PLUGIN_NAME = "syscall"


def _open(ctx: SourceContext) -> AsyncIterator[Any]:
    from falconet_syscall_ebpf.live import open_source

    return open_source(ctx)


def _replay(path: Path, ctx: SourceContext) -> Any:
    from falconet_syscall_ebpf.replay import replay_source

    return replay_source(path, ctx)


def _tables() -> list[FieldTable]:
    return [syscall_field_table()]


def _events() -> list[EventInfo]:
    from falconet_syscall_ebpf.params import value_names
    from falconet_syscall_ebpf.syscalls import EVENTS

    return [EventInfo(d.name, d.dir, tuple(EventParam(p.name, p.type, value_names(p.table))
                                           for p in d.params)) for d in EVENTS]


def syscall_plugin() -> Plugin:
    return Plugin(
        name=PLUGIN_NAME,
        version=__version__,
        description="Linux system calls captured by a CO-RE eBPF probe (engine.kind: "
                    "modern_ebpf or ebpf)",
        contact="github.com/falconet",
        init_schema={"type": "object", "additionalProperties": False, "properties": {}},
        source=EventSource(name=SOURCE, open=_open, replay=_replay, json_payload=False,
                           can_record=True, events=_events),
        fields=_tables,
    )


@hookimpl
def falconet_register_plugins(register: Callable[[Plugin], None]) -> None:
    register(syscall_plugin())
