"""Field specs and per-source field tables.

A source (a plugin, or the schema-only tables built from upstream's field list) declares the
fields its events carry. The condition compiler looks a field up here to learn its type (which
decides how a literal is converted and which operators are legal), whether it is list-valued, which
argument it takes, and how to extract it from an event.

Extraction contract: ``FieldSpec.extractor(arg)`` returns a callable ``event -> value | None``,
resolved once at compile time. ``None`` means "absent" (every comparison except ``exists`` is
false). Values are Python-typed: ``str`` for string types, ``int`` for integer and time types,
``bool``, ``bytes`` for buffers, ``ipaddress`` objects for addresses and networks, and a ``tuple``
of those for list-valued fields (an empty list is returned as ``None``, as upstream plugins do).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

Extractor = Callable[[Any], Any]


class FieldType(StrEnum):
    """Upstream's field types (``ppm_param_type`` names as printed by ``falco --list``)."""

    CHARBUF = "CHARBUF"
    FSPATH = "FSPATH"
    FSRELPATH = "FSRELPATH"
    BYTEBUF = "BYTEBUF"
    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    PORT = "PORT"
    RELTIME = "RELTIME"
    ABSTIME = "ABSTIME"
    DOUBLE = "DOUBLE"
    IPADDR = "IPADDR"
    IPNET = "IPNET"
    DYNAMIC = "DYNAMIC"

    @property
    def is_string(self) -> bool:
        return self in _STRING_TYPES

    @property
    def is_numeric(self) -> bool:
        return self in _NUMERIC_TYPES

    @property
    def bits(self) -> int:
        """Width of an integer type (64 for time types), 0 for non-integers."""
        return _INT_BITS.get(self, 0)

    @property
    def signed(self) -> bool:
        return self in (FieldType.INT8, FieldType.INT16, FieldType.INT32, FieldType.INT64)


_STRING_TYPES = frozenset({FieldType.CHARBUF, FieldType.FSPATH, FieldType.FSRELPATH})
_INT_BITS = {
    FieldType.INT8: 8, FieldType.UINT8: 8, FieldType.INT16: 16, FieldType.UINT16: 16,
    FieldType.PORT: 16, FieldType.INT32: 32, FieldType.UINT32: 32, FieldType.INT64: 64,
    FieldType.UINT64: 64, FieldType.RELTIME: 64, FieldType.ABSTIME: 64,
}
_NUMERIC_TYPES = frozenset(_INT_BITS) | {FieldType.DOUBLE}


class ArgKind(StrEnum):
    """What goes between the brackets of ``field[arg]``."""

    NONE = "none"  # no argument allowed
    INDEX = "index"  # optional numeric index
    KEY = "key"  # optional string key
    INDEX_REQUIRED = "index_required"
    KEY_REQUIRED = "key_required"
    ANY = "any"  # optional, numeric or string (schema-only fields whose kind is unknown)


