"""Comparison operators: names, which field types allow them, and how each is evaluated.

Type rules and messages follow libsinsp's ``filter_compare.cpp`` (``str_to_cmpop``,
``flt_is_comparable``); evaluation follows ``flt_compare`` and ``sinsp_filter_check::
compare_rhs`` (sets for ``in``/``intersects``, per-element comparison for the modifiers
``oneof``/``anyof``/``allof`` where an empty list is false, "any ancestor" for unindexed
``proc.a*`` fields). ``scalar_leaf``/``set_leaf``/``modifier_leaf``/``ancestor_leaf`` turn a
check with converted constants into a ``Leaf``: the shape of code the compiler generates for it
and the prebuilt constant it needs (value, frozenset, tuple or predicate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falconet.condition.values import (
    PathPrefixSet,
    Pred,
    ascii_lower,
    glob_match,
    glob_regex,
    make_glob,
    make_net_contains,
    make_net_list_in,
    make_net_list_intersects,
    make_regex,
    never,
)
from falconet.fields import FieldType

if TYPE_CHECKING:
    from falconet.condition.transformers import Operand

OPERATORS = (
    "=",
    "==",
    "!=",
    "<=",
    "<",
    ">=",
    ">",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "in",
    "intersects",
    "pmatch",
    "exists",
    "glob",
    "iglob",
    "regex",
)
_CANON = {"==": "="}
MODIFIERS = ("oneof", "anyof", "allof")

_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
_BOOL_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_STRING_OPS = frozenset(
    {
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "in",
        "exists",
        "icontains",
        "startswith",
        "glob",
        "pmatch",
        "endswith",
        "intersects",
        "iglob",
        "regex",
    }
)
_BUFFER_OPS = frozenset(
    {
        "=",
        "!=",
        "contains",
        "in",
        "exists",
        "startswith",
        "endswith",
        "intersects",
        "bcontains",
        "bstartswith",
    }
)
_IP_OPS = frozenset({"=", "!=", "in", "exists", "intersects"})
_LIST_OPS = frozenset({"in", "exists", "intersects"})
_LIST_TYPES = frozenset(
    {
        FieldType.CHARBUF,
        FieldType.UINT64,
        FieldType.RELTIME,
        FieldType.ABSTIME,
        FieldType.BOOL,
        FieldType.IPADDR,
        FieldType.IPNET,
    }
)


def parse_operator(text: str) -> tuple[str, str | None]:
    """``str_to_cmpop_with_modifier``: ``"startswith oneof"`` -> (``startswith``, ``oneof``);
    ``==`` is canonicalised to ``=``. Raises ValueError with upstream's message."""
    base, sep, mod = text.partition(" ")
    if base not in OPERATORS:
        raise ValueError(f"unrecognized filter comparison operator '{base}'")
    if sep and mod not in MODIFIERS:
        raise ValueError(f"unrecognized filter comparison modifier '{mod}'")
    return _CANON.get(base, base), (mod if sep else None)


def comparable_error(op: str, mod: str | None, ftype: FieldType, is_list: bool) -> str | None:
    """``flt_is_comparable``: None when ``op`` may be applied, else upstream's error text."""
    if op == "exists":
        return None
    if is_list:
        if ftype not in _LIST_TYPES:
            return f"list filters are not supported for type '{ftype.value}'"
        return None if op in _LIST_OPS else f"'{op}' operator not supported list filters"
    if ftype is FieldType.DYNAMIC:
        return None
    if ftype.is_numeric or ftype is FieldType.PORT:
        return None if op in _NUMERIC_OPS else f"'{op}' operator not supported for numeric filters"
    if ftype is FieldType.BOOL:
        return None if op in _BOOL_OPS else f"'{op}' operator not supported for numeric filters"
    if ftype in (FieldType.IPADDR, FieldType.IPNET):
        if mod is not None and op not in _IP_OPS:
            return f"'{op}' with modifier not supported for ip address and network filters"
        if op in _IP_OPS:
            return None
        return f"'{op}' operator not supported for ip address and network filters"
    if ftype.is_string:
        return None if op in _STRING_OPS else f"'{op}' operator not supported for string filters"
    if ftype is FieldType.BYTEBUF:
        return None if op in _BUFFER_OPS else f"'{op}' operator not supported for buffer filters"
    return f"'{op}' operator not supported for type '{ftype.value}'"


# --- per-element predicates (modifiers, ancestors, field-vs-field) ------------------------------


