"""``SyscallEvent``: one decoded record, with its parameters read from the record on demand.

An event is its record's place in a buffer (``rec``, ``off``) and its headers, unpacked by one
``struct`` call into the tuple ``h``, from which the header fields (``pid``, ``tid``, ``res``...)
are read. Parameters stay in the record bytes until a field asks for one, and then only that
one is read (a walk over the length prefixes before it). ``fields`` is an empty mapping on the
class, so the schema-only fields of upstream's list (``fd.name``, ``proc.cmdline``..., not
extracted by this source yet) read as absent.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from falconet_syscall_ebpf.params import STRING_TYPES, decode_value, render
from falconet_syscall_ebpf.syscalls import BY_NR, K_ARG, K_NR, K_RET, EventDef, FromHeader, Kernel

__all__ = ["ABSENT", "EVENT_NAMES", "LAYOUTS", "H", "SyscallEvent"]

ABSENT = 0xFFFF
_U16 = struct.Struct("<H").unpack_from
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class H:
    """Positions in ``SyscallEvent.h``: the frame header, then the record header (decode.py)."""

    NR, DIR, NPARAMS, CPU, TS, PID, TID, PPID, UID, GID, RET, COMM = (2, 3, 4, 6, 7, 8, 9, 10,
                                                                      11, 12, 14, 15)


#: the frame header and the record header, unpacked together (see decode.py)
HEADERS = struct.Struct("<II HBBHH Q IIIIII q 16s")
_HEADERS_SIZE = HEADERS.size
#: kernel parameter kinds the probe always stores as 8 bytes
_NUMBER_KINDS = frozenset({K_RET, K_ARG, K_NR})


class Layout:
    """Where each parameter of one event type is: kernel parameter index, header attribute, or
    nowhere (absent); and the parameter names by index and by name (``evt.arg[N]``,
    ``evt.arg.NAME``). ``fixed``: where a stored parameter's length prefix is in the frame when
    only numbers (always 8 bytes) come before it, else -1 (found by walking the prefixes)."""

    __slots__ = ("defn", "fixed", "index", "names", "res_index", "tables", "types", "where")

    def __init__(self, defn: EventDef) -> None:
        self.defn = defn
        self.names = tuple(p.name for p in defn.params)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.types = tuple(p.type for p in defn.params)
        self.tables = tuple(p.table for p in defn.params)
        where: list[int | str | None] = []
        fixed: list[int] = []
        k = 0
        at = _HEADERS_SIZE  # -1 once a parameter of variable size is stored
        for p in defn.params:
            if isinstance(p.source, Kernel) or (defn.mode == "probe" and p.source is not None):
                where.append(k)
                fixed.append(at)
                k += 1
                numeric = isinstance(p.source, Kernel) and p.source.kind in _NUMBER_KINDS
                at = at + 10 if at >= 0 and numeric else -1
            else:
                where.append(p.source.attr if isinstance(p.source, FromHeader) else None)
                fixed.append(-1)
        self.where = tuple(where)
        self.fixed = tuple(fixed)
        res = defn.res_param
        self.res_index = None if res is None else self.index[res]


#: event type number -> Layout
LAYOUTS: dict[int, Layout] = {nr: Layout(defn) for nr, defn in BY_NR.items()}
#: event type name -> Layout
LAYOUTS_BY_NAME: dict[str, Layout] = {layout.defn.name: layout for layout in LAYOUTS.values()}
#: event type number -> name, for every number a record may carry (unknown: "unknown")
EVENT_NAMES: list[str] = ["unknown"] * 1024
for _nr, _defn in BY_NR.items():
    EVENT_NAMES[_nr] = _defn.name


def _header(index: int, doc: str) -> property:
    def get(self: SyscallEvent) -> Any:
        return self.h[index]

    return property(get, doc=doc)


class SyscallEvent:
    """One syscall (or process) event of the ``syscall`` source.

    Stored: ``rec`` (the buffer and the boot time of its records, shared by the events of one
    read), ``off`` (where the frame starts), ``h`` (the frame and record headers, unpacked;
    ``H`` names its positions), ``evt_type`` and ``num``. ``ts`` (ns since the epoch), ``nr``,
    ``dir``, ``cpu``, ``pid``, ``tid``, ``ppid``, ``uid``, ``gid``, ``res`` (the return value)
    and ``comm`` are read from ``h``.
    """

    __slots__ = ("evt_type", "h", "num", "off", "rec")

    source = "syscall"
    #: schema-only fields read ``event.fields``: none of them is extracted from syscall events
    fields = _EMPTY

    rec: tuple[Any, int]
    off: int
    h: tuple[Any, ...]
    evt_type: str
    num: int

    def copy(self) -> SyscallEvent:
        """An event of the same record (a reused cursor's current one, kept)."""
        ev = self.__class__.__new__(self.__class__)
        ev.rec, ev.off, ev.h, ev.evt_type, ev.num = (self.rec, self.off, self.h,
                                                     self.evt_type, self.num)
        return ev

    @property
    def ts(self) -> int:
        """ns since the epoch."""
        return self.h[H.TS] + self.rec[1]

    @property
    def buf(self) -> Any:
        return self.rec[0]

    @property
    def params_off(self) -> int:
        """Where the record's parameters start in ``buf``."""
        return self.off + HEADERS.size

    nr = _header(H.NR, "the syscall number (x86_64), or 1000+ for process events")
    nparams = _header(H.NPARAMS, "parameters stored in the record")
    cpu = _header(H.CPU, "the CPU")
    pid = _header(H.PID, "the thread group id")
    tid = _header(H.TID, "the thread id")
    ppid = _header(H.PPID, "the parent's thread group id")
    uid = _header(H.UID, "the real uid")
    gid = _header(H.GID, "the real gid")
    res = _header(H.RET, "the return value")
    ret = res
    comm_raw = _header(H.COMM, "the comm bytes, NUL padded")

    @property
    def dir(self) -> str:
        return ">" if self.h[H.DIR] & 1 else "<"

    @property
    def comm(self) -> str:
        return self.h[H.COMM].split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def nr_name(self) -> str:
        return self.evt_type

    def layout(self) -> Layout | None:
        return LAYOUTS_BY_NAME.get(self.evt_type)

    def _kernel_bytes(self, k: int) -> Any:
        """The bytes of the k-th parameter stored in the record; None when absent."""
        buf, off = self.rec[0], self.off + _HEADERS_SIZE
        for _ in range(k):
            n = _U16(buf, off)[0]
            off += 2 if n == ABSENT else 2 + n
        n = _U16(buf, off)[0]
        if n == ABSENT:
            return None
        return buf[off + 2:off + 2 + n]

    def value(self, index: int) -> Any:
        """The Python value of parameter ``index`` (upstream's order), None when absent."""
        layout = LAYOUTS_BY_NAME.get(self.evt_type)
        if layout is None or not 0 <= index < len(layout.where):
            return None
        where = layout.where[index]
        if where is None:
            return None
        if type(where) is int:
            data = self._kernel_bytes(where)
            return None if data is None else decode_value(layout.types[index], data)
        return getattr(self, where)  # type: ignore[arg-type]

    def text(self, index: int) -> str | None:
        """``evt.arg[index]``: the resolved text of a parameter, else its plain text."""
        layout = LAYOUTS_BY_NAME.get(self.evt_type)
        if layout is None or not 0 <= index < len(layout.where):
            return None
        ptype = layout.types[index]
        where = layout.where[index]
        if type(where) is int and ptype in STRING_TYPES:  # the common case, made short
            data = self._kernel_bytes(where)
            return None if data is None else str(data, "utf-8", "replace")
        value = self.value(index)
        if value is None:
            return None
        plain, resolved = render(ptype, layout.tables[index], layout.names[index], value)
        return resolved or plain

    def args_text(self) -> str:
        """``evt.args``: ``name=plain`` or ``name=plain(resolved)``, each followed by a space."""
        layout = LAYOUTS_BY_NAME.get(self.evt_type)
        if layout is None or (layout.defn.mode == "enter" and layout.types[0] == "SYSCALLID"):
            return ""  # upstream prints no arguments for generic events
        parts = []
        for i, name in enumerate(layout.names):
            plain, resolved = render(layout.types[i], layout.tables[i], name, self.value(i))
            parts.append(f"{name}={plain}({resolved}) " if resolved else f"{name}={plain} ")
        return "".join(parts)

    def params(self) -> dict[str, Any]:
        """Every parameter by name, in upstream's order (None: absent)."""
        layout = LAYOUTS_BY_NAME.get(self.evt_type)
        if layout is None:
            return {}
        return {name: self.value(i) for i, name in enumerate(layout.names)}

    def __repr__(self) -> str:
        return (f"SyscallEvent({self.evt_type} {self.dir} pid={self.pid} tid={self.tid} "
                f"comm={self.comm!r} res={self.res} {self.params()!r})")
