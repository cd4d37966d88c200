"""The decoder on records built byte by byte as the probe lays them out (README: framed record
layout, version 1): header fields, parameters read on demand, BUSY/DISCARD frames and cut
buffers, upstream's renderings, and the field extractors on both event kinds (live
``SyscallEvent``s and the ``SchemaEvent``s of JSON-lines replays)."""

from __future__ import annotations

import socket
import struct

import pytest

from falconet.event import SchemaEvent
from falconet.fields import FieldSpec, FieldType
from falconet_syscall_ebpf import PROBE_VERSION
from falconet_syscall_ebpf.decode import (
    BUSY,
    DISCARD,
    SyscallBatch,
    count_records,
    decode_records,
    frame_offsets,
    iter_frames,
)
from falconet_syscall_ebpf.fields import syscall_field_table
from falconet_syscall_ebpf.params import errno_name, render

HEADER = struct.Struct("<HBBHHQIIIIIIq16s")
ABSENT = object()
BOOT = 1_714_557_600_000_000_000


def param(value: object) -> bytes:
    if value is ABSENT:
        return struct.pack("<H", 0xFFFF)
    if isinstance(value, int):
        return struct.pack("<Hq", 8, value) if value < 0 else struct.pack("<HQ", 8, value)
    assert isinstance(value, bytes)
    return struct.pack("<H", len(value)) + value


def record(nr: int, params: list[object], *, ret: int = 0, pid: int = 4242, tid: int = 4243,
           ppid: int = 1, uid: int = 1000, gid: int = 100, comm: bytes = b"cat",
           ts: int = 123_456_789, cpu: int = 1, direction: int = 0) -> bytes:
    body = b"".join(param(p) for p in params)
    size = HEADER.size + len(body)
    return HEADER.pack(nr, direction, len(params), size, cpu, ts, pid, tid, ppid, uid, gid, 0,
                       ret, comm) + body


def frame(rec: bytes, flags: int = 0) -> bytes:
    pad = -(8 + len(rec)) % 8
    return struct.pack("<II", len(rec) | flags, 0) + rec + b"\0" * pad


def openat(name: bytes = b"/etc/shadow", fd: int = 3, flags: int = 0o2000000) -> bytes:
    return record(257, [-100, name, flags, 0], ret=fd)


def field(name: str, ev: object, arg: str | None = None) -> object:
    found = syscall_field_table().lookup(name)
    assert found is not None, name
    spec, suffix = found
    return spec.extractor(arg if arg is not None else suffix)(ev)


def test_probe_version_is_the_documented_layout() -> None:
    assert PROBE_VERSION == 1
    assert HEADER.size == 64


def test_an_openat_record_decodes_to_its_header_and_parameters() -> None:
    (ev,) = decode_records(frame(openat()), boot_ns=BOOT)
    assert (ev.source, ev.evt_type, ev.nr, ev.dir, ev.cpu) == ("syscall", "openat", 257, "<", 1)
    assert (ev.pid, ev.tid, ev.ppid, ev.uid, ev.gid, ev.comm) == (4242, 4243, 1, 1000, 100,
                                                                   "cat")
    assert (ev.ts, ev.res, ev.num) == (BOOT + 123_456_789, 3, 0)
    assert ev.params() == {"fd": 3, "dirfd": -100, "name": "/etc/shadow", "flags": 0o2000000,
                           "mode": 0, "dev": None, "ino": None}
    assert field("evt.type", ev) == "openat"
    assert field("evt.arg.name", ev) == "/etc/shadow"
    assert field("evt.arg", ev, "0") == "3"
    assert field("evt.arg", ev, "7") is None
    assert field("evt.arg.nosuch", ev) is None
    assert field("evt.args", ev) == ("fd=3 dirfd=-100(AT_FDCWD) name=/etc/shadow "
                                     "flags=524288(O_RDONLY|O_CLOEXEC) mode=0 dev=<NA> ino=<NA> ")
    assert (field("evt.res", ev), field("evt.rawres", ev), field("evt.failed", ev)) == (
        "SUCCESS", 3, False)
    assert (field("proc.name", ev), field("proc.pid", ev), field("thread.tid", ev),
            field("user.uid", ev), field("group.gid", ev), field("proc.ppid", ev)) == (
        "cat", 4242, 4243, 1000, 100, 1)
    assert field("evt.time", ev) == "10:00:00.123456789"
    # a schema-only field of upstream's list (not extracted yet) reads as absent
    assert FieldSpec("fd.name", FieldType.CHARBUF).extractor(None)(ev) is None


