"""Waiting on and stopping the processes end-to-end tests start (falconet, peer servers)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

#: how long a test waits for something a process must do (a deadline, not a measurement)
DEADLINE_S = 60.0


def wait_until(what: str, ok: Callable[[], object], proc: subprocess.Popen[str] | None = None,
               log: Path | None = None, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``ok`` until it is true; AssertionError naming ``what`` if ``proc`` exits first or
    the deadline passes (with the text of ``log``, its stderr file, when there is one)."""
    deadline = time.monotonic() + deadline_s
    while not ok():
        tail = f":\n{log.read_text()}" if log is not None else ""
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"falconet exited ({proc.returncode}) before {what}{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}{tail}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], deadline_s: float = DEADLINE_S) -> None:
    """SIGTERM, then SIGKILL if it has not exited by the deadline; reaped either way."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
