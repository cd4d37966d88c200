"""Primitives the k8saudit extractors share: reading the audit document, walking it the way
upstream's Go code (fastjson) does, and rendering values the way upstream renders them.

Upstream extraction (``plugins/k8saudit/pkg/k8saudit/extract.go``) is reproduced closely:
``MISSING`` plays fastjson's ``nil`` (a key that is not there), which is distinct from a JSON
``null`` (decoded as ``None`` and rendered ``"null"``). Any extraction error upstream (wrong
type, missing element) makes the field absent, which is what Falco does with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from falconet.common_fields import json_object
from falconet.fields import ArgKind, Extractor, FieldSpec, FieldType, InlinePath

MISSING: Any = object()
NO_INDEX = -1
# A key of None in a key path means "the value itself" (fastjson's ``Get()`` with no key).
Keys = tuple[str | None, ...]
_dumps = orjson.dumps


def audit_doc(event: Any) -> dict[str, Any] | None:
    """The decoded event if it is an audit Event (has ``auditID``), else None: upstream answers
    no ``ka.*`` field for any other JSON. (``try`` costs nothing in CPython 3.11 unless a broken
    payload raises.)"""
    try:
        doc = event.payload
    except ValueError:  # orjson.JSONDecodeError: broken payload, nothing to extract
        return None
    return doc if type(doc) is dict and "auditID" in doc else None


_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
               ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def marshal(value: Any) -> str:
    """Compact JSON as upstream prints a non-string value. fastjson re-emits the payload's own
    text, and audit payloads are written by the API server with Go's encoding/json, which
    escapes ``<``, ``>``, ``&``, U+2028 and U+2029; those can only occur inside strings, so
    replacing them in orjson's output gives the same text."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    out = _dumps(value).decode()
    if "<" in out or ">" in out or "&" in out or (
        not out.isascii() and ("\u2028" in out or "\u2029" in out)
    ):
        for char, escaped in _GO_ESCAPES:
            out = out.replace(char, escaped)
    return out


def text(value: Any) -> str:
    """A JSON value as upstream's ``jsonValueAsString``: strings raw, else compact JSON."""
    if type(value) is str:
        return value
    return marshal(value)


def get_path(value: Any, keys: Sequence[str]) -> Any:
    """fastjson ``Value.Get(keys...)`` for non-numeric keys: MISSING unless every step is an
    object holding the key."""
    for key in keys:
        if type(value) is not dict:
            return MISSING
        value = value.get(key, MISSING)
        if value is MISSING:
            return MISSING
    return value


def values(value: Any, index: int, keys: Keys, start: int = 0) -> Any:
    """Upstream's ``getValuesRecursive``: walk ``keys``; an array met *before* a key is fanned
    out (every element, MISSING for elements lacking the rest of the path) or, with an index,
    narrowed to that element. The value reached after the last key is returned whole, even an
    array. Returns a list, or MISSING when the path is not there."""
    n = len(keys)
    i = start
    while i < n:
        if type(value) is list:
            if index < 0:
                return _fan_out(value, keys, i)
            if index >= len(value):
                return MISSING
            value = value[index]
        key = keys[i]
        if key is not None:
            if type(value) is not dict:
                return MISSING
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        i += 1
    return [value]


def _fan_out(items: list[Any], keys: Keys, start: int) -> list[Any]:
    """``values`` over every element of an array, walking each element inline (one call per
    array, not per element) and recursing only into nested arrays."""
    out: list[Any] = []
    n = len(keys)
    for element in items:
        v = element
        j = start
        while j < n:
            kind = type(v)
            if kind is list:
                break
            key = keys[j]
            if key is not None:
                if kind is not dict:
                    v = MISSING
                    break
                v = v.get(key, MISSING)
                if v is MISSING:
                    break
            j += 1
        if v is MISSING or j == n:
            out.append(v)
            continue
        sub = values(v, NO_INDEX, keys, j)  # a nested array: fan it out too
        if sub is MISSING:
            out.append(MISSING)
        else:
            out.extend(sub)
    return out