def element_predicate(op: str, k: Any, ftype: FieldType) -> Pred:
    """``value -> bool`` applying ``value <op> k`` to a present value, as ``flt_compare`` does."""
    if ftype is FieldType.IPNET and op in ("=", "!=", "in", "intersects"):
        inside = make_net_contains([k])
        return inside if op != "!=" else (lambda v: not inside(v))
    if ftype is FieldType.DYNAMIC:
        return lambda v: dynamic_compare(op, v, k)
    match op:
        case "=" | "in" | "intersects":
            return lambda v: v == k
        case "!=":
            return lambda v: v != k
        case "<":
            return lambda v: v < k
        case "<=":
            return lambda v: v <= k
        case ">":
            return lambda v: v > k
        case ">=":
            return lambda v: v >= k
        case "contains" | "bcontains":
            return lambda v: k in v
        case "icontains":
            low = ascii_lower(k)
            return lambda v: low in ascii_lower(v)
        case "startswith" | "bstartswith":
            return lambda v: v.startswith(k)
        case "endswith":
            return lambda v: v.endswith(k)
        case "glob" | "iglob":
            return make_glob(k, op == "iglob")
        case "regex":
            return make_regex(k)
        case "pmatch":
            return PathPrefixSet([k]).match
    raise ValueError(f"unrecognized filter comparison operator '{op}'")


def make_modifier(mod: str, preds: Sequence[Pred]) -> Pred:
    """``oneof``: exactly one element matches; ``anyof``: at least one; ``allof``: every one.
    An empty list never matches (``compare_rhs_with_mod``)."""
    preds = tuple(preds)
    if not preds:
        return never
    if mod == "anyof":
        return lambda v: any(p(v) for p in preds)
    if mod == "allof":
        return lambda v: all(p(v) for p in preds)

    def oneof(v: Any) -> bool:
        hits = 0
        for p in preds:
            if p(v):
                hits += 1
                if hits > 1:
                    return False
        return hits == 1

    return oneof


