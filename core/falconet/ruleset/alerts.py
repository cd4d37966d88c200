"""Alert text and JSON, as Falco's ``falco_formats::format_event`` builds them.

Text: ``<evt.time>: <Priority> <rule output>``; with ``time_format_iso_8601`` the time is ISO 8601.
The line is JSON-string-escaped without the quotes (Falco master): control characters cannot
break a log line, and invalid UTF-8 becomes U+FFFD.

JSON (``json_output``): ``time`` (ISO 8601 UTC, ns), ``rule``, ``priority``, ``source``,
``hostname``, and by configuration ``output``, ``tags``, ``message``, ``output_fields`` (field ->
typed value, ``null`` when absent, the prefix's time field as integer ns, plus ``append_output``
``extra_fields``). Keys are sorted, as nlohmann::json prints them.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from falconet.api import Alert
from falconet.config import AppendOutput
from falconet.fields import FieldTable
from falconet.ruleset.formats import OutputFormatter
from falconet.ruleset.model import CompiledRule

#: Time fields that Falco's JSON output_fields carry as the raw timestamp in ns.
_TIME_FIELDS_AS_NS = frozenset(
    {"evt.time", "evt.time.s", "evt.time.iso8601", "evt.datetime", "evt.datetime.s"}
)


def default_hostname() -> str:
    """``FALCO_HOSTNAME`` if set (as Falco), else the machine's host name."""
    return os.environ.get("FALCO_HOSTNAME") or socket.gethostname()


@functools.lru_cache(maxsize=256)
def _utc(fmt: str, secs: int) -> str:
    """One second's text: alerts come in bursts within the same few seconds."""
    return time.strftime(fmt, time.gmtime(secs))


def iso8601_ns(ts: int) -> str:
    """``2026-11-26T20:06:12.123456789Z`` from ns since the epoch."""
    secs, ns = divmod(ts, 1_000_000_000)
    return f"{_utc('%Y-%m-%dT%H:%M:%S', secs)}.{str(ns).zfill(9)}Z"  # zfill: 3x f"{:09d}"


def clock_ns(ts: int) -> str:
    """``20:06:12.123456789`` (UTC), Falco's ``evt.time``."""
    secs, ns = divmod(ts, 1_000_000_000)
    return f"{_utc('%H:%M:%S', secs)}.{str(ns).zfill(9)}"


def escape_line(text: str) -> str:
    """JSON-string-escape ``text`` and drop the quotes (Falco's text-output sanitizing)."""
    return orjson.dumps(text).decode()[1:-1]


def applies_to(entry: AppendOutput, rule: CompiledRule) -> bool:
    """Falco's ``append_output`` match: every given criterion holds (all tags present)."""
    if entry.source and entry.source != rule.source:
        return False
    if entry.rule and entry.rule != rule.name:
        return False
    return set(entry.tags) <= rule.tags


@dataclass
class AlertOptions:
    """The falco.yaml keys that shape an alert."""

    json_output: bool = False
    json_include_output_property: bool = True
    json_include_tags_property: bool = True
    json_include_message_property: bool = False
    json_include_output_fields_property: bool = True
    time_format_iso_8601: bool = False
    hostname: str = field(default_factory=default_hostname)
    append_output: Sequence[AppendOutput] = ()


class AlertFormatter:
    """Formats alerts of one rule; built once per rule, used per match."""

    def __init__(self, rule: CompiledRule, table: FieldTable, options: AlertOptions) -> None:
        self.rule = rule
        self.options = options
        output = rule.output
        extra_fields: list[tuple[str, OutputFormatter | None, str]] = []
        for entry in options.append_output:
            if not applies_to(entry, rule):
                continue
            if entry.extra_output:
                output = f"{output} {entry.extra_output}"
            for ef in entry.extra_fields:
                if isinstance(ef, tuple):  # (name, format)
                    extra_fields.append((ef[0], OutputFormatter(ef[1], table), ""))
                else:
                    extra_fields.append((ef, None, ef))
        self.message = OutputFormatter(output, table)
        self._extra_fields = [
            (k, f if f is not None else OutputFormatter(f"%{raw}", table), f is None)
            for k, f, raw in extra_fields
        ]
        self._time_field = "evt.time.iso8601" if options.time_format_iso_8601 else "evt.time"
        # what every alert of this rule repeats, computed once
        self._priority = rule.priority.label
        self._tags = sorted(rule.tags)

    def _prefix(self, event: Any) -> str:
        ts = event.ts
        when = iso8601_ns(ts) if self.options.time_format_iso_8601 else clock_ns(ts)
        return f"{when}: {self._priority}"

    def text(self, event: Any) -> str:
        """The alert line (what ``stdout_output`` prints without ``json_output``)."""
        return escape_line(f"{self._prefix(event)} {self.message.format(event)}")

    def as_dict(self, event: Any) -> dict[str, Any]:
        opts = self.options
        if opts.json_include_output_fields_property:
            message, fields = self.message.format_with_fields(event)
        else:
            message, fields = self.message.format(event), {}
        doc: dict[str, Any] = {
            "time": iso8601_ns(event.ts),
            "rule": self.rule.name,
            "priority": self._priority,
            "source": self.rule.source,
            "hostname": opts.hostname,
        }
        if opts.json_include_output_property:
            doc["output"] = f"{self._prefix(event)} {message}"
        if opts.json_include_tags_property:
            doc["tags"] = self._tags.copy()
        if opts.json_include_message_property:
            doc["message"] = message
        if opts.json_include_output_fields_property:
            for name in _TIME_FIELDS_AS_NS.intersection(fields):
                fields[name] = event.ts
            fields[self._time_field] = event.ts
            for key, formatter, raw in self._extra_fields:
                if raw:
                    values = formatter.output_fields(event)
                    fields[key] = event.ts if key in _TIME_FIELDS_AS_NS else values.get(key)
                else:
                    fields[key] = formatter.format(event)
            doc["output_fields"] = fields
        return doc

    def json(self, event: Any) -> bytes:
        """The JSON alert, keys sorted like Falco's."""
        return orjson.dumps(self.as_dict(event), option=orjson.OPT_SORT_KEYS)

    def alert(self, event: Any) -> Alert:
        """The alert every output receives: the JSON document, and the line Falco would write
        (that document with ``json_output``, else the text line)."""
        doc = self.as_dict(event)
        if self.options.json_output:
            line = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
        elif "output" in doc:
            line = escape_line(doc["output"])
        else:
            line = escape_line(f"{self._prefix(event)} {self.message.format(event)}")
        return Alert(self.rule.name, self._priority, self.rule.source, event.ts, line, doc)
