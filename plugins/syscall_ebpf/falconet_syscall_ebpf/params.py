"""Parameter values: decoding a record's bytes, and rendering values as upstream prints them.

Rendering follows libsinsp's ``get_param_as_str``: each value has a plain text (``argstr``: the
number, the path) and, for some types, a resolved text (flag names, errno and signal names).
``evt.arg.X`` is the resolved text when there is one, else the plain text; ``evt.args`` lists
``name=plain`` or ``name=plain(resolved)`` followed by a space, for every parameter.

Differences from upstream, until the state engine exists: file descriptors and pids are not
resolved to their file or process name; relative paths are not made absolute; the numbers of
flag parameters are the kernel's values (upstream shows its own PPM encoding of them; the flag
names are the same).

Encodings written by the probe: integers are 8 bytes little endian (the syscall register, or a
value the probe computed); strings are raw bytes; a SOCKADDR is the caller's ``struct sockaddr``
as given (at most 128 bytes); a SOCKTUPLE is ``u8 family``, then for AF_INET/AF_INET6
``src[16] dst[16] u16 sport u16 dport`` (IPv4 addresses in the first 4 bytes; ports in host
order; source and destination follow the data: local -> remote for outgoing calls, remote ->
local for accept and receives), for AF_UNIX the path of the caller's address (possibly empty).
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import struct
from collections.abc import Callable

__all__ = ["FLAG_TABLES", "STRING_TYPES", "decode_value", "errno_name", "render",
           "value_names"]

_I64 = struct.Struct("<q").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_PORTS = struct.Struct("<HH").unpack_from

# upstream's errno_to_str where Python names the code differently
_ERRNO_NAMES = {**errno.errorcode, 35: "EDEADLK", 95: "EOPNOTSUPP", 512: "ERESTARTSYS",
                513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND", 515: "ENOIOCTLCMD",
                516: "ERESTART_RESTARTBLOCK"}


def errno_name(value: int) -> str:
    """``ENOENT`` for -2 (or 2); the number as text when it has no name."""
    code = -value if value < 0 else value
    return _ERRNO_NAMES.get(code, str(value))


def _signal_name(value: int) -> str:
    try:
        return signal.Signals(value).name
    except ValueError:
        return ""


#: in the open flags' table, where upstream prints O_RDWR/O_WRONLY/O_RDONLY (kernel values 2/1/0)
_ACCMODE = -1
_ACCESS_NAMES = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_RDWR")


def _bits(*pairs: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    return pairs


#: name -> ((flag name, kernel value), ...) in upstream's order; ENUM tables map one value
FLAG_TABLES: dict[str, tuple[tuple[str, int], ...]] = {
    "open_flags": _bits(
        ("O_LARGEFILE", 0o100000), ("O_DIRECTORY", 0o200000), ("O_DIRECT", 0o40000),
        ("O_TRUNC", 0o1000), ("O_SYNC", 0o4000000), ("O_NONBLOCK", 0o4000), ("O_EXCL", 0o200),
        ("O_DSYNC", 0o10000), ("O_APPEND", 0o2000), ("O_CREAT", 0o100),
        ("O_ACCMODE", _ACCMODE), ("O_CLOEXEC", 0o2000000), ("O_TMPFILE", 0o20000000)),
    "clone_flags": _bits(
        ("CLONE_FILES", 0x400), ("CLONE_FS", 0x200), ("CLONE_IO", 0x80000000),
        ("CLONE_NEWIPC", 0x8000000), ("CLONE_NEWNET", 0x40000000), ("CLONE_NEWNS", 0x20000),
        ("CLONE_NEWPID", 0x20000000), ("CLONE_NEWUTS", 0x4000000), ("CLONE_PARENT", 0x8000),
        ("CLONE_PARENT_SETTID", 0x100000), ("CLONE_PTRACE", 0x2000), ("CLONE_SIGHAND", 0x800),
        ("CLONE_SYSVSEM", 0x40000), ("CLONE_THREAD", 0x10000), ("CLONE_UNTRACED", 0x800000),
        ("CLONE_VM", 0x100), ("CLONE_NEWUSER", 0x10000000), ("CLONE_CHILD_CLEARTID", 0x200000),
        ("CLONE_CHILD_SETTID", 0x1000000), ("CLONE_SETTLS", 0x80000), ("CLONE_VFORK", 0x4000),
        ("CLONE_NEWCGROUP", 0x2000000)),
    "mount_flags": _bits(
        ("RDONLY", 1), ("NOSUID", 2), ("NODEV", 4), ("NOEXEC", 8), ("SYNCHRONOUS", 16),
        ("REMOUNT", 32), ("MANDLOCK", 64), ("DIRSYNC", 128), ("NOATIME", 1024),
        ("NODIRATIME", 2048), ("BIND", 4096), ("MOVE", 8192), ("REC", 16384), ("SILENT", 32768),
        ("POSIXACL", 1 << 16), ("UNBINDABLE", 1 << 17), ("PRIVATE", 1 << 18),
        ("SLAVE", 1 << 19), ("SHARED", 1 << 20), ("RELATIME", 1 << 21), ("KERNMOUNT", 1 << 22),
        ("I_VERSION", 1 << 23), ("STRICTATIME", 1 << 24), ("LAZYTIME", 1 << 25),
        ("NOSEC", 1 << 28), ("BORN", 1 << 29), ("ACTIVE", 1 << 30), ("NOUSER", 1 << 31)),
    "umount_flags": _bits(("FORCE", 1), ("DETACH", 2), ("EXPIRE", 4), ("NOFOLLOW", 8)),
    "memfd_flags": _bits(("MFD_CLOEXEC", 1), ("MFD_ALLOW_SEALING", 2), ("MFD_HUGETLB", 4)),
    "unlinkat_flags": _bits(("AT_REMOVEDIR", 0x200),),
    "linkat_flags": _bits(("AT_SYMLINK_FOLLOW", 0x400), ("AT_EMPTY_PATH", 0x1000)),
    "renameat2_flags": _bits(("RENAME_NOREPLACE", 1), ("RENAME_EXCHANGE", 2),
                             ("RENAME_WHITEOUT", 4)),
    "resolve_flags": _bits(("RESOLVE_BENEATH", 8), ("RESOLVE_IN_ROOT", 0x10),
                           ("RESOLVE_NO_MAGICLINKS", 2), ("RESOLVE_NO_SYMLINKS", 4),
                           ("RESOLVE_NO_XDEV", 1), ("RESOLVE_CACHED", 0x20)),
    "finit_module_flags": _bits(("MODULE_INIT_IGNORE_MODVERSIONS", 1),
                                ("MODULE_INIT_IGNORE_VERMAGIC", 2),
                                ("MODULE_INIT_COMPRESSED_FILE", 4)),
    "mode": _bits(("S_IXOTH", 0o1), ("S_IWOTH", 0o2), ("S_IROTH", 0o4), ("S_IXGRP", 0o10),
                  ("S_IWGRP", 0o20), ("S_IRGRP", 0o40), ("S_IXUSR", 0o100), ("S_IWUSR", 0o200),
                  ("S_IRUSR", 0o400), ("S_ISVTX", 0o1000), ("S_ISGID", 0o2000),
                  ("S_ISUID", 0o4000)),
}

#: enum tables: value -> name (ENUMFLAGS parameters hold one of them)
ENUM_TABLES: dict[str, dict[int, str]] = {
    "ptrace_requests": {
        0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
        4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT",
        8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS",
        14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH",
        17: "PTRACE_DETACH", 18: "PTRACE_GETFPXREGS", 19: "PTRACE_SETFPXREGS",
        24: "PTRACE_SYSCALL", 25: "PTRACE_GET_THREAD_AREA", 26: "PTRACE_SET_THREAD_AREA",
        30: "PTRACE_ARCH_PRCTL", 31: "PTRACE_SYSEMU", 32: "PTRACE_SYSEMU_SINGLESTEP",
        33: "PTRACE_SINGLEBLOCK", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
        0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET",
        0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT",
        0x4208: "PTRACE_LISTEN", 0x4209: "PTRACE_PEEKSIGINFO", 0x420A: "PTRACE_GETSIGMASK",
        0x420B: "PTRACE_SETSIGMASK"},
    "prctl_options": {
        3: "PR_GET_DUMPABLE", 4: "PR_SET_DUMPABLE", 7: "PR_GET_KEEPCAPS", 8: "PR_SET_KEEPCAPS",
        15: "PR_SET_NAME", 16: "PR_GET_NAME", 21: "PR_GET_SECCOMP", 22: "PR_SET_SECCOMP",
        23: "PR_CAPBSET_READ", 24: "PR_CAPBSET_DROP", 27: "PR_GET_SECUREBITS",
        28: "PR_SET_SECUREBITS", 33: "PR_MCE_KILL", 35: "PR_SET_MM",
        36: "PR_SET_CHILD_SUBREAPER", 37: "PR_GET_CHILD_SUBREAPER", 38: "PR_SET_NO_NEW_PRIVS",
        39: "PR_GET_NO_NEW_PRIVS", 40: "PR_GET_TID_ADDRESS", 41: "PR_SET_THP_DISABLE",
        42: "PR_GET_THP_DISABLE", 47: "PR_CAP_AMBIENT"},
    "bpf_commands": dict(enumerate((
        "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET",
        "BPF_PROG_ATTACH", "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID", "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY", "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY", "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID",
        "BPF_ENABLE_STATS", "BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP"))),
    "socket_families": dict(enumerate((
        "AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM",
        "AF_BRIDGE", "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI",
        "AF_SECURITY", "AF_KEY", "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET",
        "AF_ATMSVC", "AF_RDS", "AF_SNA", "AF_IRDA", "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB",
        "AF_MPLS", "AF_CAN", "AF_TIPC", "AF_BLUETOOTH", "AF_IUCV", "AF_RXRPC", "AF_ISDN",
        "AF_PHONET", "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC", "AF_VSOCK"))),
}

_SIGNED_32 = frozenset({"FD", "PID", "INT32"})
_SIGNED_64 = frozenset({"ERRNO", "INT64", "INT8", "INT16"})
_UNSIGNED_32 = frozenset({"UINT32", "UID", "GID", "FLAGS32", "FLAGS16", "FLAGS8", "MODE",
                          "ENUMFLAGS32", "ENUMFLAGS16", "ENUMFLAGS8", "SIGTYPE", "UINT8",
                          "UINT16"})
#: parameter types whose value is text
STRING_TYPES = frozenset({"FSPATH", "FSRELPATH", "CHARBUF"})


def decode_value(ptype: str, data: bytes | memoryview) -> object:
    """A parameter's Python value from its record bytes: ``int`` for numbers (sign and width as
    upstream's type), ``str`` for strings and paths, ``bytes`` for buffers, addresses and
    tuples (rendered by ``render``)."""
    if ptype in STRING_TYPES:
        return bytes(data).decode("utf-8", "replace")
    if len(data) == 8 and ptype not in ("BYTEBUF", "SOCKADDR", "SOCKTUPLE"):
        if ptype in _SIGNED_32:
            v = _U64(data)[0] & 0xFFFFFFFF
            return v - (1 << 32) if v & 0x80000000 else v
        if ptype in _UNSIGNED_32:
            return _U64(data)[0] & 0xFFFFFFFF
        if ptype in _SIGNED_64:
            return _I64(data)[0]
        return _U64(data)[0]
    return bytes(data)


def _flags(table: str, value: int) -> str:
    if table == "mount_flags" and value & 0xFFFF0000 == 0xC0ED0000:
        value &= 0xFFFF  # MS_MGC_VAL, the old magic in the high bits
    names = []
    for name, bit in FLAG_TABLES[table]:
        if bit == _ACCMODE:
            names.append(_ACCESS_NAMES[value & 3])
        elif value & bit == bit:
            names.append(name)
    return "|".join(names)


def value_names(table: str) -> tuple[str, ...]:
    """The names a flag or enum table renders (``--list-events``), in upstream's order."""
    if table in FLAG_TABLES:
        names: list[str] = []
        for name, bit in FLAG_TABLES[table]:
            names += ("O_RDWR", "O_WRONLY", "O_RDONLY") if bit == _ACCMODE else (name,)
        return tuple(names)
    return tuple(ENUM_TABLES.get(table, {}).values())


