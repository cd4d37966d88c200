"""The event table: which syscalls the probe captures, their parameters, and how each is read.

One entry per event type, with upstream's parameter names and order (``supported-events.md``,
the exit event of schema 4.x: one event per syscall, carrying every parameter). Each parameter
says where its value comes from:

- ``Kernel(kind, arg, aux)``: read by the probe (``bpf/probe.bpf.c``: ``K_*``), stored in the
  record in table order;
- ``RET`` and the ``HDR_*`` sources: taken from the record header by the decoder (the return
  value, tid, pid, ppid, comm, uid, gid), so records do not carry them twice;
- ``NR_NAME``/``NR_NUM``: the syscall's name and number (generic events' ``ID``/``nativeID``);
- ``None``: not captured yet (the value is absent: ``<NA>`` in outputs, no match in rules).

The probe learns the table at start-up (``probe.py`` writes one ``sc_table`` entry per enabled
event), so adding a syscall is a change here only, unless it needs a new way of reading.
Numbers are x86_64's.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "BY_NAME",
    "BY_NR",
    "EVENTS",
    "HDR",
    "NR_PROCEXIT",
    "RET",
    "EventDef",
    "Kernel",
    "Param",
]

# kinds, as in bpf/probe.bpf.c
K_RET, K_ARG, K_STR, K_SOCKADDR, K_SOCKADDR_PLEN, K_TUPLE, K_ARGV, K_USER_U64, K_NR = range(9)
ARG_RET = 6
TUPLE_INBOUND = 1
TUPLE_SENDTO, TUPLE_RECVFROM, TUPLE_MSGHDR = 1 << 1, 2 << 1, 3 << 1

#: desc flags, as in the probe
DESC_ENABLED, DESC_AT_ENTER, DESC_STASH = 1, 2, 4
#: max parameters the probe reads per event (MAX_P)
MAX_KERNEL_PARAMS = 8
NR_PROCEXIT = 1000


@dataclass(frozen=True, slots=True)
class Kernel:
    """A parameter the probe reads: kind, argument register (0-5, 6: the return value) and a
    kind-specific operand (see the probe's K_* comments)."""

    kind: int
    arg: int = 0
    aux: int = 0


@dataclass(frozen=True, slots=True)
class FromHeader:
    """A parameter whose value is a header field (``ret``, ``tid``, ``pid``, ``ppid``...)."""

    attr: str


RET = FromHeader("ret")
NR_NAME = FromHeader("nr_name")
NR_NUM = FromHeader("nr")
HDR = MappingProxyType({name: FromHeader(name)
                        for name in ("tid", "pid", "ppid", "comm", "uid", "gid")})
Source = Kernel | FromHeader | None


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: upstream's name and type, and where falconet reads it from."""

    name: str
    type: str  # upstream's ppm type name: FD, ERRNO, FSPATH, FLAGS32...
    source: Source
    #: the flag or enum table rendering it (params.py), for FLAGS*/ENUMFLAGS*/MODE types
    table: str = ""


@dataclass(frozen=True, slots=True)
class EventDef:
    """One event type as the probe emits it."""

    name: str
    nr: int
    params: tuple[Param, ...]
    #: "exit" (read at exit), "stash" (read at enter, emitted at exit), "enter" (emitted at
    #: enter: the syscall never returns), "probe" (a dedicated program writes it)
    mode: str = "exit"
    dir: str = "<"

    @property
    def kernel_params(self) -> tuple[Param, ...]:
        """The parameters the record carries, in order."""
        return tuple(p for p in self.params if isinstance(p.source, Kernel) or
                     (self.mode == "probe" and p.source is not None))

    @property
    def res_param(self) -> str | None:
        """The parameter ``evt.res``/``evt.rawres``/``evt.failed`` read: ``res``, or ``fd`` for
        the events that create a file descriptor (upstream's EF_CREATES_FD)."""
        for p in self.params:
            if p.source is RET and p.name in ("res", "fd"):
                return p.name
        return None

    def desc_flags(self) -> int:
        return {"exit": 0, "stash": DESC_STASH, "enter": DESC_AT_ENTER, "probe": 0}[self.mode]


def _p(name: str, type_: str, source: Source = None, table: str = "") -> Param:
    return Param(name, type_, source, table)


def _arg(n: int) -> Kernel:
    return Kernel(K_ARG, n)


def _str(n: int) -> Kernel:
    return Kernel(K_STR, n)


_FD_RET = _p("fd", "FD", RET)
_RES = _p("res", "ERRNO", RET)
_OPEN_FLAGS = "open_flags"
_CLONE_PARAMS_HEAD = (
    _p("exe", "CHARBUF"), _p("args", "BYTEBUF"), _p("tid", "PID", HDR["tid"]),
    _p("pid", "PID", HDR["pid"]), _p("ptid", "PID", HDR["ppid"]), _p("cwd", "CHARBUF"),
    _p("fdlimit", "INT64"), _p("pgft_maj", "UINT64"), _p("pgft_min", "UINT64"),
    _p("vm_size", "UINT32"), _p("vm_rss", "UINT32"), _p("vm_swap", "UINT32"),
    _p("comm", "CHARBUF", HDR["comm"]), _p("cgroups", "BYTEBUF"),
)
_CLONE_PARAMS_TAIL = (
    _p("uid", "UINT32", HDR["uid"]), _p("gid", "UINT32", HDR["gid"]), _p("vtid", "PID"),
    _p("vpid", "PID"), _p("pidns_init_start_ts", "UINT64"),
)


def _clone(name: str, nr: int, flags: Source) -> EventDef:
    return EventDef(name, nr, (_p("res", "PID", RET), *_CLONE_PARAMS_HEAD,
                               _p("flags", "FLAGS32", flags, "clone_flags"), *_CLONE_PARAMS_TAIL))


def _execve(name: str, nr: int, filename: Source, argv_reg: int) -> EventDef:
    params: tuple[Param, ...] = (
        _RES, _p("exe", "CHARBUF", Kernel(K_ARGV, argv_reg, 0)),
        _p("args", "BYTEBUF", Kernel(K_ARGV, argv_reg, 1)),
        _p("tid", "PID", HDR["tid"]), _p("pid", "PID", HDR["pid"]),
        _p("ptid", "PID", HDR["ppid"]), _p("cwd", "CHARBUF"), _p("fdlimit", "UINT64"),
        _p("pgft_maj", "UINT64"), _p("pgft_min", "UINT64"), _p("vm_size", "UINT32"),
        _p("vm_rss", "UINT32"), _p("vm_swap", "UINT32"), _p("comm", "CHARBUF", HDR["comm"]),
        _p("cgroups", "BYTEBUF"), _p("env", "BYTEBUF"), _p("tty", "UINT32"),
        _p("vpgid", "PID"), _p("loginuid", "UID"), _p("flags", "FLAGS32"),
        _p("cap_inheritable", "UINT64"), _p("cap_permitted", "UINT64"),
        _p("cap_effective", "UINT64"), _p("exe_ino", "UINT64"), _p("exe_ino_ctime", "ABSTIME"),
        _p("exe_ino_mtime", "ABSTIME"), _p("uid", "UID", HDR["uid"]),
        _p("trusted_exepath", "FSPATH"), _p("pgid", "PID"), _p("gid", "GID", HDR["gid"]),
    )
    if filename is not None:
        params = (*params, _p("filename", "FSPATH", filename))
    return EventDef(name, nr, params, mode="stash")


def _generic(name: str, nr: int) -> EventDef:
    return EventDef(name, nr, (_p("ID", "SYSCALLID", NR_NAME), _p("nativeID", "UINT16", NR_NUM)),
                    mode="enter", dir=">")


def _tuple(fd_reg: int, mode: int) -> Kernel:
    return Kernel(K_TUPLE, fd_reg, mode)


EVENTS: tuple[EventDef, ...] = (
    # processes
    _execve("execve", 59, _str(0), 1),
    _execve("execveat", 322, None, 2),
    _clone("clone", 56, _arg(0)),
    _clone("fork", 57, None),
    _clone("vfork", 58, None),
    _clone("clone3", 435, Kernel(K_USER_U64, 0, 0)),
    _generic("exit", 60),
    _generic("exit_group", 231),
    EventDef("procexit", NR_PROCEXIT, (
        _p("status", "ERRNO", Kernel(K_ARG)), _p("ret", "ERRNO", Kernel(K_ARG)),
        _p("sig", "SIGTYPE", Kernel(K_ARG)), _p("core", "UINT8", Kernel(K_ARG)),
        _p("reaper_tid", "PID")), mode="probe", dir=">"),
    # files
    EventDef("open", 2, (_FD_RET, _p("name", "FSPATH", _str(0)),
                         _p("flags", "FLAGS32", _arg(1), _OPEN_FLAGS),
                         _p("mode", "UINT32", _arg(2)), _p("dev", "UINT32"), _p("ino", "UINT64"))),
    EventDef("openat", 257, (_FD_RET, _p("dirfd", "FD", _arg(0)),
                             _p("name", "FSRELPATH", _str(1)),
                             _p("flags", "FLAGS32", _arg(2), _OPEN_FLAGS),
                             _p("mode", "UINT32", _arg(3)), _p("dev", "UINT32"),
                             _p("ino", "UINT64"))),
    EventDef("openat2", 437, (_FD_RET, _p("dirfd", "FD", _arg(0)),
                              _p("name", "FSRELPATH", _str(1)),
                              _p("flags", "FLAGS32", Kernel(K_USER_U64, 2, 0), _OPEN_FLAGS),
                              _p("mode", "UINT32", Kernel(K_USER_U64, 2, 1)),
                              _p("resolve", "FLAGS32", Kernel(K_USER_U64, 2, 2), "resolve_flags"),
                              _p("dev", "UINT32"), _p("ino", "UINT64"))),
    EventDef("creat", 85, (_FD_RET, _p("name", "FSPATH", _str(0)), _p("mode", "UINT32", _arg(1)),
                           _p("dev", "UINT32"), _p("ino", "UINT64"),
                           _p("creat_flags", "FLAGS16"))),
    EventDef("close", 3, (_RES, _p("fd", "FD", _arg(0)))),
    EventDef("dup", 32, (_p("res", "FD", RET), _p("oldfd", "FD", _arg(0)))),
    EventDef("dup2", 33, (_p("res", "FD", RET), _p("oldfd", "FD", _arg(0)),
                          _p("newfd", "FD", _arg(1)))),
    EventDef("dup3", 292, (_p("res", "FD", RET), _p("oldfd", "FD", _arg(0)),
                           _p("newfd", "FD", _arg(1)),
                           _p("flags", "FLAGS32", _arg(2), _OPEN_FLAGS))),
    EventDef("unlink", 87, (_RES, _p("path", "FSPATH", _str(0)))),
    EventDef("unlinkat", 263, (_RES, _p("dirfd", "FD", _arg(0)), _p("name", "FSRELPATH", _str(1)),
                               _p("flags", "FLAGS32", _arg(2), "unlinkat_flags"))),
    EventDef("rename", 82, (_RES, _p("oldpath", "FSPATH", _str(0)),
                            _p("newpath", "FSPATH", _str(1)))),
    EventDef("renameat", 264, (_RES, _p("olddirfd", "FD", _arg(0)),
                               _p("oldpath", "FSRELPATH", _str(1)),
                               _p("newdirfd", "FD", _arg(2)),
                               _p("newpath", "FSRELPATH", _str(3)))),
    EventDef("renameat2", 316, (_RES, _p("olddirfd", "FD", _arg(0)),
                                _p("oldpath", "FSRELPATH", _str(1)),
                                _p("newdirfd", "FD", _arg(2)),
                                _p("newpath", "FSRELPATH", _str(3)),
                                _p("flags", "FLAGS32", _arg(4), "renameat2_flags"))),
    EventDef("symlink", 88, (_RES, _p("target", "CHARBUF", _str(0)),
                             _p("linkpath", "FSPATH", _str(1)))),
    EventDef("symlinkat", 266, (_RES, _p("target", "CHARBUF", _str(0)),
                                _p("linkdirfd", "FD", _arg(1)),
                                _p("linkpath", "FSRELPATH", _str(2)))),
    EventDef("link", 86, (_RES, _p("oldpath", "FSPATH", _str(0)),
                          _p("newpath", "FSPATH", _str(1)))),
    EventDef("linkat", 265, (_RES, _p("olddir", "FD", _arg(0)), _p("oldpath", "FSRELPATH", _str(1)),
                             _p("newdir", "FD", _arg(2)), _p("newpath", "FSRELPATH", _str(3)),
                             _p("flags", "FLAGS32", _arg(4), "linkat_flags"))),
    EventDef("mkdir", 83, (_RES, _p("path", "FSPATH", _str(0)), _p("mode", "UINT32", _arg(1)))),
    EventDef("mkdirat", 258, (_RES, _p("dirfd", "FD", _arg(0)), _p("path", "FSRELPATH", _str(1)),
                              _p("mode", "UINT32", _arg(2)))),
    EventDef("rmdir", 84, (_RES, _p("path", "FSPATH", _str(0)))),
    EventDef("chmod", 90, (_RES, _p("filename", "FSPATH", _str(0)),
                           _p("mode", "MODE", _arg(1), "mode"))),
    EventDef("fchmod", 91, (_RES, _p("fd", "FD", _arg(0)), _p("mode", "MODE", _arg(1), "mode"))),
    EventDef("fchmodat", 268, (_RES, _p("dirfd", "FD", _arg(0)),
                               _p("filename", "FSRELPATH", _str(1)),
                               _p("mode", "MODE", _arg(2), "mode"))),
    EventDef("mount", 165, (_RES, _p("dev", "CHARBUF", _str(0)), _p("dir", "FSPATH", _str(1)),
                            _p("type", "CHARBUF", _str(2)),
                            _p("flags", "FLAGS32", _arg(3), "mount_flags"))),
    EventDef("umount2", 166, (_RES, _p("name", "FSPATH", _str(0)),
                              _p("flags", "FLAGS32", _arg(1), "umount_flags"))),
    EventDef("memfd_create", 319, (_FD_RET, _p("name", "CHARBUF", _str(0)),
                                   _p("flags", "FLAGS32", _arg(1), "memfd_flags"))),
    # network (addresses only: no data buffers)
    EventDef("socket", 41, (_FD_RET, _p("domain", "ENUMFLAGS32", _arg(0), "socket_families"),
                            _p("type", "UINT32", _arg(1)), _p("proto", "UINT32", _arg(2)),
                            _p("flags", "FLAGS32"))),
    EventDef("connect", 42, (_RES, _p("tuple", "SOCKTUPLE", _tuple(0, 0)),
                             _p("fd", "FD", _arg(0)),
                             _p("addr", "SOCKADDR", Kernel(K_SOCKADDR, 1, 2)))),
    EventDef("accept", 43, (_FD_RET, _p("tuple", "SOCKTUPLE", _tuple(ARG_RET, TUPLE_INBOUND)),
                            _p("queuepct", "UINT8"), _p("queuelen", "UINT32"),
                            _p("queuemax", "UINT32"))),
    EventDef("accept4", 288, (_FD_RET, _p("tuple", "SOCKTUPLE", _tuple(ARG_RET, TUPLE_INBOUND)),
                              _p("queuepct", "UINT8"), _p("queuelen", "UINT32"),
                              _p("queuemax", "UINT32"), _p("flags", "INT32", _arg(3)))),
    EventDef("bind", 49, (_RES, _p("addr", "SOCKADDR", Kernel(K_SOCKADDR, 1, 2)),
                          _p("fd", "FD", _arg(0)))),
    EventDef("listen", 50, (_RES, _p("fd", "FD", _arg(0)), _p("backlog", "INT32", _arg(1)))),
    EventDef("sendto", 44, (_RES, _p("data", "BYTEBUF"), _p("fd", "FD", _arg(0)),
                            _p("size", "UINT32", _arg(2)),
                            _p("tuple", "SOCKTUPLE", _tuple(0, TUPLE_SENDTO)))),
    EventDef("recvfrom", 45, (_RES, _p("data", "BYTEBUF"),
                              _p("tuple", "SOCKTUPLE", _tuple(0, TUPLE_INBOUND | TUPLE_RECVFROM)),
                              _p("fd", "FD", _arg(0)), _p("size", "UINT32", _arg(2)))),
    EventDef("sendmsg", 46, (_RES, _p("data", "BYTEBUF"), _p("fd", "FD", _arg(0)),
                             _p("size", "UINT32"),
                             _p("tuple", "SOCKTUPLE", _tuple(0, TUPLE_MSGHDR)))),
    EventDef("recvmsg", 47, (_RES, _p("size", "UINT32"), _p("data", "BYTEBUF"),
                             _p("tuple", "SOCKTUPLE", _tuple(0, TUPLE_INBOUND | TUPLE_MSGHDR)),
                             _p("msgcontrol", "BYTEBUF"), _p("fd", "FD", _arg(0)))),
    # credentials, namespaces, security-relevant calls
    EventDef("setuid", 105, (_RES, _p("uid", "UID", _arg(0)))),
    EventDef("setgid", 106, (_RES, _p("gid", "GID", _arg(0)))),
    EventDef("setresuid", 117, (_RES, _p("ruid", "UID", _arg(0)), _p("euid", "UID", _arg(1)),
                                _p("suid", "UID", _arg(2)))),
    EventDef("setresgid", 119, (_RES, _p("rgid", "GID", _arg(0)), _p("egid", "GID", _arg(1)),
                                _p("sgid", "GID", _arg(2)))),
    EventDef("ptrace", 101, (_RES, _p("addr", "DYNAMIC", _arg(2)), _p("data", "DYNAMIC", _arg(3)),
                             _p("request", "ENUMFLAGS16", _arg(0), "ptrace_requests"),
                             _p("pid", "PID", _arg(1)))),
    EventDef("init_module", 175, (_RES, _p("img", "BYTEBUF"), _p("length", "UINT64", _arg(1)),
                                  _p("uargs", "CHARBUF", _str(2)))),
    EventDef("finit_module", 313, (_RES, _p("fd", "FD", _arg(0)), _p("uargs", "CHARBUF", _str(1)),
                                   _p("flags", "FLAGS32", _arg(2), "finit_module_flags"))),
    EventDef("bpf", 321, (_FD_RET, _p("cmd", "ENUMFLAGS32", _arg(0), "bpf_commands"))),
    EventDef("userfaultfd", 323, (_RES, _p("flags", "FLAGS32", _arg(0), _OPEN_FLAGS))),
    EventDef("unshare", 272, (_RES, _p("flags", "FLAGS32", _arg(0), "clone_flags"))),
    EventDef("setns", 308, (_RES, _p("fd", "FD", _arg(0)),
                            _p("nstype", "FLAGS32", _arg(1), "clone_flags"))),
    EventDef("prctl", 157, (_RES, _p("option", "ENUMFLAGS32", _arg(0), "prctl_options"),
                            _p("arg2_str", "CHARBUF"), _p("arg2_int", "INT64", _arg(1)))),
    EventDef("kill", 62, (_RES, _p("pid", "PID", _arg(0)), _p("sig", "SIGTYPE", _arg(1)))),
)

BY_NAME: MappingProxyType[str, EventDef] = MappingProxyType({e.name: e for e in EVENTS})
BY_NR: MappingProxyType[int, EventDef] = MappingProxyType({e.nr: e for e in EVENTS})


def _check() -> None:
    for e in EVENTS:
        if len(e.kernel_params) > MAX_KERNEL_PARAMS:  # pragma: no cover - a table bug
            raise ValueError(f"{e.name}: more than {MAX_KERNEL_PARAMS} kernel parameters")


_check()
