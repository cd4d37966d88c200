"""Framed records -> ``SyscallEvent``s, one ``struct`` unpack per record.

A buffer holds consecutive frames as the BPF ring buffer lays them out (see the package README):
an 8-byte frame header (``u32`` length with the BUSY and DISCARD bits, ``u32`` page offset),
the record, padding to 8 bytes. The frame header and the record's 64-byte header are read by a
single ``unpack_from``; parameters are left in the buffer for the event to read on demand.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from falconet_syscall_ebpf.event import EVENT_NAMES, HEADERS, SyscallEvent

__all__ = ["BUSY", "DISCARD", "FRAME_HEADER", "RECORD_HEADER", "count_records",
           "decode_records", "iter_frames"]

BUSY = 1 << 31
DISCARD = 1 << 30
LEN_MASK = DISCARD - 1
FRAME_HEADER = 8
RECORD_HEADER = 64
#: frame header and the record's event type
_FRAME_NR = struct.Struct("<IIH")
_FRAME = struct.Struct("<I")
assert HEADERS.size == FRAME_HEADER + RECORD_HEADER


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


def _event_class(source: str) -> type[SyscallEvent]:
    """``SyscallEvent``, or a subclass naming another source (``source`` is a class attribute:
    one store less per event)."""
    if source == SyscallEvent.source:
        return SyscallEvent
    cls = _CLASSES.get(source)
    if cls is None:
        cls = _CLASSES[source] = type(f"SyscallEvent_{source}", (SyscallEvent,),
                                      {"__slots__": (), "source": source})
    return cls


_CLASSES: dict[str, type[SyscallEvent]] = {}


def decode_records(buf: bytes | bytearray | memoryview, *, boot_ns: int = 0,
                   source: str = "syscall") -> list[SyscallEvent]:
    """The events of every complete record in ``buf`` (see the module docstring); ``boot_ns``
    turns boot-clock timestamps into ns since the epoch. Records shorter than a header are
    skipped. Per record: one small unpack (frame length and event type); the headers are
    unpacked when a field first asks (``SyscallEvent.h``)."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    end = len(view)
    off = 0
    out: list[SyscallEvent] = []
    append = out.append
    unpack = _FRAME_NR.unpack_from
    unpack_frame = _FRAME.unpack_from
    names = EVENT_NAMES
    cls = _event_class(source)
    new = cls.__new__
    rec = (view, boot_ns)
    skip = BUSY | DISCARD
    last = end - _FRAME_NR.size
    while off + FRAME_HEADER <= end:
        if off <= last:
            flen, _pg, nr = unpack(view, off)
        else:
            flen, nr = unpack_frame(view, off)[0], 0
        size = flen & LEN_MASK
        if off + FRAME_HEADER + size > end or flen & BUSY:
            break
        if not flen & skip and size >= RECORD_HEADER:
            ev = new(cls)
            ev.rec = rec
            ev.off = off
            ev.evt_type = names[nr & 1023]
            ev.num = 0
            append(ev)
        off += (FRAME_HEADER + size + 7) & ~7
    return out
