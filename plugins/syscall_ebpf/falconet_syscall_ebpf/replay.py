"""``falconet --source syscall -e PATH`` (the syscall source's ``EventSource.replay``), and the
recording side of ``-w FILE``.

Replay: a capture file (sniffed by its magic, docs/capture-format.md) is decoded block by block
with the probe's decoder, every event stamped with its recorded time (boot-relative record time
plus the header's ``boot_time_ns``), so a replay gives the same alert lines every time. Anything
else is JSON lines of pre-extracted field values (``samples/syscall.jsonl``), read by the core's
generic reader as ``SchemaEvent``s. The header is checked when ``replay`` is called, so a file
that cannot be replayed (newer format, unknown probe version) stops falconet before any event
with ``Error: ...``; damage found later (a truncated or corrupt block) is logged, counted in the
source's ``malformed`` counter, and every good block is still replayed.

Recording: :class:`Recorder` is the live source's ``on_raw`` hook: each chunk of framed records
read from the ring buffer becomes one block, written as read.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from falconet.api import EventBatch, SourceContext
from falconet.progress import ProgressBar
from falconet.replay import input_files, read_json_lines

from .capture import (
    CaptureError,
    CaptureMetadata,
    CaptureReader,
    CaptureWriter,
    is_capture,
    metadata_summary,
)

__all__ = ["SOURCE", "Decoder", "Recorder", "replay_capture", "replay_source"]

SOURCE = "syscall"
#: a block of framed records -> its events (a ``SyscallBatch`` with the header's boot time)
Decoder = Callable[[bytes, int], Sequence[Any]]
#: the first bytes of a pcapng section header block: a Falco/sysdig ``.scap`` file
_SCAP_MAGIC = b"\x0a\x0d\x0d\x0a"
#: problems logged one by one before only the total is logged
MAX_LOGGED = 10


def replay_source(path: Path, ctx: SourceContext) -> Iterator[EventBatch]:
    """The syscall source's ``replay``: a capture file, else JSON lines of field values. A
    directory is its files in name order, each read as what it is; every capture header in it
    is checked before the first event."""
    progress = ctx.progress
    if path.is_dir():
        files = input_files(path)
        if any(is_capture(f) or _is_scap(f) for f in files):
            return itertools.chain.from_iterable(
                [_replay_file(f, ctx, progress) for f in files])
    elif path.is_file():
        return _replay_file(path, ctx, progress)
    return read_json_lines(SOURCE, path, ctx.counters, schema=True, progress=progress,
                           log=ctx.log)


def _replay_file(path: Path, ctx: SourceContext, progress: bool) -> Iterator[EventBatch]:
    if is_capture(path):
        return replay_capture(path, ctx, progress=progress)
    if _is_scap(path):
        raise CaptureError(f"{path}: a Falco .scap capture: falconet replays its own capture "
                           "files (falconet -w, docs/capture-format.md) and JSON lines of "
                           "field values")
    return read_json_lines(SOURCE, path, ctx.counters, schema=True, progress=progress,
                           log=ctx.log)


def _is_scap(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == _SCAP_MAGIC
    except OSError:
        return False


def _probe_decoder(meta: CaptureMetadata, path: Path) -> Decoder:
    """The probe's decoder for the records of ``meta``; CaptureError for a probe version this
    falconet does not decode."""
    from . import PROBE_VERSION
    from .decode import SyscallBatch, frame_offsets

    if meta.probe_version != str(PROBE_VERSION):
        raise CaptureError(f"{path}: records of probe version {meta.probe_version}: this "
                           f"falconet decodes probe version {PROBE_VERSION}")
    boot_ns = meta.boot_time_ns

    def decode(data: bytes, _count: int) -> Sequence[Any]:
        return SyscallBatch(data, frame_offsets(data)[0], boot_ns=boot_ns, source=SOURCE)

    return decode


def replay_capture(path: Path, ctx: SourceContext, decoder: Decoder | None = None, *,
                   progress: bool = False) -> Iterator[EventBatch]:
    """Batches (one per block) of the events of the capture ``path``. The header is read now:
    CaptureError (a ValueError) if the file cannot be replayed."""
    reader = CaptureReader(path)
    try:
        decode = decoder if decoder is not None else _probe_decoder(reader.metadata, path)
    except BaseException:
        reader.close()
        raise
    log = ctx.log
    if log is not None:
        log.info("replaying a capture", file=str(path), **metadata_summary(reader.metadata))
    return _batches(reader, decode, ctx, progress)


def _batches(reader: CaptureReader, decode: Decoder, ctx: SourceContext,
             progress: bool) -> Iterator[EventBatch]:
    counters, log = ctx.counters, ctx.log
    logged = 0

    def lost(what: str, **details: Any) -> None:
        nonlocal logged
        logged += 1
        if log is not None and logged <= MAX_LOGGED:
            log.warning(what, file=str(reader.path), **details)

    def skipped(exc: CaptureError) -> None:
        counters.malformed += 1
        lost("capture block skipped", reason=str(exc))

    bar = ProgressBar(progress, reader.size, f"{SOURCE}: {reader.path.name}")
    try:
        for block in reader.blocks(skipped):
            try:
                events = decode(block.data, block.count)
            except Exception as exc:  # a block the decoder cannot read: the next may be fine
                counters.malformed += block.count
                lost("capture block skipped", reason=f"block at offset {block.offset}: "
                     f"records not decodable: {exc!r}")
                continue
            if len(events) != block.count:
                counters.malformed += abs(block.count - len(events))
                lost("capture block damaged", reason=f"block at offset {block.offset}: "
                     f"{len(events)} of {block.count} records decoded")
            if events:
                yield events
            bar.update(reader.stored_position)
    except CaptureError as exc:
        counters.malformed += 1
        lost("capture replay stopped", reason=str(exc))
    finally:
        bar.stop()
        reader.close()
        if log is not None and logged > MAX_LOGGED:
            log.warning("capture problems not logged", file=str(reader.path),
                        total=logged, not_logged=logged - MAX_LOGGED)


class Recorder:
    """Writes what the live source reads to a capture file: ``on_raw`` is the source's hook,
    called with each chunk of framed records (valid only during the call) before decoding.

    A failed write (a full disk) stops the recording, not the source: it is logged once, the
    file keeps the blocks written so far, and the rules go on with live events.
    """

    def __init__(self, path: Path, metadata: CaptureMetadata,
                 count: Callable[[bytes], int], log: Any = None) -> None:
        self.writer: CaptureWriter | None = CaptureWriter(path, metadata)
        self.count = count
        self.log = log

    def on_raw(self, chunk: bytes) -> None:
        writer = self.writer
        if writer is None or not len(chunk):
            return
        try:
            writer.write_block(chunk, self.count(chunk))
        except (OSError, CaptureError) as exc:
            self.writer = None
            if self.log is not None:
                self.log.error("recording stopped", file=str(writer.path), error=str(exc),
                               blocks=writer.blocks, records=writer.records)
            with contextlib.suppress(OSError):
                writer.close()

    def close(self) -> None:
        """Flush and close the file; logs what was recorded."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        writer.close()
        if self.log is not None:
            self.log.info("recording closed", file=str(writer.path), blocks=writer.blocks,
                          records=writer.records, bytes=writer.bytes_written)
