"""Rule indexing: which rules an event can reach, decided by the value of one field.

Upstream buckets syscall rules by event type and evaluates every plugin-source rule on every
event. falconet indexes both kinds by one *index field*: ``evt.type`` for syscalls; for plugin
sources the string field that splits the rules best (the smallest average bucket; for upstream's
k8s audit rules ``ka.target.resource``), found from the conditions. (Indexing by two or three
fields was measured too: the extra extraction per event cost what the smaller buckets saved.)

A bucket is keyed by the index field's value, where a value that no rule compares the field with
is replaced by ``OTHER_VALUE`` (all such values behave alike), so the number of buckets is bounded
by the rules, not by the events. Buckets are built on first use. Each is one generated function
over the rules that can match its key, specialized on that key: checks of the index field
against constants are decided when it is built, and its value is passed in, not read again.

A ``JsonLine`` event (the generic JSON-lines reader's) is decoded here, just before its bucket
runs, and keeps its document only if a rule matched (see ``falconet.event.JsonLine``); the lines
of a ``JsonLineBatch`` become event objects only when a rule matched them. A line that is not
JSON is not evaluated: the batch runner returns it as ``(event, None)``, and the engine reports
it as malformed input. A batch with a ``cursor()`` (the syscall source's) is read the same way:
through one event object moved from event to event, ``keep(event)`` making a real one for the
events a rule matched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

from falconet.common_fields import json_object
from falconet.condition.compiler import OTHER_VALUE, build_matcher, seed_key
from falconet.condition.evttypes import pinned_values
from falconet.condition.plan import leaves
from falconet.event import JsonLine, JsonLineBatch
from falconet.fields import NO_DOCUMENT, Extractor, FieldTable, FieldType, InlinePath
from falconet.ruleset.model import CompiledRule

Matcher = Callable[..., list[CompiledRule]]
#: ``(event, matching rules)``; rules None: a ``JsonLine`` that is not JSON
Hits = list[tuple[Any, list[CompiledRule] | None]]
_MISSING = object()


@dataclass(frozen=True)
class IndexField:
    label: str  # "ka.verb", "jevt.value[/stage]"
    extract: Extractor
    inline: InlinePath | None  # read in place (and its document handed on) when it has one
    key: str  # the operand key of this field in checked plans (compiler.seed_key)
    named: frozenset[Any]  # every constant a rule compares it with (=, in)
    pins: tuple[frozenset[str] | None, ...]  # per rule: the values it can match (None: any)


def _split_label(label: str) -> tuple[str, str | None]:
    name, bracket, rest = label.partition("[")
    return (name, rest[:-1]) if bracket else (name, None)


def _named_constants(rules: Sequence[CompiledRule], key: str) -> frozenset[Any]:
    named: set[Any] = set()
    for rule in rules:
        for leaf in leaves(rule.checked.plan):
            if leaf.lhs.key == key and leaf.rhs is None:
                if leaf.form == "eq":
                    named.add(leaf.const)
                elif leaf.form == "member":
                    named.update(leaf.const)
    return frozenset(named)


def _index_field(table: FieldTable, label: str, rules: Sequence[CompiledRule],
                 pins: Sequence[frozenset[str] | None]) -> IndexField | None:
    name, arg = _split_label(label)
    found = table.lookup(name)
    if found is None or found[1] is not None:
        return None
    spec = found[0]
    if spec.type is not FieldType.CHARBUF or spec.is_list:
        return None
    key = seed_key(spec, label)
    # Values named by a pin (event-type sets of negated conditions...) must stay distinct too.
    named = _named_constants(rules, key).union(*(p for p in pins if p is not None))
    inline = spec.inline(arg) if spec.inline is not None else None
    return IndexField(label, spec.extractor(arg), inline, key, named, tuple(pins))


def _mean_bucket(field: IndexField) -> float:
    """The average number of rules a bucket of this field holds, over the values rules name."""
    values = [*field.named, OTHER_VALUE]
    sizes = [sum(p is None or v in p for p in field.pins) for v in values]
    return sum(sizes) / len(sizes)


def choose_index_field(source: str, rules: Sequence[CompiledRule],
                       table: FieldTable) -> IndexField | None:
    """``evt.type`` for syscalls; otherwise the string field with the smallest buckets."""
    if source == "syscall":
        return _index_field(table, "evt.type", rules, [r.event_types for r in rules])
    labels: dict[str, None] = {}
    for rule in rules:
        labels.update(dict.fromkeys(rule.checked.fields))
    best: tuple[float, IndexField] | None = None
    for label in labels:
        pins = [pinned_values(r.ast, label) for r in rules]
        if any(p is not None for p in pins):
            field = _index_field(table, label, rules, pins)
            if field is not None and (best is None or _mean_bucket(field) < best[0]):
                best = (_mean_bucket(field), field)
    return None if best is None else best[1]


class SourceIndex:
    """The rules of one source, indexed; ``run(event)`` evaluates an event."""

    def __init__(self, rules: list[CompiledRule], field: IndexField | None,
                 first_match: bool) -> None:
        self.rules = rules
        self.field = field
        self.first_match = first_match
        self.buckets: dict[Any, Matcher] = {}
        self.members: dict[Any, list[CompiledRule]] = {}
        self.run_batch = self._make_batch_runner()
        self.run: Callable[[Any], list[CompiledRule]] = self._make_runner()

    def _bucket(self, key: Any) -> Matcher:
        """Build (once) the matcher for the normalized index value ``key``."""
        assert self.field is not None
        pins = self.field.pins
        members = [r for r, pin in zip(self.rules, pins, strict=True) if pin is None or key in pin]
        matcher: Matcher = _no_match
        if members:
            inline = self.field.inline
            matcher = build_matcher(
                [r.checked for r in members], first_match=self.first_match,
                seeds=[(self.field.key, key)], results=members,
                document=None if inline is None else inline.document,
            )
        self.buckets[key] = matcher
        self.members[key] = members
        return matcher

    def _make_runner(self) -> Callable[[Any], list[CompiledRule]]:
        """``run(event)``: one event through its bucket (the batch runner, for one)."""
        run_batch = self.run_batch
        return lambda event: (hits[0][1] or []) if (hits := run_batch((event,))) else []

    def _make_batch_runner(self) -> Callable[[Iterable[Any]], Hits]:
        """``run_batch(events)``: ``(event, rules)`` for the events that match. The loop over
        the batch lives here, so an event costs one Python call: its bucket's."""
        if self.field is None:
            match = build_matcher([r.checked for r in self.rules],
                                  first_match=self.first_match, results=self.rules)
            return _transient_decoding(lambda event: match(event))
        extract, named = self.field.extract, self.field.named
        get, build = self.buckets.get, self._bucket
        if self.field.inline is None:
            by_value: dict[Any, Matcher] = {}  # index value -> its bucket, for named values

            def matcher_for(value: Any) -> Matcher:
                key = value if value in named else (None if value is None else OTHER_VALUE)
                match = get(key) or build(key)
                if key is not OTHER_VALUE:  # a value no rule names is not kept: unbounded
                    by_value[value] = match
                return match

            def run_one(event: Any) -> list[CompiledRule]:
                value = extract(event)
                return (by_value.get(value) or matcher_for(value))(event, value)

            run_events = _transient_decoding(run_one)

            def run_batch(events: Iterable[Any]) -> Hits:
                cursor = getattr(events, "cursor", None)
                if cursor is None:
                    return run_events(events)
                keep = events.keep  # type: ignore[attr-defined]
                out: Hits = []
                for event in cursor():  # run_one written out: this loop runs once per event
                    value = extract(event)
                    if hits := (by_value.get(value) or matcher_for(value))(event, value):
                        out.append((keep(event), hits))
                return out

            return run_batch
        document, keys, requires = (self.field.inline.document, self.field.inline.keys,
                                    self.field.inline.requires)
        if document is json_object and len(keys) == 1 and requires is None:
            return _payload_key_runner(keys[0], extract, named, get, build)

        def run_with_document(event: Any) -> list[CompiledRule]:
            """Read the key in the event's document, which the bucket then uses too."""
            doc = document(event)
            value: Any = _MISSING if requires is not None and requires not in doc else doc
            for k in keys:
                if type(value) is not dict:
                    value = _MISSING
                    break
                value = value.get(k, _MISSING)
            if type(value) is not str:
                value = None if value is _MISSING and doc is not NO_DOCUMENT else extract(event)
            key = value if value in named else (None if value is None else OTHER_VALUE)
            return (get(key) or build(key))(event, value, doc)

        return _transient_decoding(run_with_document)

    def summary(self) -> dict[str, Any]:
        return {
            "index_field": None if self.field is None else self.field.label,
            "rules": len(self.rules),
            "buckets_built": len(self.buckets),
            "max_bucket": max((len(m) for m in self.members.values()), default=0),
        }


