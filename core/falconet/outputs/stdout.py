"""``stdout_output``: one line per alert on standard output (Falco's ``output_stdout``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from falconet.api import Alert


class StdoutOutput:
    """Writes ``Alert.line`` and a newline per alert.

    Without ``buffered_outputs`` each batch is flushed, as Falco sets ``std::unitbuf``: a pipe
    reader (a log shipper, ``falconet | jq``) sees an alert when it fires, not when a 8 KiB
    block fills up. With it, Python's stream buffering decides and ``close`` flushes.
    """

    def __init__(self, *, buffered: bool = False, stream: TextIO | None = None) -> None:
        self._buffered = buffered
        self._stream = stream

    async def send(self, alerts: Sequence[Alert]) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        text = "".join(a.line + "\n" for a in alerts)
        try:
            stream.write(text)
        except UnicodeEncodeError:
            # A lone surrogate (or a non-UTF-8 terminal): write what can be written.
            encoding = getattr(stream, "encoding", None) or "utf-8"
            stream.write(text.encode(encoding, "replace").decode(encoding))
        if not self._buffered:
            stream.flush()

    async def close(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.flush()
