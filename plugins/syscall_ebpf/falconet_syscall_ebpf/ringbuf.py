"""Reading a BPF ring buffer from Python, straight from its mmapped pages.

The kernel maps a ring buffer map as: one read-write page holding the consumer position, then
(from one page on) a read-only page holding the producer position followed by the data area,
mapped twice in a row so that a record that wraps around the end is still contiguous. A read
walks the frame headers from the consumer position up to the first record still being
written (BUSY), noting where each record starts, copies those frames in one slice, and moves
the consumer position past them. No libbpf call and no Python call per record: one
``unpack_from`` per frame header.
"""

from __future__ import annotations

import contextlib
import mmap

from falconet_syscall_ebpf.decode import frame_offsets

__all__ = ["RingReader"]

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
        # The positions are read and written as whole native u64s (one load, one store): a
        # struct "<Q" goes byte by byte, and the kernel, seeing a consumer position written
        # halfway, took the ring buffer for full and dropped records.
        self._cons_pos = memoryview(self._consumer)[:8].cast("Q")
        self._prod_pos = memoryview(self._producer)[:8].cast("Q")
        self._data = page  # where the data area starts in the producer mapping
        #: records returned by ``read`` so far
        self.records = 0

    def pending(self) -> int:
        """Bytes between the consumer and producer positions."""
        return int(self._prod_pos[0] - self._cons_pos[0])

    def read(self, max_bytes: int = 0) -> tuple[bytes, list[int]]:
        """The complete frames written since the last read (possibly none), as one ``bytes``
        object, and where their records start (``decode.frame_offsets``); the ring buffer
        space they took is handed back to the kernel. ``max_bytes`` (0: no limit) bounds the
        copy. The frame headers are walked in place before the copy, so every frame copied
        was complete before the copy began."""
        cons = self._cons_pos[0]
        avail = self._prod_pos[0] - cons
        if avail <= 0:
            return b"", []
        if max_bytes and avail > max_bytes:
            avail = max_bytes
        start = self._data + (cons & self._mask)
        offsets, used = frame_offsets(self._producer, start, start + avail)
        if used == 0:
            return b"", []
        chunk = self._producer[start:start + used]
        self.records += len(offsets)
        self._cons_pos[0] = cons + used
        return chunk, offsets

    def close(self) -> None:
        self._cons_pos.release()
        self._prod_pos.release()
        for m in (self._consumer, self._producer):
            with contextlib.suppress(BufferError, ValueError):
                m.close()
