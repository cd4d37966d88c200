"""Fields every event source has (``evt.*``), and the ``json`` plugin's fields for JSON payloads.

``evt.*`` is libsinsp's "for all event types" class (``sinsp_filter_check_gen_event``), read
from ``event.ts`` (ns since the epoch), ``event.num`` and ``event.source``. Time strings follow
``sinsp_utils::ts_to_string``/``ts_to_iso_8601`` but are always rendered in **UTC** (upstream
uses the host's local zone for ``evt.time``/``evt.datetime``), so alerts do not depend on the
TZ of the machine that raised them. ``evt.reltime*`` are left out: they need the capture's first
timestamp, which an event-at-a-time engine does not track.

``json.*``/``jevt.*`` are upstream's ``json`` plugin (v0.7.4): an extractor-only plugin that
applies to every plugin source whose payload is JSON. Its values are always strings: a JSON
string is returned raw, anything else as its compact JSON serialisation. Upstream re-emits the
payload's own text there; falconet serialises the decoded value again, which can differ in
string escapes and number spellings (``1e3`` becomes ``1000.0``). ``json.obj`` is exact: it
indents the raw payload as Go's ``json.Indent`` does.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson

from falconet.fields import (
    NO_DOCUMENT,
    ArgKind,
    Extractor,
    FieldSpec,
    FieldTable,
    FieldType,
    InlinePath,
)

_NS = 1_000_000_000
_JSON_OPEN = (0x7B, 0x5B)  # payloads must start with "{" or "[" (upstream's sanity check)
_MISSING: Any = object()

PluginInfo = Callable[[Any], "str | None"]


# --- evt.* ------------------------------------------------------------------------------------


def _clock(ts: int, ns: bool) -> str:
    s = ts // _NS % 86400
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{text}.{ts % _NS:09d}" if ns else text


def _date(ts: int) -> str | None:
    try:
        return time.strftime("%Y-%m-%d ", time.gmtime(ts // _NS))
    except (OverflowError, OSError, ValueError):
        return None


def _evt_time(event: Any) -> str:
    return _clock(event.ts, True)


def _evt_time_s(event: Any) -> str:
    return _clock(event.ts, False)


def _evt_time_iso8601(event: Any) -> str | None:
    ts = event.ts
    try:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // _NS))
    except (OverflowError, OSError, ValueError):
        return None
    return f"{text}.{ts % _NS:09d}+0000"


def _evt_datetime(event: Any) -> str | None:
    date = _date(event.ts)
    return None if date is None else date + _clock(event.ts, True)


def _evt_datetime_s(event: Any) -> str | None:
    date = _date(event.ts)
    return None if date is None else date + _clock(event.ts, False)


def _evt_source(event: Any) -> str | None:
    return event.source or None


def _evt_is_async(event: Any) -> bool:
    # Only libsinsp meta-events are asynchronous; an event class may say so with `asynctype`.
    return getattr(event, "asynctype", None) is not None


def _evt_asynctype(event: Any) -> str | None:
    return getattr(event, "asynctype", None)


def hostname() -> str:
    """The host name ``evt.hostname`` reports: ``$FALCO_HOSTNAME`` (as Falco sets up libscap),
    else the machine's name."""
    return os.environ.get("FALCO_HOSTNAME") or socket.gethostname()


def _constant(value: Any) -> Extractor:
    def extract(event: Any) -> Any:
        return value

    return extract


def _fixed(fn: Extractor) -> Callable[[str | None], Extractor]:
    """A ``make_extractor`` for a field that takes no argument."""

    def make(arg: str | None) -> Extractor:
        return fn

    return make