def _sockaddr(raw: bytes) -> str:
    if len(raw) < 2:
        return ""
    family = int.from_bytes(raw[:2], "little")
    if family == socket.AF_INET and len(raw) >= 8:
        return f"{ipaddress.IPv4Address(raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return f"{ipaddress.IPv6Address(raw[8:24])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":  # abstract socket: upstream shows it with a leading @
            return "@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return ""


def _tuple(raw: bytes) -> str:
    if not raw:
        return ""
    family = raw[0]
    if family in (socket.AF_INET, socket.AF_INET6) and len(raw) >= 37:
        sport, dport = _PORTS(raw, 33)
        src: ipaddress.IPv4Address | ipaddress.IPv6Address
        dst: ipaddress.IPv4Address | ipaddress.IPv6Address
        if family == socket.AF_INET:
            src, dst = ipaddress.IPv4Address(raw[1:5]), ipaddress.IPv4Address(raw[17:21])
        else:
            src, dst = ipaddress.IPv6Address(raw[1:17]), ipaddress.IPv6Address(raw[17:33])
        return f"{src}:{sport}->{dst}:{dport}"
    if family == socket.AF_UNIX:
        path = raw[1:]
        if path[:1] == b"\0":
            return "@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return ""


def _printable(raw: bytes) -> str:
    """A byte buffer as upstream prints it (normal format): non-printable bytes as dots."""
    return "".join(chr(b) if 32 <= b < 127 else "." for b in raw)


def render(ptype: str, table: str, name: str, value: object) -> tuple[str, str]:
    """``(plain, resolved)`` texts of a decoded value (resolved is "" when there is none)."""
    if value is None:
        return "<NA>", ""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, bytes):
        if ptype == "SOCKADDR":
            return _sockaddr(value), ""
        if ptype == "SOCKTUPLE":
            return _tuple(value), ""
        return _printable(value), ""
    if not isinstance(value, int):
        return str(value), ""
    resolver = _RESOLVERS.get(ptype)
    if ptype == "MODE" or (name == "mode" and ptype == "UINT32"):
        plain = f"0{value:o}" if value else "0"
    else:
        plain = str(value)
    if resolver is not None:
        return plain, resolver(table, value)
    return plain, ""


def _resolve_flags(table: str, value: int) -> str:
    return _flags(table, value) if table in FLAG_TABLES else ""


def _resolve_enum(table: str, value: int) -> str:
    names = ENUM_TABLES.get(table)
    if names is None:
        return ""
    if table == "ptrace_requests":
        return names.get(value, "PTRACE_UNKNOWN")
    return names.get(value, "")


_AT_FDCWD = -100


_RESOLVERS: dict[str, Callable[[str, int], str]] = {
    "FD": lambda _t, v: "AT_FDCWD" if v == _AT_FDCWD else "",
    "ERRNO": lambda _t, v: errno_name(v) if v < 0 else "",
    "SIGTYPE": lambda _t, v: _signal_name(v),
    "SYSCALLID": lambda _t, v: "",
    "FLAGS32": _resolve_flags,
    "FLAGS16": _resolve_flags,
    "FLAGS8": _resolve_flags,
    "MODE": _resolve_flags,
    "ENUMFLAGS32": _resolve_enum,
    "ENUMFLAGS16": _resolve_enum,
    "ENUMFLAGS8": _resolve_enum,
}
