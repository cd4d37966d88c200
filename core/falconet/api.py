"""The types a plugin hands the engine: with ``hookspecs.py``, the whole plugin contract.

A plugin is a :class:`Plugin` object registered through the ``falconet_register_plugins`` hook.
It names itself as Falco plugins do (name, version, the upstream plugin version it is compatible
with, description, contact, JSON schema of its ``init_config``) and brings any of:

- an :class:`EventSource` (a live stream: ``open(ctx)``; a file reader: ``replay(path, ctx)``);
- field tables (``fields()``) for its own source or for others;
- :class:`EventParser` objects, which see every batch of a source before rules read it;
- :class:`OutputSpec` objects, outputs configured under ``<name>_output`` in falco.yaml.

Everything here is resolved once at start-up; the per-event path calls the plain functions these
objects carry, never pluggy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from falconet.event import JsonEvent, SchemaEvent
from falconet.fields import ArgKind, FieldSpec, FieldTable, FieldType

__all__ = [
    "Alert",
    "ArgKind",
    "EventBatch",
    "EventInfo",
    "EventParam",
    "EventParser",
    "EventSource",
    "FieldSpec",
    "FieldTable",
    "FieldType",
    "JsonEvent",
    "Output",
    "OutputContext",
    "OutputError",
    "OutputSpec",
    "Plugin",
    "RuleInfo",
    "SchemaEvent",
    "SourceContext",
    "SourceCounters",
]

#: A batch of events of one source. An event is any object with ``source``, ``ts`` (ns since the
#: epoch) and ``num`` attributes that the source's field extractors understand; JSON sources use
#: :class:`falconet.event.JsonEvent`. ``num`` is assigned by the engine; sources leave it 0.
EventBatch = Sequence[Any]


class SourceCounters:
    """Plain integers a source increments; the engine exports them at scrape time.

    ``malformed``: input that could not become an event (counted and logged, never raised).
    ``dropped``: events the source had to discard (oversized, overflow), with the reason logged.
    ``rejected``: requests or events refused, by reason (a short snake_case word); a source that
    refuses input for several reasons (a webhook: bad content type, body too large, queue full)
    tells them apart here, and may count the same input in ``malformed``/``dropped`` too.
    ``cpu_events``/``cpu_drops``: per CPU, the events a kernel-side collector emitted and lost
    since the source started (the syscall probe's counters; empty for other sources).
    """

    __slots__ = ("cpu_drops", "cpu_events", "dropped", "malformed", "rejected")

    def __init__(self) -> None:
        self.malformed = 0
        self.dropped = 0
        self.rejected: dict[str, int] = {}
        self.cpu_events: tuple[int, ...] = ()
        self.cpu_drops: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """An enabled rule of a source, as the source sees it: enough to collect only what rules
    can match (the syscall source selects syscalls in the kernel from ``event_types``)."""

    name: str
    #: the event types the rule can match (syscall rules: the engine's inference); None: any
    event_types: frozenset[str] | None = None


@dataclass
class SourceContext:
    """What a source is opened with."""

    #: ``open_params`` from falco.yaml (trimmed), or the path given to ``-e``.
    open_params: str
    #: ``init_config`` after validation against the plugin's ``init_schema`` (defaults not filled).
    init_config: Mapping[str, Any]
    counters: SourceCounters = field(default_factory=SourceCounters)
    #: a structlog logger bound to ``source=<name>``
    log: Any = None
    #: ``-w FILE``: where a source that can record writes its raw input, in a file its
    #: ``replay`` reads back; None when not recording
    record_path: Path | None = None
    #: the enabled rules of this source when a live source is opened; None when not known
    #: (replays, tests)
    rules: tuple[RuleInfo, ...] | None = None
    #: set by a source that wants to hear of rules reloads: called with the new ``rules``
    on_rules_change: Callable[[tuple[RuleInfo, ...]], None] | None = None
    #: whether a replay shows a progress bar (``--progress``/``--no-progress``, else whether
    #: stderr is a terminal); ``falconet.progress.ProgressBar`` draws one
    progress: bool = False
    #: ``--since``/``--until`` in ns since the epoch (None: unbounded). The engine skips events
    #: outside ``since_ns <= ts < until_ns`` anyway; a source may use them to read less
    since_ns: int | None = None
    until_ns: int | None = None


@dataclass(frozen=True)
class EventSource:
    """An event stream, as a Falco source plugin provides one (one source name per plugin)."""

    #: the name rules use in ``source:`` (``k8s_audit``, ``aws_cloudtrail``)
    name: str
    #: the live stream: an async iterator of batches; it ends when the source is exhausted
    open: Callable[[SourceContext], AsyncIterator[EventBatch]]
    #: reads a file or directory for ``falconet --source NAME -e PATH``; None: the core's
    #: generic JSON-lines reader (one JSON document per line, each a ``JsonEvent``)
    replay: Callable[[Path, SourceContext], Iterator[EventBatch]] | None = None
    #: True when events are ``JsonEvent``s, so the ``json.*``/``jevt.*`` fields apply
    json_payload: bool = True
    #: Falco's plugin id (registry.yaml), shown by ``--list-plugins``; 0 when not registered
    plugin_id: int = 0
    #: True when ``open`` honours ``SourceContext.record_path`` (``falconet -w FILE``)
    can_record: bool = False
    #: the event types it produces, for ``falconet --list-events``; None: not listed (plugin
    #: sources have one event type each)
    events: Callable[[], Sequence[EventInfo]] | None = None


@dataclass(frozen=True, slots=True)
class EventParam:
    """One parameter of an event type, named and typed as upstream's event table has it."""

    name: str
    #: upstream's type name: ``FD``, ``FSPATH``, ``FLAGS32``...
    type: str
    #: the names its flag bits or enum values render as (FLAGS*, ENUMFLAGS*, MODE types)
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventInfo:
    """An event type a source produces (``evt.type``), as ``--list-events`` prints it."""

    name: str
    #: ``>``: written when the syscall is entered, ``<``: when it returns
    direction: str
    params: tuple[EventParam, ...] = ()


@dataclass(frozen=True)
class EventParser:
    """Sees every batch of the given sources, before any rule reads it (state updates)."""

    #: sources it applies to; empty: every source
    sources: tuple[str, ...]
    parse: Callable[[EventBatch], None]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, formatted once and shared by every output.

    ``line`` is what Falco writes for it: the JSON document when ``json_output`` is on, else the
    text line. ``document`` is the JSON document as a dict (built whatever ``json_output`` says),
    for outputs that need structure.
    """

    rule: str
    priority: str  # Falco's label: "Critical", "Informational", ...
    source: str
    time_ns: int
    line: str
    document: Mapping[str, Any]


class OutputError(Exception):
    """Raised by ``Output.send`` when the alerts did not reach their destination (retried)."""


@dataclass
class OutputContext:
    """What an output is created with, beside its own config mapping."""

    #: ``json_output``: whether ``Alert.line`` is JSON (outputs pick a content type from it)
    json_output: bool
    log: Any = None


class Output(Protocol):
    """A destination for alerts. The engine calls ``send`` from one task per output with the
    alerts queued since the last call; raising ``OutputError`` (or ``OSError``) makes the engine
    retry the same alerts with backoff, keeping newer alerts in the output's bounded queue.
    An output that writes files may also have a plain ``reopen()`` method: SIGUSR1 calls it
    after log rotation, as Falco does."""

    async def send(self, alerts: Sequence[Alert]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class OutputSpec:
    """An output a plugin adds; configured in falco.yaml under ``<name>_output``."""

    name: str
    create: Callable[[Mapping[str, Any], OutputContext], Output]
    #: JSON schema of the ``<name>_output`` mapping (``enabled`` is implied)
    config_schema: Mapping[str, Any] | None = None
    description: str = ""


@dataclass(frozen=True)
class Plugin:
    """A falconet plugin: identity as a Falco plugin has it, plus its capabilities."""

    name: str
    version: str
    #: the upstream plugin version this one matches; rules files' ``required_plugin_versions``
    #: are checked against it ("" means ``version``)
    compatible_version: str = ""
    description: str = ""
    contact: str = ""
    #: JSON schema for ``init_config``; None accepts any mapping
    init_schema: Mapping[str, Any] | None = None
    source: EventSource | None = None
    #: field tables, each for the source named in its ``source`` attribute
    fields: Callable[[], Iterable[FieldTable]] | None = None
    parsers: Sequence[EventParser] = ()
    outputs: Sequence[OutputSpec] = ()

    @property
    def falco_version(self) -> str:
        """The version ``required_plugin_versions`` is compared with."""
        return self.compatible_version or self.version

    @property
    def capabilities(self) -> list[str]:
        """Falco's capability names, for ``--list-plugins``."""
        caps = []
        if self.source is not None:
            caps.append("Event Sourcing")
        if self.fields is not None:
            caps.append("Field Extraction")
        if self.parsers:
            caps.append("Event Parsing")
        if self.outputs:
            caps.append("Outputs")
        return caps
