"""Framed records -> ``SyscallEvent``s, one ``struct`` unpack per record.

A buffer holds consecutive frames as the BPF ring buffer lays them out (see the package README):
an 8-byte frame header (``u32`` length with the BUSY and DISCARD bits, ``u32`` page offset),
the record, padding to 8 bytes. The frame header and the record's 64-byte header are read by a
single ``unpack_from``; parameters are left in the buffer for the event to read on demand.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from falconet_syscall_ebpf.event import EVENT_NAMES, SyscallEvent

__all__ = ["BUSY", "DISCARD", "FRAME_HEADER", "RECORD_HEADER", "count_records",
           "decode_records", "iter_frames"]

BUSY = 1 << 31
DISCARD = 1 << 30
LEN_MASK = DISCARD - 1
FRAME_HEADER = 8
RECORD_HEADER = 64
#: frame header + record header
_HEADERS = struct.Struct("<II HBBHH Q IIIIII q 16s")
_FRAME = struct.Struct("<I")
_DIRS = ("<", ">")  # record dir 0: exit, 1: enter
assert _HEADERS.size == FRAME_HEADER + RECORD_HEADER


def iter_frames(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of each complete, non-discarded record (offset past the frame
    header); stops at a BUSY frame or one cut short."""
    end = len(buf)
    off = 0
    unpack = _FRAME.unpack_from
    while off + FRAME_HEADER <= end:
        flen = unpack(buf, off)[0]
        if flen & BUSY:
            return
        size = flen & LEN_MASK
        if off + FRAME_HEADER + size > end:
            return
        if not flen & DISCARD:
            yield off + FRAME_HEADER, size
        off += (FRAME_HEADER + size + 7) & ~7


def count_records(buf: bytes | bytearray | memoryview) -> int:
    """How many complete records ``buf`` holds (no decoding)."""
    return sum(1 for _ in iter_frames(buf))


def decode_records(buf: bytes | bytearray | memoryview, *, boot_ns: int = 0,
                   source: str = "syscall") -> list[SyscallEvent]:
    """The events of every complete record in ``buf`` (see the module docstring); ``boot_ns``
    turns boot-clock timestamps into ns since the epoch. Records shorter than a header or
    whose parameters overrun the record are skipped."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    end = len(view)
    off = 0
    out: list[SyscallEvent] = []
    append = out.append
    unpack = _HEADERS.unpack_from
    unpack_frame = _FRAME.unpack_from
    names, dirs = EVENT_NAMES, _DIRS
    new = SyscallEvent.__new__
    cls = SyscallEvent
    while off + FRAME_HEADER <= end:
        flen = unpack_frame(view, off)[0]
        if flen & BUSY:
            break
        size = flen & LEN_MASK
        nxt = off + ((FRAME_HEADER + size + 7) & ~7)
        if off + FRAME_HEADER + size > end:
            break
        if flen & DISCARD or size < RECORD_HEADER:
            off = nxt
            continue
        (_f, _p, nr, d, nparams, _len, cpu, ts, pid, tid, ppid, uid, gid, _r, ret,
         comm) = unpack(view, off)
        ev = new(cls)
        ev.source = source
        ev.ts = ts + boot_ns
        ev.num = 0
        ev.nr = nr
        ev.evt_type = names[nr & 1023]
        ev.dir = dirs[d & 1]
        ev.cpu = cpu
        ev.pid = pid
        ev.tid = tid
        ev.ppid = ppid
        ev.uid = uid
        ev.gid = gid
        ev.res = ret
        ev.comm_raw = comm
        ev.buf = view
        ev.off = off + FRAME_HEADER + RECORD_HEADER
        ev.nparams = nparams
        append(ev)
        off = nxt
    return out
