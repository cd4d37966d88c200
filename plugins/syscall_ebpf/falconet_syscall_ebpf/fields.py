"""The fields this source extracts from its events (the raw event fields, for now).

They extend upstream's schema-only table for ``syscall`` (``falconet.fields.schema_registry``):
names, types and argument kinds are upstream's, so rules validate exactly as before, and the
fields this source does not extract yet (``fd.*``, ``proc.cmdline``, ``container.*``...) keep
loading and read as absent on live events (``SyscallEvent.fields`` is empty).

Each extractor also reads a ``SchemaEvent`` (pre-extracted values by field name, the JSON-lines
replays of ``samples/syscall.jsonl``): when the event lacks the attribute, the value comes from
``event.fields``, exactly as the schema-only field would have read it. On a ``SyscallEvent`` the
attribute is there, and the ``try`` costs nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from falconet.api import ArgKind, FieldSpec, FieldTable, FieldType
from falconet.common_fields import common_field_table
from falconet_syscall_ebpf.event import ABSENT, HEADERS, LAYOUTS, LAYOUTS_BY_NAME, H
from falconet_syscall_ebpf.params import STRING_TYPES, errno_name

__all__ = ["SOURCE", "syscall_field_table"]

SOURCE = "syscall"
_U16 = struct.Struct("<H").unpack_from
Extractor = Callable[[Any], Any]
_NR, _DIR, _CPU, _PID, _TID, _PPID, _UID, _GID, _RET, _COMM = (
    H.NR, H.DIR, H.CPU, H.PID, H.TID, H.PPID, H.UID, H.GID, H.RET, H.COMM)

#: event type number -> whether it has a return value parameter (res, or fd for the events
#: that create one)
_HAS_RES = [False] * 1024
for _nr, _layout in LAYOUTS.items():
    _HAS_RES[_nr] = _layout.res_index is not None


def _evt_type(ev: Any) -> Any:
    t = ev.evt_type
    return t if t is not None else ev.fields.get("evt.type")


def _evt_dir(ev: Any) -> Any:
    try:
        h = ev.h
    except AttributeError:
        return ev.fields.get("evt.dir")
    return ">" if h[_DIR] & 1 else "<"


def _evt_cpu(ev: Any) -> Any:
    try:
        return ev.h[_CPU]
    except AttributeError:
        return ev.fields.get("evt.cpu")


def _evt_res(ev: Any) -> Any:
    try:
        h = ev.h
    except AttributeError:
        return ev.fields.get("evt.res")
    if not _HAS_RES[h[_NR] & 1023]:
        return None
    res = h[_RET]
    return "SUCCESS" if res >= 0 else errno_name(res)


def _evt_rawres(ev: Any) -> Any:
    try:
        h = ev.h
    except AttributeError:
        return ev.fields.get("evt.rawres")
    return h[_RET] if _HAS_RES[h[_NR] & 1023] else None


def _evt_failed(ev: Any) -> Any:
    try:
        h = ev.h
    except AttributeError:
        return ev.fields.get("evt.failed")
    return _HAS_RES[h[_NR] & 1023] and h[_RET] < 0


def _evt_args(ev: Any) -> Any:
    try:
        text = ev.args_text
    except AttributeError:
        return ev.fields.get("evt.args")
    return text()


def _proc_pid(ev: Any) -> Any:
    try:
        return ev.h[_PID]
    except AttributeError:
        return ev.fields.get("proc.pid")


def _proc_ppid(ev: Any) -> Any:
    try:
        return ev.h[_PPID]
    except AttributeError:
        return ev.fields.get("proc.ppid")


def _thread_tid(ev: Any) -> Any:
    try:
        return ev.h[_TID]
    except AttributeError:
        return ev.fields.get("thread.tid")


def _proc_name(ev: Any) -> Any:
    try:
        raw = ev.h[_COMM]
    except AttributeError:
        return ev.fields.get("proc.name")
    name = _COMM_NAMES.get(raw)
    if name is None:
        if len(_COMM_NAMES) >= _COMM_NAMES_KEPT:
            _COMM_NAMES.clear()
        name = _COMM_NAMES[raw] = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    return name


#: comm bytes -> proc.name, as decoded before (a machine runs few distinct commands)
_COMM_NAMES: dict[bytes, str] = {}
_COMM_NAMES_KEPT = 4096


def _user_uid(ev: Any) -> Any:
    try:
        return ev.h[_UID]
    except AttributeError:
        return ev.fields.get("user.uid")


def _group_gid(ev: Any) -> Any:
    try:
        return ev.h[_GID]
    except AttributeError:
        return ev.fields.get("group.gid")


def _make_evt_arg(arg: str | None) -> Extractor:
    """``evt.arg[N]`` (N: the parameter's position) or ``evt.arg.NAME``/``evt.arg[NAME]``.

    Per event type, a plan says where the parameter is. A string or number the probe stored is
    read here, straight from the record; a number's text (flag names, errno names) is rendered
    once per distinct value. Anything else asks ``SyscallEvent.text``."""
    if arg is None:
        return lambda ev: None
    key = f"evt.arg[{arg}]"
    plans: dict[str, _Plan | None] = {}
    u16, absent, params_at, kept = _U16, ABSENT, HEADERS.size, _TEXTS_KEPT

    def evt_arg(ev: Any) -> Any:
        try:
            buf = ev.rec[0]
        except AttributeError:
            return ev.fields.get(key)
        evt_type = ev.evt_type
        try:
            plan = plans[evt_type]
        except KeyError:
            plan = plans[evt_type] = _plan(evt_type, arg)
        if plan is None:
            return None
        index, k, fixed, texts = plan
        if k < 0:
            return ev.text(index)
        if fixed >= 0:
            off = ev.off + fixed
        else:  # walk the length prefixes to the k-th stored parameter
            off = ev.off + params_at
            while k:
                n = u16(buf, off)[0]
                off += 2 if n == absent else 2 + n
                k -= 1
        n = u16(buf, off)[0]
        if n == absent:
            return None
        raw = buf[off + 2:off + 2 + n]
        if texts is None:
            return raw.decode("utf-8", "replace")
        text = texts.get(raw)
        if text is None:
            if len(texts) >= kept:
                texts.clear()
            text = texts[raw] = ev.text(index)
        return text

    return evt_arg


#: where a parameter of one event type is: its position, its index among the parameters the
#: probe stored (-1: elsewhere), where its length prefix is (``Layout.fixed``), and for a
#: number the texts of the values seen (None: a string)
_Plan = tuple[int, int, int, dict[bytes, str] | None]
#: texts kept per number parameter (a few flag combinations, fds, errno values...)
_TEXTS_KEPT = 4096


def _plan(evt_type: str, arg: str) -> _Plan | None:
    layout = LAYOUTS_BY_NAME.get(evt_type)
    if layout is None:
        return None
    i = (int(arg) if int(arg) < len(layout.names) else None) if arg.isdigit() \
        else layout.index.get(arg)
    if i is None:
        return None
    where = layout.where[i]
    if type(where) is not int:
        return i, -1, -1, None
    return i, where, layout.fixed[i], None if layout.types[i] in STRING_TYPES else {}


def _fixed(fn: Extractor) -> Callable[[str | None], Extractor]:
    return lambda arg: fn


_ROWS: tuple[tuple[str, FieldType, ArgKind, Callable[[str | None], Extractor], str], ...] = (
    ("evt.type", FieldType.CHARBUF, ArgKind.NONE, _fixed(_evt_type),
     "the event type: the syscall's name (openat, execve...) or procexit"),
    ("evt.dir", FieldType.CHARBUF, ArgKind.NONE, _fixed(_evt_dir),
     "'<' for events written when the syscall returns, '>' when it is entered (exit, "
     "exit_group)"),
    ("evt.cpu", FieldType.INT16, ArgKind.NONE, _fixed(_evt_cpu),
     "the CPU the event happened on"),
    ("evt.args", FieldType.CHARBUF, ArgKind.NONE, _fixed(_evt_args),
     "every parameter as name=value, separated by spaces"),
    ("evt.arg", FieldType.CHARBUF, ArgKind.ANY, _make_evt_arg,
     "one parameter, by name (evt.arg.name, evt.arg[name]) or position (evt.arg[0]), as "
     "text: flag, errno and signal names resolved"),
    ("evt.res", FieldType.CHARBUF, ArgKind.NONE, _fixed(_evt_res),
     "SUCCESS, or the errno name (ENOENT...) of a failed syscall"),
    ("evt.rawres", FieldType.INT64, ArgKind.NONE, _fixed(_evt_rawres),
     "the syscall's return value as a number"),
    ("evt.failed", FieldType.BOOL, ArgKind.NONE, _fixed(_evt_failed),
     "true when the syscall returned an error"),
    ("proc.name", FieldType.CHARBUF, ArgKind.NONE, _fixed(_proc_name),
     "the process's command name (comm, 15 characters at most)"),
    ("proc.pid", FieldType.INT64, ArgKind.NONE, _fixed(_proc_pid),
     "the process id (thread group id)"),
    ("proc.ppid", FieldType.INT64, ArgKind.NONE, _fixed(_proc_ppid),
     "the parent process's id"),
    ("thread.tid", FieldType.INT64, ArgKind.NONE, _fixed(_thread_tid),
     "the thread id"),
    ("user.uid", FieldType.UINT32, ArgKind.NONE, _fixed(_user_uid),
     "the user id (real uid) of the process"),
    ("group.gid", FieldType.UINT32, ArgKind.NONE, _fixed(_group_gid),
     "the group id (real gid) of the process"),
)

#: the field names this source extracts (besides the common evt.* time fields)
EXTRACTED = frozenset(row[0] for row in _ROWS)


def syscall_field_table() -> FieldTable:
    """The ``syscall`` fields this plugin extracts, common ``evt.*`` time fields included."""
    table = common_field_table(SOURCE)
    for name, ftype, arg, make, desc in _ROWS:
        table.add(FieldSpec(name, ftype, arg=arg, description=desc, make_extractor=make))
    return table
