"""Framed records -> events, one ``struct`` unpack per record.

A buffer holds consecutive frames as the BPF ring buffer lays them out (see the package README):
an 8-byte frame header (``u32`` length with the BUSY and DISCARD bits, ``u32`` page offset),
the record, padding to 8 bytes. ``frame_offsets`` finds the records; a ``SyscallBatch`` makes
them events: the frame header and the record's 64-byte header are read by a single
``unpack_from``, parameters are left in the buffer for the event to read on demand.

The rule index reads a ``SyscallBatch`` through its cursor: one event object moved from record
to record, and a real event only for a record that a rule matched (``keep``). Anything that reads
the batch as a sequence (an event parser, the engine's one-by-one fallback) gets real events.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from falconet.event import LazyBatch
from falconet_syscall_ebpf.event import EVENT_NAMES, HEADERS, H, SyscallEvent

__all__ = ["BUSY", "DISCARD", "FRAME_HEADER", "LEN_MASK", "RECORD_HEADER", "SyscallBatch",
           "count_records", "decode_records", "frame_offsets", "iter_frames",
           "record_batches"]

BUSY = 1 << 31
DISCARD = 1 << 30
LEN_MASK = DISCARD - 1
FRAME_HEADER = 8
RECORD_HEADER = 64
_FRAME = struct.Struct("<I")
#: bytes, or anything ``struct.unpack_from`` reads (an mmap, a memoryview)
Buffer = Any
assert HEADERS.size == FRAME_HEADER + RECORD_HEADER


def frame_offsets(buf: Buffer, start: int = 0, end: int | None = None) -> tuple[list[int], int]:
    """Where the frames of the records in ``buf[start:end]`` start, counted from ``start``
    (complete, not discarded, at least a header long), and how many bytes the complete frames
    take (a BUSY frame or one cut short ends the walk). This loop runs once per record."""
    stop = len(buf) if end is None else end
    unpack = _FRAME.unpack_from
    offsets: list[int] = []
    append = offsets.append
    shortest, flags, busy, len_mask = RECORD_HEADER, DISCARD, BUSY, LEN_MASK
    off = start
    last = stop - FRAME_HEADER
    while off <= last:
        flen = unpack(buf, off)[0]
        if shortest <= flen < flags:  # a record, neither BUSY nor DISCARD: the common case
            nxt = off + ((flen + FRAME_HEADER + 7) & -8)
            if nxt > stop:
                break
            append(off - start)
            off = nxt
            continue
        nxt = off + (((flen & len_mask) + FRAME_HEADER + 7) & -8)
        if flen & busy or nxt > stop:
            break
        off = nxt  # discarded, or shorter than a header: skipped
    return offsets, off - start


def iter_frames(buf: Buffer) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of each record ``frame_offsets`` finds (offset past the frame
    header)."""
    for off in frame_offsets(buf)[0]:
        yield off + FRAME_HEADER, _FRAME.unpack_from(buf, off)[0] & LEN_MASK


def count_records(buf: Buffer) -> int:
    """How many records ``frame_offsets`` finds in ``buf`` (no decoding)."""
    return len(frame_offsets(buf)[0])


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


class SyscallBatch(LazyBatch[SyscallEvent]):
    """The records at ``offsets`` in ``buf`` (see ``frame_offsets``), events on demand.
    ``buf`` is ``bytes``: slicing and decoding a ``memoryview`` costs twice as much."""

    def __init__(self, buf: bytes, offsets: list[int], *, boot_ns: int = 0,
                 source: str = "syscall") -> None:
        super().__init__()
        self.rec = (buf, boot_ns)
        self.offsets = offsets
        self.cls = _event_class(source)

    def cursor(self) -> Iterator[SyscallEvent]:
        """One event object, moved to each record in turn (see the module docstring)."""
        if self.events is not None:
            yield from self.events
            return
        ev = self.cls.__new__(self.cls)
        rec = ev.rec = self.rec
        view, unpack, names = rec[0], HEADERS.unpack_from, EVENT_NAMES
        nr_at = H.NR
        num = self.first_num
        step = 1 if num else 0
        for off in self.offsets:
            ev.h = h = unpack(view, off)
            ev.off = off
            ev.evt_type = names[h[nr_at] & 1023]
            ev.num = num
            num += step
            yield ev

    def keep(self, event: SyscallEvent) -> SyscallEvent:
        """A real event for the cursor's current record."""
        return event if self.events is not None else event.copy()

    def _make_events(self) -> list[SyscallEvent]:
        return [ev.copy() for ev in self.cursor()]

    def __len__(self) -> int:
        return len(self.offsets)


def record_batches(buf: bytes, offsets: list[int], *, boot_ns: int = 0,
                   source: str = "syscall", size: int = 0) -> list[SyscallBatch]:
    """The records at ``offsets`` as batches of at most ``size`` (0: one batch)."""
    if not size or len(offsets) <= size:
        return [SyscallBatch(buf, offsets, boot_ns=boot_ns, source=source)] if offsets else []
    return [SyscallBatch(buf, offsets[i:i + size], boot_ns=boot_ns, source=source)
            for i in range(0, len(offsets), size)]


def decode_records(buf: bytes | bytearray | memoryview, *, boot_ns: int = 0,
                   source: str = "syscall") -> list[SyscallEvent]:
    """The events of every complete record in ``buf``; ``boot_ns`` turns boot-clock
    timestamps into ns since the epoch. Records shorter than a header are skipped."""
    data = buf if isinstance(buf, bytes) else bytes(buf)
    return list(SyscallBatch(data, frame_offsets(data)[0], boot_ns=boot_ns, source=source))
