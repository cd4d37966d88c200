"""The event model shared by every source.

Field extractors receive one of these. ``JsonEvent`` is what JSON-payload sources (k8s audit,
CloudTrail, any JSON-lines replay) produce: the raw bytes are kept, and the payload is decoded at
most once, on first use, so an event that no rule looks into is never parsed. ``SchemaEvent``
carries pre-extracted field values by name; the schema-only field tables read it (see
``fields.FieldSpec.extractor``) and tests use it to state exactly what a field returns.
``JsonLine`` is a ``JsonEvent`` read from a JSON-lines input that nobody has decoded yet: rule
evaluation decodes it in passing (see the class). ``JsonLineBatch`` is a batch of them that
creates its event objects only when something asks for them (a ``LazyBatch``, as the syscall
source's batches are).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

import orjson

_UNPARSED = object()
E = TypeVar("E")


class JsonEvent:
    """An event whose payload is a JSON document.

    ``payload`` is a plain slot once set: the first read of an unset payload goes through
    ``__getattr__``, decodes ``raw`` (raising orjson.JSONDecodeError if it is not JSON) and stores
    the result, so every later read costs an attribute access and nothing more.
    """

    __slots__ = ("num", "payload", "raw", "source", "ts")

    def __init__(
        self, source: str, raw: bytes | None = None, payload: Any = _UNPARSED,
        ts: int = 0, num: int = 0,
    ) -> None:
        # Not keyword-only: readers build one per input line and call it positionally,
        # which costs half as much as passing keywords.
        self.source = source
        self.raw = raw
        if payload is not _UNPARSED:
            self.payload = payload
        self.ts = ts  # nanoseconds since the epoch
        self.num = num

    def __getattr__(self, name: str) -> Any:
        if name != "payload":
            raise AttributeError(name)
        self.payload = orjson.loads(self.raw or b"null")
        return self.payload


class JsonLine(JsonEvent):
    """A ``JsonEvent`` that the rule index decodes just before evaluating it and keeps decoded only
    if a rule matched (``ruleset.index``): the document is then freed while it is still in the
    CPU cache, and its memory is reused by the next event's, instead of a whole batch of decoded
    documents passing through memory. The generic JSON-lines reader produces these.

    Anything else that reads ``payload`` first (an event parser, an extractor) decodes it for
    good, as for any ``JsonEvent``: the event then becomes a plain ``JsonEvent``.
    """

    __slots__ = ()

    def __init__(self, source: str, raw: bytes, ts: int, num: int = 0) -> None:
        self.source = source
        self.raw = raw
        self.ts = ts
        self.num = num

    def __getattr__(self, name: str) -> Any:
        payload = JsonEvent.__getattr__(self, name)
        self.__class__ = JsonEvent  # type: ignore[assignment]  # decoded for good: kept
        return payload


class LazyBatch(Sequence[E]):
    """A batch whose event objects are made only when something reads it as a sequence (an
    event parser, the engine's one-by-one fallback): the rule index reads it another way (raw
    lines, a cursor), so most events never become objects. Subclasses give ``__len__`` and
    ``_make_events`` (the events, made once); ``number`` numbers them, made or not."""

    def __init__(self) -> None:
        self.first_num = 0  # 0: not numbered yet (every event's num is 0)
        self.events: list[E] | None = None  # made on first sequence access

    def number(self, first: int) -> None:
        """``evt.num`` of the first event (the engine numbers events, per source)."""
        self.first_num = first
        for num, event in enumerate(self.events or (), first):
            event.num = num  # type: ignore[attr-defined]

    def _make_events(self) -> list[E]:
        raise NotImplementedError

    def _events(self) -> list[E]:
        if self.events is None:
            self.events = self._make_events()
            if self.first_num:
                self.number(self.first_num)
        return self.events

    def __iter__(self) -> Iterator[E]:
        return iter(self._events())

    @overload
    def __getitem__(self, index: int) -> E: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[E]: ...

    def __getitem__(self, index: int | slice) -> E | Sequence[E]:
        return self._events()[index]


class JsonLineBatch(LazyBatch[JsonLine]):
    """A batch of JSON lines of one source, read at one time, that are events only on demand.

    The rule index evaluates ``lines`` through one reused event object and creates a
    ``JsonLine`` only for a line that a rule matched (``ruleset.index``): most lines never
    become an object. Anything else that reads the batch as a sequence gets real ``JsonLine``
    events, created once, numbered from ``first_num``; the index then evaluates those instead.
    """

    def __init__(self, source: str, lines: list[bytes], ts: int) -> None:
        super().__init__()
        self.source = source
        self.lines = lines  # the raw lines, none of them empty
        self.ts = ts

    def _make_events(self) -> list[JsonLine]:
        source, ts = self.source, self.ts
        return [JsonLine(source, raw, ts) for raw in self.lines]

    def __len__(self) -> int:
        return len(self.lines)


class SchemaEvent:
    """An event whose field values are given directly: ``{"proc.name": "bash", ...}``.

    Keys are field names as written in conditions, with the argument in brackets when there is
    one (``proc.aname[2]``); list-valued fields hold tuples.
    """

    __slots__ = ("evt_type", "fields", "num", "source", "ts")

    def __init__(
        self, source: str, fields: dict[str, Any] | None = None, *, evt_type: str | None = None,
        ts: int = 0, num: int = 0,
    ) -> None:
        self.source = source
        self.fields = fields or {}
        self.evt_type = evt_type
        self.ts = ts
        self.num = num
