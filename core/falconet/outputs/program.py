"""``program_output``: alerts piped to a shell command's standard input (Falco's
``output_program``, which ``popen``\\ s ``program``).

The command comes from the configuration and runs with ``/bin/sh -c`` as upstream; alert text
only ever travels through the pipe, never into a command line, so an alert cannot run anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from falconet.api import Alert, OutputError
from falconet.outputs._common import Delivered, line_bytes

#: /bin/sh's statuses for "cannot execute" and "command not found".
_SHELL_FAILED = {126: "cannot execute", 127: "command not found"}
#: How long ``close`` waits for a kept-alive program to exit after its stdin closes.
CLOSE_WAIT_S = 10.0


class ProgramOutput:
    """Writes one line per alert to ``program``'s stdin.

    ``keep_alive`` false: as upstream (popen, write, pclose per alert), one process per alert,
    waited for; its exit status is logged when not 0, not retried (a program is free to fail:
    retrying could never succeed) except 126/127, where the shell could not run it at all.
    ``keep_alive`` true: one long-lived process fed line by line; if it has exited it is started
    again, and a pipe that breaks mid-batch raises :class:`OutputError` (the retry restarts it).
    """

    def __init__(self, program: str, *, keep_alive: bool = False, log: Any = None) -> None:
        self.program = program
        self._keep_alive = keep_alive
        self._log = log
        self._delivered = Delivered()
        #: the kept-alive process (None until the first batch, or after ``close``)
        self.process: asyncio.subprocess.Process | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", self.program, stdin=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise OutputError(f"program output: cannot start /bin/sh -c {self.program!r}: "
                              f"{exc.strerror or exc}") from exc

    async def send(self, alerts: Sequence[Alert]) -> None:
        if self._keep_alive:
            await self._send_kept(alerts)
            return
        for alert in self._delivered.pending(alerts):
            await self._run_once(alert)
            self._delivered.mark(alert)
        self._delivered.clear()

    async def _run_once(self, alert: Alert) -> None:
        proc = await self._start()
        assert proc.stdin is not None
        with contextlib.suppress(ConnectionError):  # it exited without reading: its choice
            proc.stdin.write(line_bytes(alert.line) + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
            await proc.stdin.wait_closed()
        status = await proc.wait()
        if status in _SHELL_FAILED:
            raise OutputError(f"program output: /bin/sh could not run {self.program!r} "
                              f"({_SHELL_FAILED[status]}, exit status {status})")
        if status != 0 and self._log is not None:
            self._log.warning("program output: the program exited with a failure status",
                              program=self.program, status=status)

    async def _send_kept(self, alerts: Sequence[Alert]) -> None:
        proc = self.process
        if proc is not None and (proc.returncode is not None or _stdin_closing(proc)):
            status = await proc.wait()
            if self._log is not None:
                self._log.warning("program output: the program exited; starting it again",
                                  program=self.program, status=status)
            proc = None
        if proc is None:
            proc = self.process = await self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(b"".join(line_bytes(a.line) + b"\n" for a in alerts))
            await proc.stdin.drain()
        except ConnectionError as exc:
            raise OutputError(f"program output: {self.program!r} stopped reading its input "
                              f"({exc}); it is started again on retry") from exc

    async def close(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            proc.stdin.close()
            await proc.stdin.wait_closed()
        try:
            await asyncio.wait_for(proc.wait(), CLOSE_WAIT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _stdin_closing(proc: asyncio.subprocess.Process) -> bool:
    return proc.stdin is None or proc.stdin.is_closing()
