"""``SyscallEvent``: one decoded record, with its parameters read from the record on demand.

The decoder sets the header fields (every rule needs the event type, most outputs the process);
parameters stay in the record bytes until a field asks for one, and then only that one is read
(a walk over the length prefixes before it). ``fields`` is an empty mapping on the class, so the
schema-only fields of upstream's list (``fd.name``, ``proc.cmdline``..., not extracted by this
source yet) read as absent instead of failing.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from falconet_syscall_ebpf.params import decode_value, render
from falconet_syscall_ebpf.syscalls import BY_NR, EventDef, FromHeader, Kernel

__all__ = ["ABSENT", "EVENT_NAMES", "LAYOUTS", "SyscallEvent"]

ABSENT = 0xFFFF
_U16 = struct.Struct("<H").unpack_from
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Layout:
    """Where each parameter of one event type is: kernel parameter index, header attribute, or
    nowhere (absent); and the parameter names by index and by name (``evt.arg[N]``,
    ``evt.arg.NAME``)."""

    __slots__ = ("defn", "index", "names", "res_index", "tables", "types", "where")

    def __init__(self, defn: EventDef) -> None:
        self.defn = defn
        self.names = tuple(p.name for p in defn.params)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.types = tuple(p.type for p in defn.params)
        self.tables = tuple(p.table for p in defn.params)
        where: list[int | str | None] = []
        k = 0
        for p in defn.params:
            if isinstance(p.source, Kernel) or (defn.mode == "probe" and p.source is not None):
                where.append(k)
                k += 1
            elif isinstance(p.source, FromHeader):
                where.append(p.source.attr)
            else:
                where.append(None)
        self.where = tuple(where)
        res = defn.res_param
        self.res_index = None if res is None else self.index[res]


#: event type number -> Layout
LAYOUTS: dict[int, Layout] = {nr: Layout(defn) for nr, defn in BY_NR.items()}
#: event type number -> name, for every number a record may carry (unknown: "unknown")
EVENT_NAMES: list[str] = ["unknown"] * 1024
for _nr, _defn in BY_NR.items():
    EVENT_NAMES[_nr] = _defn.name
#: event type number -> "<" or ">"
EVENT_DIRS: list[str] = ["<"] * 1024
for _nr, _defn in BY_NR.items():
    EVENT_DIRS[_nr] = _defn.dir


class SyscallEvent:
    """One syscall (or process) event of the ``syscall`` source.

    ``ts``: ns since the epoch; ``res``: the return value; ``comm_raw``: the 16 comm bytes
    (``comm`` decodes them); ``buf``/``off``/``nparams``: where the record's parameters are.
    """

    __slots__ = ("buf", "comm_raw", "cpu", "dir", "evt_type", "gid", "nparams", "nr", "num",
                 "off", "pid", "ppid", "res", "source", "tid", "ts", "uid")

    #: schema-only fields read ``event.fields``: none of them is extracted from syscall events
    fields = _EMPTY

    source: str
    ts: int
    num: int
    nr: int
    evt_type: str
    dir: str
    cpu: int
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    res: int
    comm_raw: bytes
    buf: Any
    off: int
    nparams: int

    @property
    def comm(self) -> str:
        return self.comm_raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def nr_name(self) -> str:
        return self.evt_type

    @property
    def ret(self) -> int:
        return self.res

    def layout(self) -> Layout | None:
        return LAYOUTS.get(self.nr)

    def _kernel_param(self, k: int, ptype: str) -> Any:
        """The k-th parameter stored in the record, decoded as ``ptype``; None when absent."""
        buf, off = self.buf, self.off
        for _ in range(k):
            n = _U16(buf, off)[0]
            off += 2 if n == ABSENT else 2 + n
        n = _U16(buf, off)[0]
        if n == ABSENT:
            return None
        return decode_value(ptype, buf[off + 2:off + 2 + n])

    def value(self, index: int) -> Any:
        """The Python value of parameter ``index`` (upstream's order), None when absent."""
        layout = LAYOUTS.get(self.nr)
        if layout is None or not 0 <= index < len(layout.where):
            return None
        where = layout.where[index]
        if where is None:
            return None
        if type(where) is int:
            return self._kernel_param(where, layout.types[index])
        return getattr(self, where)  # type: ignore[arg-type]

    def text(self, index: int) -> str | None:
        """``evt.arg[index]``: the resolved text of a parameter, else its plain text."""
        layout = LAYOUTS.get(self.nr)
        if layout is None or not 0 <= index < len(layout.where):
            return None
        value = self.value(index)
        if value is None:
            return None
        plain, resolved = render(layout.types[index], layout.tables[index],
                                 layout.names[index], value)
        return resolved or plain

    def args_text(self) -> str:
        """``evt.args``: ``name=plain`` or ``name=plain(resolved)``, each followed by a space."""
        layout = LAYOUTS.get(self.nr)
        if layout is None or (layout.defn.mode == "enter" and layout.types[0] == "SYSCALLID"):
            return ""  # upstream prints no arguments for generic events
        parts = []
        for i, name in enumerate(layout.names):
            plain, resolved = render(layout.types[i], layout.tables[i], name, self.value(i))
            parts.append(f"{name}={plain}({resolved}) " if resolved else f"{name}={plain} ")
        return "".join(parts)

    def params(self) -> dict[str, Any]:
        """Every parameter by name, in upstream's order (None: absent)."""
        layout = LAYOUTS.get(self.nr)
        if layout is None:
            return {}
        return {name: self.value(i) for i, name in enumerate(layout.names)}

    def __repr__(self) -> str:
        return (f"SyscallEvent({self.evt_type} {self.dir} pid={self.pid} tid={self.tid} "
                f"comm={self.comm!r} res={self.res} {self.params()!r})")
