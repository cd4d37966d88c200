"""Shared helpers for the output tests: alerts, and waiting for lines a real peer writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falconet.api import Alert

#: How long a test waits for a peer (rsyslogd, a child process) to write what it received;
#: a bound on waiting, not an assertion about speed.
PEER_DEADLINE_S = 15.0


def make_alert(line: str, priority: str = "Critical", *, rule: str = "Test rule",
               source: str = "syscall", document: dict[str, Any] | None = None) -> Alert:
    doc = {"rule": rule, "priority": priority, "output": line} if document is None else document
    return Alert(rule=rule, priority=priority, source=source, time_ns=1_700_000_000_000_000_000,
                 line=line, document=doc)


def wait_for_lines(path: Path, count: int, *, keep: Callable[[str], bool] = lambda _: True,
                   deadline_s: float = PEER_DEADLINE_S) -> list[str]:
    """The first ``count`` lines of ``path`` that ``keep`` accepts, once that many exist."""
    end = time.monotonic() + deadline_s
    lines: list[str] = []
    while time.monotonic() < end:
        if path.exists():
            lines = [ln for ln in path.read_text(errors="replace").splitlines() if keep(ln)]
            if len(lines) >= count:
                return lines
        time.sleep(0.02)
    pytest.fail(f"{path}: expected {count} lines, got {len(lines)}: {lines!r}")


class RecordingLog:
    """A logger that keeps what it is told: ``records`` holds (level, event, key/values)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def _record(self, level: str, event: str, **kw: Any) -> None:
        self.records.append((level, event, kw))

    def info(self, event: str, **kw: Any) -> None:
        self._record("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._record("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._record("error", event, **kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._record("error", event, **kw)

    def messages(self, level: str = "warning") -> list[str]:
        return [event for lvl, event, _ in self.records if lvl == level]