def dynamic_compare(op: str, v: Any, k: Any) -> bool:
    """``DYNAMIC`` (``evt.rawarg``) values: compare numerically when both sides are numbers,
    else as strings; never raises."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not isinstance(k, int | float):
        v, k = (v if isinstance(v, str | bytes) else str(v)), str(k)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "surrogateescape")
    try:
        return element_predicate(op, k, FieldType.CHARBUF)(v)
    except (TypeError, ValueError):
        return False


def field_compare(op: str, ftype: FieldType, is_list: bool) -> Callable[[Any, Any], bool]:
    """``lhs <op> rhs`` for ``val()`` comparisons (both present, same type and list-ness)."""
    if is_list:
        if op == "in":
            return lambda a, b: set(a).issubset(b)
        return lambda a, b: not set(a).isdisjoint(b)
    if ftype is FieldType.DYNAMIC:
        return lambda a, b: dynamic_compare(op, a, b)
    match op:
        case "=" | "in" | "intersects":
            return lambda a, b: a == b
        case "!=":
            return lambda a, b: a != b
        case "<":
            return lambda a, b: a < b
        case "<=":
            return lambda a, b: a <= b
        case ">":
            return lambda a, b: a > b
        case ">=":
            return lambda a, b: a >= b
        case "contains" | "bcontains":
            return lambda a, b: b in a
        case "icontains":
            return lambda a, b: ascii_lower(b) in ascii_lower(a)
        case "startswith" | "bstartswith":
            return lambda a, b: a.startswith(b)
        case "endswith":
            return lambda a, b: a.endswith(b)
        case "glob" | "iglob":
            casefold = op == "iglob"
            return lambda a, b: glob_match(b, a, casefold)
    raise ValueError(f"operator '{op.upper()}' doesn't support right-hand side fields")


# --- leaves: what the compiler generates for a check ------------------------------------------


@dataclass(frozen=True, eq=False)
class Leaf:
    """One check, ready for code generation. ``form`` picks the code shape (see ``_emit_leaf``):
    ``exists``, ``eq`` (None-safe ``==``), ``member`` (None-safe ``in``), ``pred`` (an
    expression over a present value), ``call`` (a prebuilt predicate), ``field`` (val()),
    ``false``."""

    lhs: Operand
    form: str
    const: Any = None
    expr: str = ""  # for form "pred": template with {v} (value) and {k} (constant name)
    rhs: Operand | None = None


def _any_of(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda values: any(pred(v) for v in values)


def _all_of(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda values: all(pred(v) for v in values)


def scalar_leaf(lhs: Operand, op: str, k: Any) -> Leaf:
    """``flt_compare`` on one present scalar value."""
    if lhs.type is FieldType.DYNAMIC:
        return Leaf(lhs, "call", lambda v: dynamic_compare(op, v, k))
    if lhs.type is FieldType.IPNET:
        inside = make_net_contains([k])
        return Leaf(lhs, "call", inside if op == "=" else (lambda a: not inside(a)))
    match op:
        case "=":
            return Leaf(lhs, "eq", k)
        case "!=" | "<" | "<=" | ">" | ">=":
            return Leaf(lhs, "pred", k, "{v} " + op + " {k}")
        case "contains" | "bcontains":
            return Leaf(lhs, "pred", k, "{k} in {v}")
        case "icontains":
            return Leaf(
                lhs, "pred", ascii_lower(k), "{k} in ({v}.lower() if {v}.isascii() else _lw({v}))"
            )
        case "startswith" | "bstartswith":
            return Leaf(lhs, "pred", k, "{v}.startswith({k})")
        case "endswith":
            return Leaf(lhs, "pred", k, "{v}.endswith({k})")
        case "glob" | "iglob":
            rx = glob_regex(k, op == "iglob")
            if rx is None:
                return Leaf(lhs, "false")
            return Leaf(lhs, "pred", rx.fullmatch, "{k}({v}) is not None")
        case "regex":
            return Leaf(lhs, "call", k)
    raise ValueError(op)


def set_leaf(lhs: Operand, op: str, consts: list[Any]) -> Leaf:
    if op == "pmatch":
        return Leaf(lhs, "call", PathPrefixSet(consts).match)
    if lhs.type is FieldType.DYNAMIC:
        preds = [element_predicate("=", k, FieldType.DYNAMIC) for k in consts]
        return Leaf(lhs, "call", make_modifier("anyof", preds))
    if lhs.type is FieldType.IPNET:
        if not lhs.is_list:
            return Leaf(lhs, "call", make_net_contains(consts) if consts else never)
        make = make_net_list_in if op == "in" else make_net_list_intersects
        return Leaf(lhs, "call", make(consts))
    members = frozenset(consts)
    if not lhs.is_list:
        return Leaf(lhs, "member", members)
    if op == "in":
        return Leaf(lhs, "pred", members, "{k}.issuperset({v})")
    return Leaf(lhs, "pred", members, "not {k}.isdisjoint({v})")


def modifier_leaf(lhs: Operand, op: str, mod: str, consts: list[Any]) -> Leaf:
    """``op oneof/anyof/allof (...)``: per-element ``flt_compare``; empty list is false."""
    if not consts:
        return Leaf(lhs, "false")
    plain = (
        lhs.type not in (FieldType.IPNET, FieldType.DYNAMIC)
        and not lhs.any_ancestor
        and not lhs.endpoints
    )
    if plain and op == "=" and mod == "anyof":
        return Leaf(lhs, "member", frozenset(consts))
    if plain and op == "!=" and mod == "allof":
        return Leaf(lhs, "pred", frozenset(consts), "{v} not in {k}")
    if plain and op in ("startswith", "endswith", "bstartswith") and mod == "anyof":
        method = "endswith" if op == "endswith" else "startswith"
        return Leaf(lhs, "pred", tuple(consts), "{v}." + method + "({k})")
    if lhs.type is FieldType.IPNET and op in ("=", "!="):
        preds = [element_predicate(op, k, lhs.type) for k in consts]
    else:
        preds = [k if op == "regex" else element_predicate(op, k, lhs.type) for k in consts]
    pred = make_modifier(mod, preds)
    return Leaf(lhs, "call", _any_of(pred) if lhs.any_ancestor else pred)


def endpoint_leaf(lhs: Operand, op: str, mod: str | None, consts: list[Any]) -> Leaf:
    """``fd.ip``/``fd.net``/``fd.port``/``fd.proto``: the value is the tuple of the socket's
    endpoints; ``sinsp_filter_check_fd::compare_ip/net/port`` match when EITHER endpoint
    matches, and for ``!=`` when NEITHER equals. Operators those functions throw on at run time
    are refused here, at load time; ``fd.net`` returns false for them."""
    if lhs.name == "fd.ip" and op not in ("=", "!=", "in"):
        raise ValueError("filter error: IP filter only supports '=' and '!=' operators")
    if lhs.name in ("fd.port", "fd.proto") and op not in ("=", "!=", "<", "<=", ">", ">=", "in"):
        raise ValueError("filter error: unsupported port comparison operator")
    if lhs.name == "fd.net" and op not in ("=", "!=", "in"):
        return Leaf(lhs, "false")
    if mod is not None:
        pred = make_modifier(mod, [element_predicate(op, k, lhs.type) for k in consts])
        return Leaf(lhs, "call", _all_of(pred) if op == "!=" else _any_of(pred))
    if lhs.type is FieldType.IPNET:
        inside = make_net_contains(consts)
        if op == "!=":
            return Leaf(lhs, "call", lambda vals: not any(inside(v) for v in vals))
        return Leaf(lhs, "call", _any_of(inside))
    if op in ("=", "!=", "in"):
        members = frozenset(consts if op == "in" else consts[:1])
        return Leaf(lhs, "pred", members, ("" if op == "!=" else "not ") + "{k}.isdisjoint({v})")
    return Leaf(lhs, "call", _any_of(element_predicate(op, consts[0], lhs.type)))


def ancestor_leaf(lhs: Operand, op: str, consts: list[Any]) -> Leaf:
    """Unindexed ``proc.a*``: the value is a tuple of ancestors, true if ANY matches."""
    if op in ("=", "in", "intersects"):
        return Leaf(lhs, "pred", frozenset(consts), "not {k}.isdisjoint({v})")
    if op == "regex":
        elem: Callable[[Any], bool] = consts[0]
    elif op == "pmatch":
        elem = PathPrefixSet(consts).match
    else:
        elem = element_predicate(op, consts[0], lhs.type)
    return Leaf(lhs, "call", _any_of(elem))
