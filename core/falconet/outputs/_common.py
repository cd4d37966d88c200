"""Helpers every built-in output shares: the logger, line bytes, and retry bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from falconet.api import Alert, OutputContext


def output_log(ctx: OutputContext, name: str) -> Any:
    """The context's logger (or structlog's), bound to ``output=<name>`` when it can be."""
    log = ctx.log if ctx.log is not None else structlog.get_logger("falconet.outputs")
    bind = getattr(log, "bind", None)
    return bind(output=name) if callable(bind) else log


def line_bytes(line: str) -> bytes:
    """UTF-8 bytes of an alert line; a lone surrogate becomes ``?`` instead of failing the
    batch forever (the engine would retry an unencodable alert without end)."""
    return line.encode("utf-8", "replace")


class Delivered:
    """The alerts of a failed batch that did arrive, so that the engine's retry of that same
    batch does not deliver them twice (outputs that send alert by alert: http, program, udp).

    Alerts are held by reference and compared by identity: the engine retries with the same
    objects, and holding them keeps their ids from being reused by newer alerts.
    """

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: dict[int, Alert] = {}

    def pending(self, alerts: Sequence[Alert]) -> Sequence[Alert]:
        """``alerts`` minus those already delivered by an earlier, failed attempt."""
        if not self._done:
            return alerts
        return [a for a in alerts if self._done.get(id(a)) is not a]

    def mark(self, alert: Alert) -> None:
        self._done[id(alert)] = alert

    def clear(self) -> None:
        """The whole batch arrived: forget it."""
        self._done.clear()