def _no_match(event: Any, *values: Any) -> list[CompiledRule]:
    return []


def _transient_decoding(run_one: Callable[[Any], list[CompiledRule]]) -> Callable[
        [Iterable[Any]], Hits]:
    """The batch loop around ``run_one(event)``, decoding ``JsonLine`` events in passing (see
    the module docstring). The common JSON case has this loop written out instead:
    ``_payload_key_runner``."""
    line_event, loads, decode_error = JsonLine, orjson.loads, orjson.JSONDecodeError

    def run_batch(events: Iterable[Any]) -> Hits:
        cursor = getattr(events, "cursor", None)
        if cursor is not None:  # a batch read through one reused event (see the docstring)
            keep = events.keep  # type: ignore[attr-defined]
            return [(keep(event), hits) for event in cursor() if (hits := run_one(event))]
        out: Hits = []
        for event in events:
            transient = type(event) is line_event
            if transient:
                try:
                    event.payload = loads(event.raw)
                except decode_error:
                    out.append((event, None))
                    continue
            if hits := run_one(event):
                out.append((event, hits))
            elif transient:
                del event.payload
        return out

    return run_batch


def _payload_key_runner(
    index_key: str, extract: Extractor, named: frozenset[Any],
    get: Callable[[Any], Matcher | None], build: Callable[[Any], Matcher],
) -> Callable[[Iterable[Any]], Hits]:
    """The batch runner of the common JSON case, an index field at the top level of the payload
    (``ka.verb``, ``json.value[/action]``): ``json_object``, the one-key walk and
    ``_transient_decoding`` written out, everything it uses a local. This loop runs once per
    event."""
    line_event, loads, decode_error = JsonLine, orjson.loads, orjson.JSONDecodeError
    no_doc, missing, other, key_name = NO_DOCUMENT, _MISSING, OTHER_VALUE, index_key

    def run_lines(batch: JsonLineBatch) -> Hits:
        """A batch of JSON lines that nobody has made events of: every line is evaluated
        through one reused event object, and only a line that a rule matched gets its own."""
        out: Hits = []
        source, ts = batch.source, batch.ts
        cursor = line_event(source, b"", ts)
        lines, first = batch.lines, batch.first_num
        nums = range(first, first + len(lines)) if first else repeat(0)  # 0: not numbered
        for num, raw in zip(nums, lines, strict=False):
            cursor.raw, cursor.num = raw, num
            try:
                doc = cursor.payload = loads(raw)
            except decode_error:
                out.append((line_event(source, raw, ts, num), None))
                continue
            if type(doc) is dict and raw[0] == 0x7B:  # "{"
                value = doc.get(key_name, missing)
                if type(value) is not str:
                    value = None if value is missing else extract(cursor)
            else:
                doc = no_doc
                value = extract(cursor)
            key = value if value in named else (None if value is None else other)
            if hits := (get(key) or build(key))(cursor, value, doc):
                event = line_event(source, raw, ts, num)
                event.payload = cursor.payload
                out.append((event, hits))
        return out

    def run_batch(events: Iterable[Any]) -> Hits:
        if isinstance(events, JsonLineBatch) and events.events is None:
            return run_lines(events)
        out: Hits = []
        for event in events:
            raw = event.raw
            transient = type(event) is line_event
            if transient:
                try:
                    doc = event.payload = loads(raw)
                except decode_error:
                    out.append((event, None))
                    continue
                if raw[0] != 0x7B:  # "{"
                    doc = no_doc
            else:
                try:
                    doc = event.payload if raw is None or (raw and raw[0] == 0x7B) else no_doc
                except ValueError:  # a payload that is not JSON
                    doc = no_doc
            if type(doc) is dict:
                value = doc.get(key_name, missing)
                if type(value) is not str:
                    value = None if value is missing else extract(event)
            else:
                doc = no_doc
                value = extract(event)
            key = value if value in named else (None if value is None else other)
            if hits := (get(key) or build(key))(event, value, doc):
                out.append((event, hits))
            elif transient:
                del event.payload
        return out

    return run_batch
