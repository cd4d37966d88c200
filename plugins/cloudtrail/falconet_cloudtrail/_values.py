"""How upstream's cloudtrail plugin reads a record and renders what it finds (``extract.go``,
fastjson), for the extractors to share.

Upstream looks a key path up with fastjson's ``Get`` (absent unless every step is an object
holding the key) and renders a string field with ``GetStringBytes``: the string itself, or an
empty string for any other JSON value that is present (a number, an object, ``null``). Whole
sub-documents (``ct.request``, ``ct.response``...) are re-serialised as compact JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

MISSING: Any = object()
_dumps = orjson.dumps
_UINT64_MAX = (1 << 64) - 1


def record(event: Any) -> dict[str, Any] | None:
    """The decoded record, or None when the payload is not a JSON object (upstream's parse
    fails, or ``Get`` finds nothing on an array)."""
    try:
        doc = event.payload
    except ValueError:  # orjson.JSONDecodeError: a payload that is not JSON
        return None
    return doc if type(doc) is dict else None


def get(doc: Any, keys: tuple[str, ...]) -> Any:
    """fastjson ``Get(keys...)``: the value, or MISSING unless every step is an object holding
    the key. (CloudTrail keys are never numeric, so arrays are never indexed.)"""
    for key in keys:
        if type(doc) is not dict:
            return MISSING
        doc = doc.get(key, MISSING)
        if doc is MISSING:
            return MISSING
    return doc


def go_string(value: Any) -> str:
    """``string(v.GetStringBytes())`` of a present value: the string, else empty."""
    return value if type(value) is str else ""


def empty_string(value: Any) -> str:
    """The rendering of a present non-string value (``InlinePath.render``)."""
    return ""


def marshal(value: Any) -> str:
    """fastjson's ``MarshalTo``: compact JSON of a present value (``null`` included)."""
    return _dumps(value).decode()


def uint64(value: Any) -> int:
    """Upstream's ``getvalueU64``: a JSON number as an unsigned integer (floats truncated,
    ``33.0`` is 33); anything else, or a negative number, is 0."""
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= _UINT64_MAX else (0 if value < 0 else _UINT64_MAX)
    if kind is float:
        if value != value or value < 0:  # NaN cannot come from JSON; negatives: 0
            return 0
        return min(int(value), _UINT64_MAX)
    return 0


def string_at(keys: tuple[str, ...]) -> Callable[[Any], str | None]:
    """The extractor of a plain string field: the value at ``keys`` rendered as upstream does,
    None when absent. Conditions read these in place (``fields.py``, ``InlinePath``); this is
    the exact fallback (and what outputs call)."""
    if len(keys) == 1:
        (key,) = keys

        def extract_top(event: Any) -> str | None:
            doc = record(event)
            if doc is None:
                return None
            value = doc.get(key, MISSING)
            if type(value) is str:
                return value
            return None if value is MISSING else ""

        return extract_top

    def extract(event: Any) -> str | None:
        value = get(record(event), keys)
        if type(value) is str:
            return value
        return None if value is MISSING else ""

    return extract


def json_at(keys: tuple[str, ...]) -> Callable[[Any], str | None]:
    """The extractor of a sub-document field (``ct.request``): its compact JSON."""

    def extract(event: Any) -> str | None:
        value = get(record(event), keys)
        return None if value is MISSING else marshal(value)

    return extract


def bool_at(key: str, *, strings: bool = False) -> Callable[[Any], str | None]:
    """``"true"``/``"false"`` for a present key (fastjson ``Bool()``: only JSON ``true`` is
    true; with ``strings``, the text ``"true"`` too), None when absent."""

    def extract(event: Any) -> str | None:
        doc = record(event)
        if doc is None:
            return None
        value = doc.get(key, MISSING)
        if value is MISSING:
            return None
        return "true" if value is True or (strings and value == "true") else "false"

    return extract