def test_a_failed_call_renders_its_errno() -> None:
    (ev,) = decode_records(frame(record(87, [b"/tmp/x"], ret=-2)))
    assert (field("evt.res", ev), field("evt.rawres", ev), field("evt.failed", ev)) == (
        "ENOENT", -2, True)
    assert field("evt.args", ev) == "res=-2(ENOENT) path=/tmp/x "
    assert field("evt.arg.res", ev) == "ENOENT"
    assert errno_name(-13) == "EACCES"
    assert errno_name(-95) == "EOPNOTSUPP"
    assert errno_name(-9999) == "-9999"


def test_busy_discarded_and_cut_frames() -> None:
    data = frame(openat(b"/a")) + frame(openat(b"/b"), DISCARD) + frame(openat(b"/c"))
    assert [ev.params()["name"] for ev in decode_records(data)] == ["/a", "/c"]
    assert count_records(data) == 2
    busy = frame(openat(b"/a")) + frame(openat(b"/b"), BUSY) + frame(openat(b"/c"))
    assert [ev.params()["name"] for ev in decode_records(busy)] == ["/a"]
    assert count_records(busy) == 1
    whole = frame(openat(b"/a")) + frame(openat(b"/b"))
    cut = whole[:-9]
    assert [ev.params()["name"] for ev in decode_records(cut)] == ["/a"]
    assert [length for _off, length in iter_frames(whole)] == [len(openat(b"/a"))] * 2
    assert decode_records(b"") == []
    assert decode_records(frame(b"\0" * 20)) == []  # shorter than a header: skipped


def test_frame_offsets_walk_a_window_and_stop_before_an_unfinished_frame() -> None:
    first, second = frame(openat(b"/a")), frame(openat(b"/bb"))
    data = b"x" * 16 + first + frame(openat(b"/skip"), DISCARD) + second
    discarded = len(frame(openat(b"/skip")))
    # offsets count from the window's start; every complete frame is consumed, the discarded
    # one too
    assert frame_offsets(data, 16) == ([0, len(first) + discarded], len(data) - 16)
    busy = first + frame(openat(b"/b"), BUSY) + second
    assert frame_offsets(busy) == ([0], len(first))
    assert frame_offsets(first + second, 0, len(first) + 8) == ([0], len(first))  # cut short


def test_a_batch_is_read_through_one_cursor_and_keeps_what_it_is_asked_to() -> None:
    data = frame(openat(b"/a")) + frame(openat(b"/b")) + frame(record(3, [5], ret=0))
    batch = SyscallBatch(data, frame_offsets(data)[0], boot_ns=BOOT)
    batch.number(10)
    seen, kept = [], []
    for ev in batch.cursor():
        seen.append((id(ev), ev.num, ev.evt_type, ev.pid))
        if ev.evt_type == "openat":
            kept.append(batch.keep(ev))
    assert len({ident for ident, *_rest in seen}) == 1  # one object, moved along
    assert [rest for _ident, *rest in seen] == [[10, "openat", 4242], [11, "openat", 4242],
                                                [12, "close", 4242]]
    assert [(ev.num, ev.params()["name"], ev.ts) for ev in kept] == [
        (10, "/a", BOOT + 123_456_789), (11, "/b", BOOT + 123_456_789)]
    # read as a sequence (an event parser): real events, numbered alike, which the cursor
    # then goes over
    events = list(batch)
    assert [ev.num for ev in events] == [10, 11, 12] and len({id(ev) for ev in events}) == 3
    assert list(batch.cursor()) == events and batch.keep(events[0]) is events[0]
    assert len(batch) == 3 and batch[2].evt_type == "close"


def test_absent_and_header_parameters() -> None:
    (ev,) = decode_records(frame(record(59, [b"bash", ABSENT, b"/bin/bash"], ret=0,
                                        comm=b"bash")))
    params = ev.params()
    assert (params["res"], params["exe"], params["args"], params["filename"]) == (
        0, "bash", None, "/bin/bash")
    assert (params["tid"], params["pid"], params["ptid"], params["comm"]) == (4243, 4242, 1,
                                                                            "bash")
    assert params["cwd"] is None
    assert field("evt.arg.args", ev) is None
    (ev,) = decode_records(frame(record(59, [b"sh", b"-c\0echo hi\0", b"/bin/sh"])))
    assert field("evt.arg.args", ev) == "-c.echo hi."