def texts_skip_missing(found: list[Any]) -> tuple[str, ...] | None:
    """``arrayAsStringsSkipNil``, with an empty result absent (Falco drops empty lists)."""
    out = tuple([v if type(v) is str else marshal(v) for v in found if v is not MISSING])
    return out or None


def parse_index(name: str, arg: str | None) -> int:
    """An ``Index`` argument as libsinsp accepts it: digits only, no leading zero."""
    if arg is None:
        return NO_INDEX
    if not arg or not arg.isascii() or not arg.isdigit() or (len(arg) > 1 and arg[0] == "0"):
        raise ValueError(f"filter {name}[{arg}]: {name} has an invalid index argument: {arg}")
    return int(arg)


def require_key(name: str, arg: str | None) -> str:
    if arg is None:
        raise ValueError(f"filter '{name}': {name} requires an argument but none provided")
    return arg


def no_arg(fn: Extractor) -> Callable[[str | None], Extractor]:
    """A ``make_extractor`` for a field without argument."""

    def make(arg: str | None) -> Extractor:
        return fn

    return make


def spec(
    name: str, make: Callable[[str | None], Extractor], desc: str, *, is_list: bool = False,
    arg: ArgKind = ArgKind.NONE, path: tuple[str, ...] | None = None,
) -> FieldSpec:
    """A k8saudit field: upstream declares every one as ``string``. ``path``: the keys of a
    plain scalar field, which the condition compiler may then read in place."""
    inline = None
    if path is not None:
        # The json fields' document, guarded by auditID: one document read per event serves
        # both; an event json_object refuses goes to the extractor (see InlinePath).
        fast = InlinePath(json_object, path, requires="auditID")
        inline = functools.partial(_same_path, fast)
    return FieldSpec(name, FieldType.CHARBUF, is_list, arg, desc, make_extractor=make,
                     inline=inline)


def _same_path(path: InlinePath, arg: str | None) -> InlinePath:
    return path


def indexed(
    name: str, fn: Callable[[dict[str, Any], int], Any], desc: str
) -> FieldSpec:
    """A list field with an optional ``[N]`` index: ``fn(doc, index)`` computes it."""

    def make(arg: str | None) -> Extractor:
        index = parse_index(name, arg)

        def extract(event: Any) -> Any:
            doc = audit_doc(event)
            return None if doc is None else fn(doc, index)

        return extract

    return spec(name, make, desc, is_list=True, arg=ArgKind.INDEX)


def on_doc(fn: Callable[[dict[str, Any]], Any]) -> Extractor:
    """An extractor computing ``fn(doc)`` on audit documents."""

    def extract(event: Any) -> Any:
        doc = audit_doc(event)
        return None if doc is None else fn(doc)

    return extract


def scalar_at(keys: tuple[str, ...]) -> Extractor:
    """Upstream's ``extractFromKeys`` for a string field: the value at ``keys``, rendered.
    (Rules read these fields in place, see ``spec(path=...)``; this is the exact fallback.)"""

    def extract(event: Any) -> str | None:
        v: Any = audit_doc(event)
        if v is None:
            return None
        for key in keys:
            if type(v) is not dict:
                return None
            v = v.get(key, MISSING)
            if v is MISSING:
                return None
        if type(v) is str:
            return v
        return marshal(v)

    return extract


def list_at(keys: tuple[str, ...]) -> Extractor:
    """``extractFromKeys`` for a list field: the array at ``keys``, each element rendered;
    a value that is not an array is an error upstream (absent here)."""

    def extract(event: Any) -> tuple[str, ...] | None:
        doc = audit_doc(event)
        if doc is None:
            return None
        v = get_path(doc, keys)
        if type(v) is not list or not v:
            return None
        return tuple([e if type(e) is str else marshal(e) for e in v])

    return extract