#: What an ``InlinePath.document`` function returns when it has no document for the event.
NO_DOCUMENT: Any = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InlinePath:
    """A JSON path the condition compiler may read in place, instead of calling the extractor.

    Contract (tests compare it with the extractor): ``document(event)`` returns the dict the path
    starts from, or ``NO_DOCUMENT`` (then the extractor decides), and never raises. When the
    document lacks the key ``requires``, the field is absent. Walking ``keys`` through nested
    dicts, a missing key or a non-dict on the way means the field is absent; a ``str`` at the end
    is the field's value; any other value at the end is rendered by ``render`` when given, else left
    to the extractor.
    Fields of one source should share their document function: it is called once per event.
    """

    document: Callable[[Any], Any]
    keys: tuple[str, ...]
    requires: str | None = None
    #: instead of a path: the field is the event's timestamp as decimal text whenever the
    #: document exists (``json.rawtime``)
    event_time: bool = False
    #: renders a value found at the end that is not a ``str`` (what the extractor would return
    #: for it), so the compiler need not call the extractor to walk the path again
    render: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field a source can extract."""

    name: str
    type: FieldType
    is_list: bool = False
    arg: ArgKind = ArgKind.NONE
    description: str = ""
    make_extractor: Callable[[str | None], Extractor] | None = field(
        default=None, compare=False, repr=False
    )
    #: False for fields that upstream refuses on the right-hand side of ``val()`` comparisons.
    rhs_allowed: bool = True
    #: False for fields that upstream refuses inside transformers.
    transformer_allowed: bool = True
    #: JSON sources: the path the compiler may read in place for a given argument (or None).
    inline: Callable[[str | None], InlinePath | None] | None = field(
        default=None, compare=False, repr=False
    )

    def extractor(self, arg: str | None) -> Extractor:
        """The function that reads this field (with ``arg`` bound) from an event."""
        if self.make_extractor is not None:
            return self.make_extractor(arg)
        return _schema_extractor(self.name if arg is None else f"{self.name}[{arg}]")


def _schema_extractor(key: str) -> Extractor:
    """Extractor for schema-only fields: reads ``event.fields[key]`` (used by tests and replays of
    pre-extracted values until a source brings real extraction)."""

    def extract(event: Any) -> Any:
        return event.fields.get(key)

    return extract


@dataclass
class FieldTable:
    """The fields of one event source, looked up by the longest matching name prefix."""

    source: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    def add(self, spec: FieldSpec) -> None:
        if spec.name in self.fields:
            raise ValueError(f"field {spec.name!r} is defined twice for source {self.source!r}")
        self.fields[spec.name] = spec

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.fields.values())

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def lookup(self, name: str) -> tuple[FieldSpec, str | None] | None:
        """Resolve ``name`` as upstream does: an exact name, or the longest known field name that
        is a dotted prefix of it, the rest being the argument (``evt.arg.fd`` = ``evt.arg[fd]``;
        syscall fields only, as upstream). Returns the spec and the dotted-suffix argument, or
        None for an unknown field."""
        spec = self.fields.get(name)
        if spec is not None:
            return spec, None
        if self.source != "syscall":  # plugin fields take arguments in brackets only
            return None
        cut = name.rfind(".")
        while cut > 0:
            spec = self.fields.get(name[:cut])
            if spec is not None and spec.arg is not ArgKind.NONE:
                return spec, name[cut + 1 :]
            cut = name.rfind(".", 0, cut)
        return None


class FieldRegistry:
    """All field tables, by source name. Plugins add tables; the compiler reads them."""

    def __init__(self) -> None:
        self._tables: dict[str, FieldTable] = {}

    def table(self, source: str) -> FieldTable:
        """The table for ``source``, created empty on first use."""
        return self._tables.setdefault(source, FieldTable(source))

    def add_table(self, table: FieldTable) -> None:
        merged = self.table(table.source)
        for spec in table:
            merged.add(spec)

    def replace_table(self, table: FieldTable) -> None:
        """Install ``table`` as the whole table of its source (a real source replacing the
        schema-only table built from upstream's field list)."""
        self._tables[table.source] = table

    def has_source(self, source: str) -> bool:
        return source in self._tables

    @property
    def sources(self) -> list[str]:
        return list(self._tables)


# --- schema-only tables from upstream's field list ---------------------------------------------

_TSV_TYPES = {
    "string": FieldType.CHARBUF,
    "uint64": FieldType.UINT64,
    "LIST(CHARBUF)": FieldType.CHARBUF,
}
# Syscall fields that take an argument; fields.tsv has no argument column for that source.
_SYSCALL_ARGS = {
    "evt.arg": ArgKind.ANY, "evt.rawarg": ArgKind.ANY, "evt.type.is": ArgKind.KEY_REQUIRED,
    "evt.around": ArgKind.INDEX_REQUIRED, "evt.abspath": ArgKind.ANY,
    "evt.abspath.src": ArgKind.ANY, "evt.abspath.dst": ArgKind.ANY,
    "proc.aname": ArgKind.INDEX, "proc.apid": ArgKind.INDEX, "proc.aexe": ArgKind.INDEX,
    "proc.aexepath": ArgKind.INDEX, "proc.acmdline": ArgKind.INDEX, "proc.aenv": ArgKind.ANY,
    "proc.env": ArgKind.KEY, "proc.args": ArgKind.ANY, "fd.types": ArgKind.INDEX,
    "thread.cgroup": ArgKind.KEY_REQUIRED, "proc.cmdnargs": ArgKind.NONE,
    "container.mount": ArgKind.ANY, "container.mount.source": ArgKind.ANY,
    "container.mount.dest": ArgKind.ANY, "container.mount.mode": ArgKind.ANY,
    "container.mount.rdwr": ArgKind.ANY, "container.mount.propagation": ArgKind.ANY,
    "container.label": ArgKind.KEY_REQUIRED, "k8s.pod.label": ArgKind.KEY_REQUIRED,
    "k8s.pod.labels": ArgKind.NONE, "k8s.ns.label": ArgKind.KEY_REQUIRED,
    "thread.vtid": ArgKind.NONE, "fs.path.name": ArgKind.NONE,
}
_TSV_ARGS = {
    "": ArgKind.NONE, "None": ArgKind.NONE, "Index": ArgKind.INDEX,
    "Key, Required": ArgKind.KEY_REQUIRED, "Key": ArgKind.KEY,
}
# Fields upstream refuses as val() right-hand sides (sinsp_filtercheck.cpp::add_filter_value;
# flag EPF_NO_RHS). All of them but fd.types also carry EPF_NO_TRANSFORMER.
_NO_RHS = frozenset({
    "fd.ip", "fd.net", "fd.port", "fd.proto", "evt.rawarg", "evt.around", "proc.aname",
    "proc.apid", "proc.aexe", "proc.aexepath", "proc.acmdline", "proc.aenv", "fd.cip.name",
    "fd.sip.name", "fd.lip.name", "fd.rip.name", "fd.types", "fd.cnet", "fd.snet", "fd.lnet",
    "fd.rnet",
})
_NO_TRANSFORMER = _NO_RHS - {"fd.types"}


# Deprecated syscall fields that Falco 0.44 still accepts (with LOAD_DEPRECATED_ITEM) although
# its published field list no longer shows them.
_DEPRECATED_SYSCALL_FIELDS = (
    FieldSpec("evt.dir", FieldType.CHARBUF),
    FieldSpec("evt.latency", FieldType.RELTIME),
    FieldSpec("evt.latency.s", FieldType.RELTIME),
    FieldSpec("evt.latency.ns", FieldType.RELTIME),
    FieldSpec("evt.latency.human", FieldType.CHARBUF),
    FieldSpec("evt.wait_latency", FieldType.RELTIME),
)


def find_upstream_fields_tsv() -> Path | None:
    """Locate ``shared/upstream/fields/fields.tsv``: ``$FALCONET_FIELDS_TSV``, else a ``shared``
    folder beside the project (or any parent of the working directory)."""
    env = os.environ.get("FALCONET_FIELDS_TSV")
    if env:
        return Path(env) if Path(env).is_file() else None
    starts = [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for parent in [start, *start.parents]:
            candidate = parent / "shared" / "upstream" / "fields" / "fields.tsv"
            if candidate.is_file():
                return candidate
    return None


def parse_fields_tsv(lines: Iterable[str]) -> list[tuple[str, FieldSpec]]:
    """Parse upstream's machine-readable field list into (source, spec) pairs."""
    rows = csv.reader((ln for ln in lines if not ln.startswith("#")), delimiter="\t")
    out: list[tuple[str, FieldSpec]] = []
    header = True
    for row in rows:
        if header:
            header = False
            continue
        if len(row) < 4:
            continue
        source, _cls, name, type_text = row[:4]
        arg_text = row[4] if len(row) > 4 else ""
        is_list = type_text.endswith("(list)") or type_text.startswith("LIST(")
        base = type_text.removesuffix(" (list)")
        ftype = _TSV_TYPES.get(base) or FieldType(base)
        arg = _SYSCALL_ARGS.get(name, ArgKind.NONE) if source == "syscall" else _TSV_ARGS.get(
            arg_text, ArgKind.ANY
        )
        out.append((source, FieldSpec(name, ftype, is_list, arg, rhs_allowed=name not in _NO_RHS,
                                      transformer_allowed=name not in _NO_TRANSFORMER)))
    return out


def schema_registry(path: Path | None = None) -> FieldRegistry:
    """A registry with upstream's syscall, k8s_audit and aws_cloudtrail fields, schema only."""
    path = path or find_upstream_fields_tsv()
    if path is None:
        raise FileNotFoundError(
            "upstream field list not found: set FALCONET_FIELDS_TSV to the path of "
            "shared/upstream/fields/fields.tsv"
        )
    from falconet.common_fields import common_field_table, json_field_specs

    registry = FieldRegistry()
    with path.open(encoding="utf-8") as fh:
        for source, spec in parse_fields_tsv(fh):
            table = registry.table(source)
            if not len(table) and source != "syscall":
                # plugin sources also have the evt.* fields and, being JSON, the json plugin's
                for common in [*common_field_table(source), *json_field_specs()]:
                    table.add(common)
            if spec.name not in table:
                table.add(spec)
    syscall = registry.table("syscall")
    for spec in _DEPRECATED_SYSCALL_FIELDS:
        if spec.name not in syscall:
            syscall.add(spec)
    return registry