def test_generic_and_process_events() -> None:
    (ev,) = decode_records(frame(record(231, [231, 231], direction=1)))
    assert (ev.evt_type, ev.dir, field("evt.dir", ev)) == ("exit_group", ">", ">")
    assert ev.params() == {"ID": "exit_group", "nativeID": 231}
    assert field("evt.args", ev) == ""  # upstream prints no arguments for generic events
    assert field("evt.res", ev) is None and field("evt.failed", ev) is False
    (ev,) = decode_records(frame(record(1000, [0x8b, 0, 11, 1], direction=1)))
    assert (ev.evt_type, ev.dir) == ("procexit", ">")
    assert ev.params() == {"status": 0x8b, "ret": 0, "sig": 11, "core": 1, "reaper_tid": None}
    assert field("evt.arg.sig", ev) == "SIGSEGV"


def _tuple(family: int, src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    return (bytes([family]) + src.ljust(16, b"\0") + dst.ljust(16, b"\0")
            + struct.pack("<HH", sport, dport))


def test_addresses_and_tuples() -> None:
    v4 = struct.pack("<H", socket.AF_INET) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1])
    tup = _tuple(socket.AF_INET, bytes([127, 0, 0, 1]), 40000, bytes([127, 0, 0, 1]), 8080)
    (ev,) = decode_records(frame(record(42, [tup, 3, v4 + b"\0" * 8], ret=-111)))
    assert field("evt.arg.tuple", ev) == "127.0.0.1:40000->127.0.0.1:8080"
    assert field("evt.arg.addr", ev) == "127.0.0.1:8080"
    assert field("evt.res", ev) == "ECONNREFUSED"
    lo6 = socket.inet_pton(socket.AF_INET6, "::1")
    v6 = (struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 443) + b"\0" * 4 + lo6
          + b"\0" * 4)
    assert render("SOCKADDR", "", "addr", v6) == ("::1:443", "")
    assert render("SOCKTUPLE", "", "tuple",
                  _tuple(socket.AF_INET6, lo6, 5000, lo6, 443)) == ("::1:5000->::1:443", "")
    unix = struct.pack("<H", socket.AF_UNIX) + b"/run/x.sock\0"
    assert render("SOCKADDR", "", "addr", unix) == ("/run/x.sock", "")
    assert render("SOCKADDR", "", "addr", struct.pack("<H", 1) + b"\0abstract") == (
        "@abstract", "")
    assert render("SOCKTUPLE", "", "tuple", bytes([1]) + b"/run/x.sock") == ("/run/x.sock", "")


@pytest.mark.parametrize(("ptype", "table", "value", "expected"), [
    ("FLAGS32", "open_flags", 0o1101, ("577", "O_TRUNC|O_CREAT|O_WRONLY")),
    ("FLAGS32", "open_flags", 0o20200002, ("4259842", "O_DIRECTORY|O_RDWR|O_TMPFILE")),
    ("FLAGS32", "clone_flags", 0x10000 | 0x100, ("65792", "CLONE_THREAD|CLONE_VM")),
    ("FLAGS32", "mount_flags", 0xC0ED0000 | 4096, ("3236761600", "BIND")),
    ("MODE", "mode", 0o755, ("0755", "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR")),
    ("ENUMFLAGS16", "ptrace_requests", 0x4206, ("16902", "PTRACE_SEIZE")),
    ("ENUMFLAGS16", "ptrace_requests", 99, ("99", "PTRACE_UNKNOWN")),
    ("ENUMFLAGS32", "socket_families", 10, ("10", "AF_INET6")),
    ("ENUMFLAGS32", "bpf_commands", 5, ("5", "BPF_PROG_LOAD")),
    ("ENUMFLAGS32", "prctl_options", 15, ("15", "PR_SET_NAME")),
    ("SIGTYPE", "", 9, ("9", "SIGKILL")),
    ("FD", "", -100, ("-100", "AT_FDCWD")),
    ("ERRNO", "", 0, ("0", "")),
    ("UINT32", "", None, ("<NA>", "")),
])
def test_renderings(ptype: str, table: str, value: int | None,
                    expected: tuple[str, str]) -> None:
    assert render(ptype, table, "x", value) == expected


def test_replayed_schema_events_read_their_given_values() -> None:
    ev = SchemaEvent("syscall", {"evt.type": "ptrace", "proc.name": "gdb", "evt.res": "SUCCESS",
                                 "evt.arg[request]": "PTRACE_ATTACH", "user.uid": 0,
                                 "proc.pid": 7}, evt_type="ptrace")
    assert field("evt.type", ev) == "ptrace"
    assert field("proc.name", ev) == "gdb"
    assert field("evt.arg.request", ev) == "PTRACE_ATTACH"
    assert field("evt.arg", ev, "request") == "PTRACE_ATTACH"
    assert (field("evt.res", ev), field("user.uid", ev), field("proc.pid", ev)) == (
        "SUCCESS", 0, 7)
    assert field("thread.tid", ev) is None
    assert field("evt.args", ev) is None
