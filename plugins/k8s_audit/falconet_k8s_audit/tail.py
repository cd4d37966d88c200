"""Following an audit log as the API server writes it (``open_params: file://PATH``).

As upstream: reading starts at the end of the file (only new events are evaluated) and the
stream never ends. The file is polled (no extra dependency, works on every filesystem):

- rotation (the path now names another file: ``create``-style logrotate, the API server's own
  backups): the old file is read to its end, then the new one from its start;
- truncation (``copytruncate``: the file got shorter than what was read): reading restarts at
  the start. A file truncated and then written past the old size between two polls is not
  noticed (as with any size-based check);
- a file that does not exist yet is waited for, and read from its start when it appears.

Unlike upstream, a rename or removal does not close the file at once: the writer may still be
finishing its last lines there, which are read until the new file appears. A line longer than
``webhookMaxBatchSize`` is skipped (counted and logged) instead of growing the buffer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from falconet.api import EventBatch, JsonEvent

from .parse import AuditParser, Refusal, Reporter

__all__ = ["LINE_TOO_LONG", "POLL_INTERVAL_S", "FileFollower", "follow_stream"]

POLL_INTERVAL_S = 0.25
#: most bytes read per poll, so a burst becomes several batches
READ_CHUNK = 4 << 20
#: reason counted for a line longer than the limit
LINE_TOO_LONG = "line_too_long"


class FileFollower:
    """What is appended to ``path``, as complete lines, across rotation and truncation."""

    def __init__(self, path: Path, max_line: int, reporter: Reporter) -> None:
        self.path = path
        self.max_line = max_line
        self.reporter = reporter
        self.log = reporter.log
        #: True when the last poll stopped before the end of the file
        self.more = False
        self._file: IO[bytes] | None = None
        self._pos = 0
        self._partial = b""
        self._skipping = False  # inside a line that is too long, until its newline

    def start(self) -> None:
        """Open the file at its end (or wait for it). Call once, when the source opens."""
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"k8s audit log directory not found: {self.path.parent}")
        if not self._open(at_end=True):
            self.log.info("k8s audit log does not exist yet, waiting for it",
                          file=str(self.path))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def poll(self) -> list[bytes]:
        """The lines completed since the last poll (without their newline)."""
        lines: list[bytes] = []
        if self._file is None:
            if not self._open(at_end=False):
                return lines
        else:
            self._check_rotation(lines)
            if self._file is None:
                return lines
        self.more = self._read(lines)
        return lines

    def _check_rotation(self, lines: list[bytes]) -> None:
        assert self._file is not None
        current = os.fstat(self._file.fileno())
        try:
            named = os.stat(self.path)
        except OSError:
            return  # renamed or removed: keep reading the old file until a new one appears
        if (named.st_dev, named.st_ino) != (current.st_dev, current.st_ino):
            while self._read(lines):
                pass
            if self._partial and not self._skipping:
                lines.append(self._partial)  # the writer is done with the old file
            self.close()
            self.log.info("k8s audit log rotated, following the new file", file=str(self.path))
            self._open(at_end=False)
        elif current.st_size < self._pos:
            self.log.warning("k8s audit log truncated, reading it from the start",
                             file=str(self.path))
            self._file.seek(0)
            self._pos = 0
            self._partial, self._skipping = b"", False

    def _open(self, *, at_end: bool) -> bool:
        try:
            file = open(self.path, "rb", buffering=0)  # noqa: SIM115 (kept open while followed)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.log.warning("cannot open the k8s audit log", file=str(self.path),
                             error=exc.strerror or str(exc))
            return False
        self._file = file
        self._pos = file.seek(0, os.SEEK_END) if at_end else 0
        self._partial, self._skipping = b"", False
        return True

    def _read(self, lines: list[bytes]) -> bool:
        """Append the lines of the next chunk; True when the chunk was full (more may wait)."""
        assert self._file is not None
        data = self._file.read(READ_CHUNK)
        if not data:
            return False
        self._pos += len(data)
        pieces = data.split(b"\n")
        last = pieces.pop()  # the start of a line whose newline is not written yet
        for piece in pieces:
            if self._skipping:
                self._skipping = False  # the end of a line too long
                continue
            line = self._partial + piece if self._partial else piece
            self._partial = b""
            if len(line) > self.max_line:
                self._too_long(len(line))
            else:
                lines.append(line)
        if not self._skipping:
            self._partial += last
            if len(self._partial) > self.max_line:
                self._too_long(len(self._partial))
                self._partial, self._skipping = b"", True
        return len(data) == READ_CHUNK

    def _too_long(self, size: int) -> None:
        self.reporter.refuse(Refusal(LINE_TOO_LONG, f"line longer than webhookMaxBatchSize: "
                                     f"size={size}"), file=str(self.path))


async def follow_stream(follower: FileFollower, parser: AuditParser, *,
                        interval: float = POLL_INTERVAL_S) -> AsyncIterator[EventBatch]:
    """Batches of the events appended to the followed file; never ends (closes the file when
    the stream is closed)."""
    reporter, where = follower.reporter, str(follower.path)
    try:
        while True:
            batch: list[JsonEvent] = []
            for line in follower.poll():
                if not line.strip():
                    continue
                parsed = parser.parse_bytes(line)
                if parsed.refusals:
                    reporter.report(parsed.refusals, file=where)
                batch += parsed.events
            if batch:
                yield batch
            await asyncio.sleep(0 if follower.more else interval)
    finally:
        follower.close()
