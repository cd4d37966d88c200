"""``file_output``: alerts appended to ``filename``, one line each (Falco's ``output_file``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import BinaryIO

from falconet.api import Alert, OutputError
from falconet.outputs._common import line_bytes


class FileOutput:
    """Appends one line per alert.

    ``keep_alive``: the file is opened once and kept open (a rotated file keeps receiving
    alerts until SIGUSR1 asks for ``reopen``, as upstream); otherwise it is opened and
    closed for every batch (upstream does so per alert; the file ends up the same), so a
    rotated or deleted file is simply created again. A file that cannot be opened raises
    :class:`OutputError` naming the path and the reason; the engine's retry opens it again.
    The blocking file calls run in a worker thread, off the event loop.
    """

    def __init__(self, filename: str, *, keep_alive: bool = False,
                 buffered: bool = False) -> None:
        self.filename = filename
        self._keep_alive = keep_alive
        self._buffered = buffered
        self._file: BinaryIO | None = None
        self._reopen = False

    async def send(self, alerts: Sequence[Alert]) -> None:
        data = b"".join(line_bytes(a.line) + b"\n" for a in alerts)
        await asyncio.to_thread(self._write, data)

    def _open(self) -> BinaryIO:
        try:
            # Unbuffered when not buffered_outputs: every write goes straight to the file.
            return open(self.filename, "ab", buffering=-1 if self._buffered else 0)
        except OSError as exc:
            raise OutputError(f"file output: cannot open {self.filename}: "
                              f"{exc.strerror or exc}") from exc

    def _write(self, data: bytes) -> None:
        if self._reopen:  # asked by SIGUSR1: done here, in the writing thread, between writes
            self._reopen = False
            self._close_file()
        if self._file is None:
            self._file = self._open()
        f = self._file
        try:
            view = memoryview(data)
            while view:  # an unbuffered write may be short
                written = f.write(view)
                view = view[written or 0:]
            if not self._keep_alive:
                self._file = None
                f.close()  # flushes when buffered: a failure here is a failed batch too
        except OSError as exc:
            # Drop the handle: the retry reopens (the disk may have been remounted, say).
            self._close_file()
            raise OutputError(f"file output: cannot write {self.filename}: "
                              f"{exc.strerror or exc}") from exc

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):  # shutting down: nothing left to retry
                f.close()

    def reopen(self) -> None:
        """After log rotation (SIGUSR1, as Falco): the next write opens ``filename`` again."""
        self._reopen = True

    async def close(self) -> None:
        await asyncio.to_thread(self._close_file)
