"""Reading a BPF ring buffer from Python, straight from its mmapped pages.

The kernel maps a ring buffer map as: one read-write page holding the consumer position, then
(from one page on) a read-only page holding the producer position followed by the data area,
mapped twice in a row so that a record that wraps around the end is still contiguous. A read
copies everything between the two positions in one slice, walks the frame headers up to the
first record still being written (BUSY), and moves the consumer position past what it returns.
No libbpf call and no Python call per record: one ``unpack_from`` per frame header.
"""

from __future__ import annotations

import contextlib
import mmap
import struct

from falconet_syscall_ebpf.decode import BUSY, FRAME_HEADER, LEN_MASK

__all__ = ["RingReader"]

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I").unpack_from


class RingReader:
    """The consumer side of one BPF ring buffer map (``fd``, data size ``size`` bytes)."""

    def __init__(self, fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"ring buffer size must be a power of two, got {size}")
        page = mmap.PAGESIZE
        self.fd = fd
        self.size = size
        self._mask = size - 1
        self._consumer = mmap.mmap(fd, page, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                   offset=page)
        self._data = page  # where the data area starts in the producer mapping
        #: records returned by ``read`` so far
        self.records = 0

    def pending(self) -> int:
        """Bytes between the consumer and producer positions."""
        return (_U64.unpack_from(self._producer, 0)[0]
                - _U64.unpack_from(self._consumer, 0)[0])

    def read(self, max_bytes: int = 0) -> bytes:
        """The complete frames written since the last read (possibly none), as one ``bytes``
        object; the ring buffer space they took is handed back to the kernel. ``max_bytes``
        (0: no limit) bounds the copy."""
        cons = _U64.unpack_from(self._consumer, 0)[0]
        prod = _U64.unpack_from(self._producer, 0)[0]
        avail = prod - cons
        if avail <= 0:
            return b""
        if max_bytes and avail > max_bytes:
            avail = max_bytes
        start = self._data + (cons & self._mask)
        chunk = self._producer[start:start + avail]
        end = len(chunk)
        off = 0
        n = 0
        while off + FRAME_HEADER <= end:
            flen = _U32(chunk, off)[0]
            if flen & BUSY:
                break
            nxt = off + ((FRAME_HEADER + (flen & LEN_MASK) + 7) & ~7)
            if nxt > end:
                break
            off = nxt
            n += 1
        if off == 0:
            return b""
        self.records += n
        _U64.pack_into(self._consumer, 0, cons + off)
        return chunk if off == end else chunk[:off]

    def close(self) -> None:
        for m in (self._consumer, self._producer):
            with contextlib.suppress(BufferError, ValueError):
                m.close()
