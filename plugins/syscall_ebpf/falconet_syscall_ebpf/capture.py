"""Capture files: the raw probe records of a live run, written by ``falconet -w FILE`` and read
back by ``falconet --source syscall -e FILE``. The layout is specified in docs/capture-format.md;
this module is its only reader and writer.

Records are stored exactly as the probe wrote them (concatenated, self-delimiting), a block per
ring-buffer poll, so recording costs one ``write`` per batch and no per-record work; the header
says which probe wrote them (``probe_version``) and where its boot-relative clock starts
(``boot_time_ns``), so a replay decodes them as the live source would and stamps every event with
its recorded time.

Errors are :class:`CaptureError` (a ``ValueError``) with a message that names the file or the
block offset: a reader never crashes on a bad file, it says where and why it stopped.
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson

from .clock import boot_time_ns

__all__ = [
    "BLOCK_HEADER",
    "FLAG_ZLIB",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_BLOCK_BYTES",
    "Block",
    "CaptureError",
    "CaptureMetadata",
    "CaptureReader",
    "CaptureWriter",
    "boot_time_ns",
    "is_capture",
    "read_capture",
]

#: first bytes of every capture file (the 0x89 and CR LF catch text-mode and 7-bit mangling)
MAGIC = b"\x89FNCAP\r\n"
#: (major, minor) written by this module; it reads any 1.x
FORMAT_VERSION = (1, 0)
#: magic, major, minor, header length (bytes from the file start to the first block)
_PREFIX = struct.Struct("<8sHHI")
#: tag, flags, reserved, record count, stored length, raw length, CRC-32 of the stored bytes
BLOCK_HEADER = struct.Struct("<4sHHIIII")
BLOCK_TAG = b"FNBK"
#: block flag: the stored bytes are a zlib stream of the records
FLAG_ZLIB = 0x0001
_KNOWN_FLAGS = FLAG_ZLIB
#: the largest block (stored or raw) a writer makes and a reader accepts: a bigger length field
#: is taken for corruption instead of allocating it
MAX_BLOCK_BYTES = 1 << 28
#: the most metadata a reader accepts, for the same reason
MAX_HEADER_BYTES = 1 << 20

_REQUIRED: dict[str, type] = {"boot_time_ns": int, "probe_version": str}
_OPTIONAL: dict[str, type] = {"hostname": str, "kernel_release": str, "machine": str,
                              "falconet_version": str, "created_ns": int, "syscalls": list}


class CaptureError(ValueError):
    """A capture file that cannot be read (or written) as asked; the message says where."""


def _falconet_version() -> str:
    try:
        from falconet import __version__
    except ImportError:  # pragma: no cover - the core is a dependency
        return ""
    return __version__


@dataclass
class CaptureMetadata:
    """The header's metadata. ``boot_time_ns`` and ``probe_version`` are what a replay needs;
    the rest says where the capture was made. ``extra`` holds keys this version does not know
    (a newer writer's), kept for display and otherwise ignored."""

    boot_time_ns: int
    probe_version: str
    hostname: str = ""
    kernel_release: str = ""
    machine: str = ""
    falconet_version: str = ""
    created_ns: int = 0
    #: the syscall ids (of ``machine``) the probe sent to user space
    syscalls: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: the format version of the file it was read from (FORMAT_VERSION when made here)
    format_version: tuple[int, int] = FORMAT_VERSION

    @classmethod
    def for_this_host(cls, probe_version: str, syscalls: tuple[int, ...] | list[int] = (), *,
                      boot_ns: int | None = None) -> CaptureMetadata:
        """Metadata for a capture made now on this machine."""
        uname = os.uname()
        return cls(boot_time_ns=boot_time_ns() if boot_ns is None else boot_ns,
                   probe_version=probe_version, hostname=socket.gethostname(),
                   kernel_release=uname.release, machine=uname.machine,
                   falconet_version=_falconet_version(), created_ns=time.time_ns(),
                   syscalls=tuple(sorted(syscalls)))

    def to_json(self) -> bytes:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(boot_time_ns=self.boot_time_ns, probe_version=self.probe_version,
                   hostname=self.hostname, kernel_release=self.kernel_release,
                   machine=self.machine, falconet_version=self.falconet_version,
                   created_ns=self.created_ns, syscalls=list(self.syscalls))
        return orjson.dumps(doc)

    @classmethod
    def from_json(cls, data: bytes, version: tuple[int, int]) -> CaptureMetadata:
        """Parse the metadata block; unknown keys go to ``extra``. Raises CaptureError."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CaptureError(f"metadata is not JSON: {exc}") from None
        if type(doc) is not dict:
            raise CaptureError("metadata is not a JSON object")
        for key in _REQUIRED:
            if key not in doc:
                raise CaptureError(f"metadata lacks '{key}'")
        for key, kind in (*_REQUIRED.items(), *_OPTIONAL.items()):
            if key in doc and not _is(doc[key], kind):
                raise CaptureError(f"metadata '{key}' must be {_KIND_NAMES[kind]}, "
                                   f"not {orjson.dumps(doc[key]).decode()}")
        syscalls = doc.get("syscalls", [])
        if not all(_is(nr, int) for nr in syscalls):
            raise CaptureError("metadata 'syscalls' must be a list of integers")
        known = {**_REQUIRED, **_OPTIONAL}
        return cls(boot_time_ns=doc["boot_time_ns"], probe_version=doc["probe_version"],
                   hostname=doc.get("hostname", ""), kernel_release=doc.get("kernel_release", ""),
                   machine=doc.get("machine", ""),
                   falconet_version=doc.get("falconet_version", ""),
                   created_ns=doc.get("created_ns", 0), syscalls=tuple(syscalls),
                   extra={k: v for k, v in doc.items() if k not in known},
                   format_version=version)


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list"}


def _is(value: Any, kind: type) -> bool:
    return type(value) is kind  # not isinstance: a JSON true is no integer here


@dataclass(frozen=True, slots=True)
class Block:
    """One block of records: ``data`` holds ``count`` records as the probe wrote them."""

    offset: int  # of the block header in the file
    count: int
    data: bytes


class CaptureWriter:
    """Writes a capture file: the header at once, then one block per ``write_block``.

    Blocks go through a buffered file; ``close`` (or leaving the ``with`` block) flushes them. A
    writer killed in the middle leaves at worst a truncated last block, which a reader reports
    and skips, keeping every block before it.
    """

    def __init__(self, path: str | os.PathLike[str], metadata: CaptureMetadata, *,
                 compress: bool = False, buffer_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.metadata = metadata
        self.compress = compress
        self.blocks = 0
        self.records = 0
        self.bytes_written = 0
        meta = metadata.to_json()
        self._file: IO[bytes] | None = _open_write(self.path, buffer_bytes)
        major, minor = FORMAT_VERSION
        prefix = _PREFIX.pack(MAGIC, major, minor, _PREFIX.size + len(meta))
        self._file.write(prefix)
        self._file.write(meta)
        self.bytes_written = len(prefix) + len(meta)

    def write_block(self, records: bytes | bytearray | memoryview, count: int) -> None:
        """Append ``count`` records held, concatenated, in ``records``; an empty batch writes
        nothing. Raises CaptureError when closed or when the block is too large."""
        if self._file is None:
            raise CaptureError(f"{self.path}: capture writer is closed")
        raw_len = len(records)
        if count < 0 or (raw_len == 0) != (count == 0):
            raise CaptureError(f"a block of {raw_len} bytes cannot hold {count} records")
        if not raw_len:
            return
        if raw_len > MAX_BLOCK_BYTES:
            raise CaptureError(f"block of {raw_len} bytes is over the {MAX_BLOCK_BYTES} limit")
        flags = 0
        stored: bytes | bytearray | memoryview = records
        if self.compress:
            stored, flags = zlib.compress(records, 1), FLAG_ZLIB
        header = BLOCK_HEADER.pack(BLOCK_TAG, flags, 0, count, len(stored), raw_len,
                                   zlib.crc32(stored))
        self._file.write(header)
        self._file.write(stored)
        self.blocks += 1
        self.records += count
        self.bytes_written += len(header) + len(stored)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _gzipped(path: Path) -> bool:
    return path.suffix == ".gz"


def _open_write(path: Path, buffer_bytes: int) -> IO[bytes]:
    """The file to write blocks to: gzip-wrapped (level 1, cheap) for a ``.gz`` name."""
    raw = path.open("wb", buffering=buffer_bytes)
    if not _gzipped(path):
        return raw
    return cast(IO[bytes], _GzipWriter(raw))


class _GzipWriter(gzip.GzipFile):
    """A GzipFile that closes the file it was given (GzipFile leaves ``fileobj`` open)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="wb", compresslevel=1)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _open_read(path: Path) -> IO[bytes]:
    if _gzipped(path):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def is_capture(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file starting with the capture magic (after gunzip for a ``.gz``
    name): sniffing only, nothing is validated."""
    try:
        with _open_read(Path(path)) as file:
            return file.read(len(MAGIC)) == MAGIC
    except (OSError, EOFError):
        return False


#: called with a block that failed its checks but could be skipped (its length was sane)
OnError = Callable[[CaptureError], None]


class CaptureReader:
    """A capture file opened and its header checked; ``blocks()`` reads on from there.

    Raises CaptureError at once when the file is not a capture, its header is bad, or its major
    version is newer than ``FORMAT_VERSION``'s (a newer minor version is read: it only adds what
    an older reader may ignore).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self._file: IO[bytes] = _open_read(self.path)
        try:
            self.metadata = self._read_header()
        except BaseException:
            self._file.close()
            raise
        self.position = self.header_length

    def _read_header(self) -> CaptureMetadata:
        try:
            head = self._file.read(_PREFIX.size)
        except (OSError, EOFError):  # a .gz name on a file that is not gzip
            head = b""
        if head[:len(MAGIC)] != MAGIC:
            raise CaptureError(f"{self.path}: not a falconet capture file")
        if len(head) < _PREFIX.size:
            raise CaptureError(f"{self.path}: truncated header: {len(head)} of "
                               f"{_PREFIX.size} bytes")
        _, major, minor, length = _PREFIX.unpack(head)
        ours_major, ours_minor = FORMAT_VERSION
        if major > ours_major:
            raise CaptureError(
                f"{self.path}: capture format version {major}.{minor} is newer than this "
                f"falconet reads ({ours_major}.{ours_minor}): upgrade falconet to replay it")
        if major < 1:
            raise CaptureError(f"{self.path}: unknown capture format version {major}.{minor}")
        if not _PREFIX.size <= length <= _PREFIX.size + MAX_HEADER_BYTES:
            raise CaptureError(f"{self.path}: bad header length {length}")
        try:
            meta = self._file.read(length - _PREFIX.size)
        except (OSError, EOFError):
            meta = b""
        if len(meta) < length - _PREFIX.size:
            raise CaptureError(f"{self.path}: truncated header: {_PREFIX.size + len(meta)} of "
                               f"{length} bytes")
        self.header_length = length
        try:
            return CaptureMetadata.from_json(meta, (major, minor))
        except CaptureError as exc:
            raise CaptureError(f"{self.path}: bad header: {exc}") from None

    def blocks(self, on_error: OnError | None = None) -> Iterator[Block]:
        """The blocks in file order. A block whose checks fail but whose length is sane (CRC
        mismatch, unknown flags, bad zlib data) goes to ``on_error`` and is skipped; without
        ``on_error`` it raises. A truncated block or a bad block tag ends the file: CaptureError
        (``truncated block at offset N: ...``), after every good block before it."""
        size = BLOCK_HEADER.size
        try:
            while head := self._read(size, self.position):
                offset = self.position
                if len(head) < size:
                    raise CaptureError(f"truncated block at offset {offset}: header has "
                                       f"{len(head)} of {size} bytes")
                tag, flags, _, count, stored_len, raw_len, crc = BLOCK_HEADER.unpack(head)
                if tag != BLOCK_TAG:
                    raise CaptureError(f"bad block at offset {offset}: no block tag "
                                       f"(found {tag!r}); the rest of the file is unreadable")
                if stored_len > MAX_BLOCK_BYTES or raw_len > MAX_BLOCK_BYTES:
                    raise CaptureError(f"bad block at offset {offset}: length {stored_len} "
                                       f"(raw {raw_len}) is over the {MAX_BLOCK_BYTES} limit")
                data = self._read(stored_len, offset)
                self.position = offset + size + len(data)
                if len(data) < stored_len:
                    raise CaptureError(f"truncated block at offset {offset}: {len(data)} of "
                                       f"{stored_len} bytes of {count} records")
                try:
                    records = _payload(data, flags, raw_len, crc, offset)
                except CaptureError as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
                    continue
                yield Block(offset, count, records)
        finally:
            self.close()

    def _read(self, size: int, offset: int) -> bytes:
        try:
            return self._file.read(size)
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
            raise CaptureError(f"truncated block at offset {offset}: {exc}") from None

    @property
    def stored_position(self) -> int:
        """Bytes of the file as stored (compressed, for ``.gz``) read so far: the progress."""
        raw = getattr(self._file, "fileobj", None)
        return raw.tell() if raw is not None else self.position

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _payload(data: bytes, flags: int, raw_len: int, crc: int, offset: int) -> bytes:
    """The records of one block, checked and decompressed."""
    if flags & ~_KNOWN_FLAGS:
        raise CaptureError(f"bad block at offset {offset}: unknown flags 0x{flags:04x}")
    if zlib.crc32(data) != crc:
        raise CaptureError(f"bad block at offset {offset}: checksum mismatch")
    if flags & FLAG_ZLIB:
        try:
            data = zlib.decompress(data, bufsize=max(raw_len, 1))
        except zlib.error as exc:
            raise CaptureError(f"bad block at offset {offset}: {exc}") from None
    if len(data) != raw_len:
        raise CaptureError(f"bad block at offset {offset}: {len(data)} bytes of records, "
                           f"header says {raw_len}")
    return data


def read_capture(path: str | os.PathLike[str], on_error: OnError | None = None
                 ) -> tuple[CaptureMetadata, Iterator[Block]]:
    """``(metadata, blocks)`` of a capture file; see :class:`CaptureReader`. The file is
    closed when the iterator ends or is closed."""
    reader = CaptureReader(path)
    return reader.metadata, reader.blocks(on_error)


def metadata_summary(meta: CaptureMetadata) -> Mapping[str, Any]:
    """What a replay logs about its capture."""
    major, minor = meta.format_version
    return {"format": f"{major}.{minor}", "hostname": meta.hostname,
            "kernel": meta.kernel_release, "probe_version": meta.probe_version,
            "falconet_version": meta.falconet_version}