def _evt_specs(plugin_name: str | None, plugin_info: PluginInfo | None) -> list[FieldSpec]:
    s, ch, at = FieldType.UINT64, FieldType.CHARBUF, FieldType.ABSTIME
    info: Extractor = plugin_info if plugin_info is not None else _constant(None)
    rows: list[tuple[str, FieldType, Callable[[str | None], Extractor], str]] = [
        ("evt.num", s, _fixed(lambda e: e.num), "event number."),
        ("evt.time", ch, _fixed(_evt_time),
         "event timestamp as a time string that includes the nanosecond part (UTC)."),
        ("evt.time.s", ch, _fixed(_evt_time_s),
         "event timestamp as a time string with no nanoseconds (UTC)."),
        ("evt.time.iso8601", ch, _fixed(_evt_time_iso8601),
         "event timestamp in ISO 8601 format, including nanoseconds and time zone offset "
         "(in UTC)."),
        ("evt.datetime", ch, _fixed(_evt_datetime),
         "event timestamp as a time string that includes the date (UTC)."),
        ("evt.datetime.s", ch, _fixed(_evt_datetime_s),
         "event timestamp as a datetime string with no nanoseconds (UTC)."),
        ("evt.rawtime", at, _fixed(lambda e: e.ts),
         "absolute event timestamp, i.e. nanoseconds from epoch."),
        ("evt.rawtime.s", at, _fixed(lambda e: e.ts // _NS),
         "integer part of the event timestamp (e.g. seconds since epoch)."),
        ("evt.rawtime.ns", at, _fixed(lambda e: e.ts % _NS),
         "fractional part of the absolute event timestamp."),
        ("evt.pluginname", ch, lambda arg: _constant(plugin_name),
         "if the event comes from a plugin-defined event source, the name of the plugin that "
         "generated it."),
        ("evt.plugininfo", ch, _fixed(info),
         "if the event comes from a plugin-defined event source, a summary of the event as "
         "formatted by the plugin."),
        ("evt.source", ch, _fixed(_evt_source), "the name of the source that produced the event."),
        ("evt.is_async", FieldType.BOOL, _fixed(_evt_is_async),
         "'true' for asynchronous events, 'false' otherwise."),
        ("evt.asynctype", ch, _fixed(_evt_asynctype),
         "If the event is asynchronous, the type of the event (e.g. 'container')."),
        # Resolved when the rule is compiled: the host does not change under a running engine.
        ("evt.hostname", ch, lambda arg: _constant(hostname()),
         "The hostname of the underlying host; set FALCO_HOSTNAME to override it."),
    ]
    return [FieldSpec(name, ftype, description=desc, make_extractor=make)
            for name, ftype, make, desc in rows]


def common_field_table(
    source: str, *, plugin_name: str | None = None, plugin_info: PluginInfo | None = None
) -> FieldTable:
    """A table for ``source`` holding the ``evt.*`` fields every source has.

    ``plugin_name``/``plugin_info`` feed ``evt.pluginname``/``evt.plugininfo`` (absent when not
    given, as for events that no plugin produced); ``plugin_info`` is the plugin's event-to-text
    function (``json_event_text`` for sources whose summary is the raw JSON, like k8saudit).
    """
    table = FieldTable(source)
    for spec in _evt_specs(plugin_name, plugin_info):
        table.add(spec)
    return table


def json_event_text(event: Any) -> str | None:
    """The raw JSON of a payload event as text (k8saudit's and cloudtrail's ``String()``)."""
    raw = event.raw
    if raw is not None:
        return raw.decode("utf-8", "replace")
    return orjson.dumps(event.payload).decode()


# --- json.* / jevt.* --------------------------------------------------------------------------


def json_text(value: Any) -> str:
    """Upstream's rendering of a JSON value as a string field: strings raw, anything else as
    compact JSON (``true``, ``403``, ``{"a":1}``)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:  # the common non-string value (status codes, counts): same text, cheaper
        return str(value)
    return orjson.dumps(value).decode()


def json_document(event: Any) -> Any:
    """The decoded payload, or ``_MISSING`` when upstream's json plugin would refuse the event
    (raw payload not starting with ``{``/``[``, or not valid JSON)."""
    raw = event.raw
    if raw is not None and not (raw and raw[0] in _JSON_OPEN):
        return _MISSING
    try:
        doc = event.payload
    except ValueError:  # orjson.JSONDecodeError
        return _MISSING
    if raw is None and type(doc) is not dict and type(doc) is not list:
        return _MISSING
    return doc


def _atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` as fastjson uses it to index arrays: optional sign, ASCII digits."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(text)


def parse_json_pointer(arg: str) -> tuple[tuple[str, int | None], ...]:
    """Split a ``json.value`` argument as upstream does (RFC 6901; the leading ``/`` optional):
    each step is the unescaped key and, for array steps, its index."""
    if arg.startswith("/"):
        arg = arg[1:]
    steps = []
    for part in arg.split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        steps.append((key, _atoi(key)))
    return tuple(steps)


def json_object(event: Any) -> Any:
    """The payload when it is a JSON object, else ``NO_DOCUMENT`` (``InlinePath.document`` of
    the json fields and of plugin fields over JSON objects). ``json_document`` written out: it
    runs for nearly every event."""
    raw = event.raw
    if raw is not None and not (raw and raw[0] == 0x7B):  # "{"
        return NO_DOCUMENT
    try:
        doc = event.payload
    except ValueError:  # orjson.JSONDecodeError
        return NO_DOCUMENT
    return doc if type(doc) is dict else NO_DOCUMENT


def _inline_json_value(arg: str | None) -> InlinePath | None:
    """``json.value[/a/b]`` may be read in place when no step could be an array index (a list
    anywhere on such a path makes the field absent, as the walk does)."""
    steps = parse_json_pointer(arg) if arg else ()
    if not steps or any(index is not None for _key, index in steps):
        return None
    return InlinePath(json_object, tuple(key for key, _index in steps), render=json_text)


def _make_json_value(arg: str | None) -> Extractor:
    if not arg:
        # An empty pointer is the whole document.
        def whole(event: Any) -> str | None:
            doc = json_document(event)
            return None if doc is _MISSING else json_text(doc)

        return whole
    steps = parse_json_pointer(arg)
    if len(steps) == 1 and steps[0][1] is None:
        (key, _), = steps

        def extract_key(event: Any) -> str | None:
            """One object key (``/stage``): what k8s audit rules read on every event."""
            value = json_document(event)
            if type(value) is not dict:
                return None
            value = value.get(key, _MISSING)
            if type(value) is str:
                return value
            return None if value is _MISSING else json_text(value)

        return extract_key

    def extract(event: Any) -> str | None:
        value = json_document(event)
        if value is _MISSING:
            return None
        for key, index in steps:
            kind = type(value)
            if kind is dict:
                value = value.get(key, _MISSING)
                if value is _MISSING:
                    return None
            elif kind is list and index is not None and 0 <= index < len(value):
                value = value[index]
            else:
                return None
        return value if type(value) is str else json_text(value)

    return extract


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+|\s+', re.DOTALL)


def go_indent(text: str) -> str:
    """Go's ``json.Indent(src, "", "  ")`` on already-valid JSON text: the original escapes and
    number spellings are kept, empty containers stay ``{}``/``[]``, and trailing white space is
    preserved (as Go does)."""
    body = text.rstrip(" \t\r\n")
    trailing = text[len(body):]
    out: list[str] = []
    depth = 0
    need_indent = False
    for tok in _TOKEN.findall(body):
        first = tok[0]
        if first in " \t\r\n":
            continue
        if need_indent and first not in "}]":
            need_indent = False
            depth += 1
            out.append("\n" + "  " * depth)
        if first in "{[" and len(tok) == 1:
            need_indent = True
            out.append(tok)
        elif tok == ",":
            out.append(",\n" + "  " * depth)
        elif tok == ":":
            out.append(": ")
        elif first in "}]" and len(tok) == 1:
            if need_indent:
                need_indent = False
            else:
                depth -= 1
                out.append("\n" + "  " * depth)
            out.append(tok)
        else:
            out.append(tok)
    out.append(trailing)
    return "".join(out)


def _json_obj(event: Any) -> str | None:
    doc = json_document(event)
    if doc is _MISSING:
        return None
    raw = event.raw
    if raw is None:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    return go_indent(raw.decode("utf-8", "replace"))


def _json_rawtime(event: Any) -> str | None:
    # Upstream decodes the payload before answering any field, so a broken payload has no time.
    # (k8s audit rules read this on every event, through their "never true" macros.)
    if event.raw is None and type(event.payload) in (dict, list):
        return str(event.ts)
    if json_document(event) is _MISSING:
        return None
    return str(event.ts)


def _inline_json_rawtime(arg: str | None) -> InlinePath:
    """Read in place: k8s audit rules' "never true" macros test it on nearly every event."""
    return _RAWTIME_INLINE


_RAWTIME_INLINE = InlinePath(json_object, (), event_time=True)


def json_field_specs() -> list[FieldSpec]:
    """The ``json`` plugin's fields and their ``jevt.*`` aliases (all type string)."""
    ch = FieldType.CHARBUF
    value_desc = ("Extracts a value from a JSON-encoded input. Syntax is json.value[<json "
                  "pointer>], where <json pointer> is a json pointer (see "
                  "https://datatracker.ietf.org/doc/html/rfc6901)")
    specs = [
        FieldSpec("json.value", ch, arg=ArgKind.KEY_REQUIRED, description=value_desc,
                  make_extractor=_make_json_value, inline=_inline_json_value),
        FieldSpec("json.obj", ch, description="The full json message as a text string.",
                  make_extractor=_fixed(_json_obj)),
        FieldSpec("json.rawtime", ch, description="The time of the event, identical to "
                  "evt.rawtime.", make_extractor=_fixed(_json_rawtime),
                  inline=_inline_json_rawtime),
        FieldSpec("jevt.value", ch, arg=ArgKind.KEY_REQUIRED,
                  description="Alias for json.value, provided for backwards compatibility.",
                  make_extractor=_make_json_value, inline=_inline_json_value),
        FieldSpec("jevt.obj", ch,
                  description="Alias for json.obj, provided for backwards compatibility.",
                  make_extractor=_fixed(_json_obj)),
        FieldSpec("jevt.rawtime", ch,
                  description="Alias for json.rawtime, provided for backwards compatibility.",
                  make_extractor=_fixed(_json_rawtime), inline=_inline_json_rawtime),
    ]
    return specs
