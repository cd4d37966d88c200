"""Which events a condition can match: syscall event types, and pinned values for plugin sources.

``event_types`` is upstream's event-type inference (libsinsp ``filter/ppm_codes.cpp``, used by
Falco to index syscall rules): ``and`` intersects, ``or`` unites, negation is pushed down to the
leaves with De Morgan's laws and only inverts exact sets; ``evt.type``/``syscall.type`` (no
argument) with ``=``/``==``/``!=``/``in`` give exact sets; every other check is neutral (all
types), ``not evt.type exists`` gives the empty set. It works on ppm event *codes*: a name
stands for all its codes (enter/exit, every version), and the syscalls captured through the
generic ``syscall`` pair (plus the other ``PPM_SC_*`` names, which upstream maps there too)
share that pair's two codes, so they always come and go together. The
result is returned as event names (the generic pair expanded to all generic syscall names).
Quirks kept on purpose: an ``=``/``!=``/``in`` check whose left side is a transformer ending in
a literal argument (``concat(proc.name, "x") = y``) becomes the empty set under negation, as
upstream's leftover ``m_last_node_has_codes`` makes it; the ``evt.num`` invariants of libs
master (``evt.num = 0`` matches nothing) are off by default (libs 0.25.4 treats them as
neutral) and enabled with ``evt_num_invariants=True``.

``pinned_values`` serves plugin sources, where upstream evaluates every rule on every event:
the set of values of one string field (``ka.verb``, ``ct.name``...) for which a condition CAN
be true, so rules can be bucketed by that field's value. It must stay sound under the absent
semantics (a comparison on an absent field is false for every operator, ``!=`` included, so
``not ka.verb = get`` matches events WITHOUT ``ka.verb``). Each subexpression is abstracted by
two sets over "values of the field, plus ABSENT": ``T``, the field values for which it can be
true, and ``F``, those for which it can be false. ``not`` swaps them; ``and`` intersects the
``T``s and unites the ``F``s; ``or`` the converse. Leaves: ``x = v``/``x in (...)`` give
``T = {v...}`` exactly and ``F`` = its complement (ABSENT included); ``x != v`` gives
``T`` = every present value but v, ``F = {v, ABSENT}``; ``x exists`` gives ``T`` = every present
value, ``F = {ABSENT}``; any other check that mentions x (other operators, transformers,
``val(x)``) is false when x is absent, so ``T`` = every present value and ``F`` = everything;
a check that does not mention x is unconstrained (both sets = everything). Each step
over-approximates the true sets, so the final ``T`` contains every value (and ABSENT, when an
event without the field can match). ``pinned_values`` returns ``T`` when it is a finite set
without ABSENT, else None (the rule must be evaluated for every event).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from falconet.condition import ast
from falconet.condition.event_names import (
    CODELESS_NAMES,
    EVENT_CODES,
    GENERIC_EVENT_CODES,
    GENERIC_SYSCALLS,
    SC_ONLY_NAMES,
)
from falconet.condition.values import scan_int

_GENERIC = "syscall"  # the class key of the generic pair (codes 0 and 1 are named "syscall")
_ALL_CODES: frozenset[str] = frozenset(EVENT_CODES) | {_GENERIC}
#: Names that stand for the generic pair: generic syscalls and the other ``PPM_SC_*`` names.
_GENERIC_NAMES: frozenset[str] = GENERIC_SYSCALLS | SC_ONLY_NAMES
#: Every name ``event_types`` can return (the "all event types" result).
ALL_EVENT_TYPES: frozenset[str] = frozenset(EVENT_CODES) | _GENERIC_NAMES | {_GENERIC}
#: Falco warns LOAD_NO_EVTTYPE when a rule matches more codes than this.
MAX_EVTTYPE_CODES = 100
_EVTTYPE_OPS = frozenset({"=", "==", "!=", "in"})


class EventTypeError(ValueError):
    """``ppm_event_codes`` refuses the condition; ``args[0]`` is upstream's message."""


def is_known_event_type(name: str) -> bool:
    """Would ``evt.type = name`` pass ``validate_filter_value`` (event or syscall name)?"""
    return name in EVENT_CODES or name in _GENERIC_NAMES or name in CODELESS_NAMES


def _names_to_codes(names: Iterable[str]) -> frozenset[str]:
    """``names_to_event_set`` on code classes: unknown names add nothing; any generic syscall
    adds the generic pair."""
    out = set()
    for name in names:
        if name in EVENT_CODES:
            out.add(name)
        elif name in _GENERIC_NAMES:
            out.add(_GENERIC)
    return frozenset(out)


def count_event_codes(names: Iterable[str]) -> int:
    """How many ppm event codes a set of event names stands for (upstream's ``set.size()``)."""
    classes = _names_to_codes(names)
    return sum(EVENT_CODES[c] for c in classes if c != _GENERIC) + (
        GENERIC_EVENT_CODES if _GENERIC in classes else 0
    )


def warns_no_evttype(code_count: int, *, warn_empty: bool = True) -> bool:
    """Falco's LOAD_NO_EVTTYPE test: more than 100 codes, or (Falco 0.44.1, ``warn_empty``) none;
    Falco master no longer warns for the empty set (the ``never_true`` idiom)."""
    return code_count > MAX_EVTTYPE_CODES or (warn_empty and code_count == 0)


def _expand(classes: frozenset[str]) -> frozenset[str]:
    if _GENERIC in classes:
        return (classes - {_GENERIC}) | _GENERIC_NAMES | {_GENERIC}
    return classes


def _evt_num_invariant(e: ast.BinaryCheck) -> str | None:
    """libs master ``evaluate_field_invariant``: "empty", "all" or None (undecided)."""
    if not isinstance(e.left, ast.Field) or e.left.name != "evt.num" or e.left.arg is not None:
        return None

    def u64(text: str) -> int | None:
        try:
            return scan_int(text, signed=False, scan_bits=64)
        except ValueError:
            return None

    if e.op == "in":
        if not isinstance(e.right, ast.ListValue):
            return None
        return "empty" if all(u64(v) == 0 for v in e.right.values) else None
    if not isinstance(e.right, ast.Value):
        return None
    n = u64(e.right.value)
    if n is None:
        return None
    table = {"=": n == 0, "==": n == 0, "<": n <= 1, "<=": n == 0}
    if e.op in table:
        return "empty" if table[e.op] else None
    table = {"!=": n == 0, ">": n == 0, ">=": n <= 1}
    if e.op in table:
        return "all" if table[e.op] else None
    return None


def _visit_operand(node: Any) -> tuple[bool, bool]:
    """Visit a check's left side as the upstream visitor does: (is a bare evt.type field,
    "has codes" left over from the last value visited inside transformers)."""
    if isinstance(node, ast.Field):
        return node.name in ("evt.type", "syscall.type") and node.arg is None, False
    if isinstance(node, ast.Value):
        return False, True
    if isinstance(node, ast.TransformerList):
        state = (False, False)
        for child in node.children:
            state = _visit_operand(child)
        return state
    if isinstance(node, ast.Transformer):
        has_codes = False
        for child in node.values:
            is_evttype, has_codes = _visit_operand(child)
            if is_evttype:
                raise EventTypeError(
                    "event code search does not support `evt.type` checks with transformers"
                )
        return False, has_codes
    return False, False


def _leaf_codes(node: Any, negated: bool, invariants: bool) -> frozenset[str]:
    if isinstance(node, ast.BinaryCheck):
        inv = _evt_num_invariant(node) if invariants else None
        if inv is not None:
            codes = frozenset() if inv == "empty" else _ALL_CODES
            return _ALL_CODES - codes if negated else codes
        has_codes = False
        if node.op in _EVTTYPE_OPS:
            is_evttype, has_codes = _visit_operand(node.left)
            if is_evttype:
                right = node.right
                if isinstance(right, ast.Value | ast.ListValue):
                    values = (right.value,) if isinstance(right, ast.Value) else right.values
                    codes = _names_to_codes(values)
                    if negated:
                        codes = _ALL_CODES - codes
                    return _ALL_CODES - codes if node.op == "!=" else codes
                _visit_operand(right)
                raise EventTypeError(
                    "right-hand field comparisons on `evt.type`/`syscall.type` checks are not "
                    "supported by event code search"
                )
        return frozenset() if negated and has_codes else _ALL_CODES
    if isinstance(node, ast.UnaryCheck):
        is_evttype, _ = _visit_operand(node.left)
        exact = is_evttype and node.op == "exists"
        return frozenset() if negated and exact else _ALL_CODES
    return _ALL_CODES  # identifier (unresolved macro): neutral


def _event_classes(root: ast.Expr, invariants: bool) -> frozenset[str]:
    results: list[frozenset[str]] = []
    work: list[tuple[bool, Any, bool]] = [(False, root, False)]
    while work:
        built, node, negated = work.pop()
        if built:
            kind, count = node
            parts = results[len(results) - count :]
            del results[len(results) - count :]
            acc = _ALL_CODES if kind == "and" else frozenset()
            for p in parts:
                acc = acc & p if kind == "and" else acc | p
            results.append(acc)
            continue
        while isinstance(node, ast.Not):
            node, negated = node.child, not negated
        if isinstance(node, ast.And | ast.Or):
            kind = "and" if isinstance(node, ast.And) else "or"
            if negated:
                kind = "or" if kind == "and" else "and"
            work.append((True, (kind, len(node.children)), negated))
            work.extend((False, c, negated) for c in reversed(node.children))
        else:
            results.append(_leaf_codes(node, negated, invariants))
    return results[0]


def event_types(root: ast.Expr, *, evt_num_invariants: bool = False) -> frozenset[str]:
    """The event names a syscall condition can match (``ALL_EVENT_TYPES`` when unconstrained);
    raises ``EventTypeError`` for ``evt.type`` under transformers or against a field."""
    return _expand(_event_classes(root, evt_num_invariants))


def event_code_count(root: ast.Expr, *, evt_num_invariants: bool = False) -> int:
    """The size of upstream's ``ppm_event_codes`` set for the condition."""
    classes = _event_classes(root, evt_num_invariants)
    return sum(EVENT_CODES[c] for c in classes if c != _GENERIC) + (
        GENERIC_EVENT_CODES if _GENERIC in classes else 0
    )


# --- pinned values for plugin sources -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _VSet:
    """A set of field values plus possibly ABSENT: ``vals`` exactly when ``finite``, else every
    present value except ``vals``."""

    finite: bool
    vals: frozenset[str]
    absent: bool

    def invert(self) -> _VSet:
        return _VSet(not self.finite, self.vals, not self.absent)

    def meet(self, o: _VSet) -> _VSet:
        if self.finite and o.finite:
            vals, finite = self.vals & o.vals, True
        elif self.finite:
            vals, finite = self.vals - o.vals, True
        elif o.finite:
            vals, finite = o.vals - self.vals, True
        else:
            vals, finite = self.vals | o.vals, False
        return _VSet(finite, vals, self.absent and o.absent)

    def join(self, o: _VSet) -> _VSet:
        return self.invert().meet(o.invert()).invert()


_EMPTY: frozenset[str] = frozenset()
_TOP = _VSet(False, _EMPTY, True)
_PRESENT = _VSet(False, _EMPTY, False)
_ABSENT = _VSet(True, _EMPTY, True)


def _label(field: ast.Field) -> str:
    """``name`` or ``name[arg]``: how ``pinned_values`` names a field with its argument."""
    return field.name if field.arg is None else f"{field.name}[{field.arg}]"


def _mentions(node: Any, name: str) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Field):
            if _label(n) == name:
                return True
        elif isinstance(n, ast.Transformer):
            stack.extend(n.values)
        elif isinstance(n, ast.TransformerList):
            stack.extend(n.children)
    return False


def _leaf_sets(node: Any, name: str, is_list: bool) -> tuple[_VSet, _VSet]:
    if not isinstance(node, ast.UnaryCheck | ast.BinaryCheck):
        return _TOP, _TOP
    right = getattr(node, "right", None)
    if not _mentions(node.left, name) and not _mentions(right, name):
        return _TOP, _TOP
    plain = isinstance(node.left, ast.Field) and _label(node.left) == name
    base, _, mod = node.op.partition(" ")
    if plain and base == "exists":
        return _PRESENT, _ABSENT
    if not plain or is_list or not isinstance(right, ast.Value | ast.ListValue):
        return _PRESENT, _TOP
    values = (right.value,) if isinstance(right, ast.Value) else tuple(right.values)
    if base in ("=", "==") and not mod:
        values = values[:1]
    if (base in ("=", "==") and mod in ("", "anyof")) or base in ("in", "intersects"):
        exact = _VSet(True, frozenset(values), False)
        return exact, exact.invert()
    if base in ("=", "==") and mod:  # oneof/allof: a subset of the list
        return _VSet(True, frozenset(values), False), _TOP
    if base == "!=" and not mod:
        return _VSet(False, frozenset(values[:1]), False), _VSet(True, frozenset(values[:1]), True)
    return _PRESENT, _TOP


def value_sets(root: ast.Expr, field_name: str, *, is_list: bool = False) -> tuple[_VSet, _VSet]:
    """(T, F) for the whole condition (see the module docstring)."""
    results: list[tuple[_VSet, _VSet]] = []
    work: list[tuple[bool, Any, bool]] = [(False, root, False)]
    while work:
        built, node, negated = work.pop()
        if built:
            kind, count = node
            parts = results[len(results) - count :]
            del results[len(results) - count :]
            t, f = parts[0]
            for pt, pf in parts[1:]:
                t, f = (t.meet(pt), f.join(pf)) if kind == "and" else (t.join(pt), f.meet(pf))
            results.append((f, t) if negated else (t, f))
            continue
        while isinstance(node, ast.Not):
            node, negated = node.child, not negated
        if isinstance(node, ast.And | ast.Or) and node.children:
            kind = "and" if isinstance(node, ast.And) else "or"
            work.append((True, (kind, len(node.children)), negated))
            work.extend((False, c, False) for c in reversed(node.children))
        else:
            t, f = _leaf_sets(node, field_name, is_list)
            results.append((f, t) if negated else (t, f))
    return results[0]


def pinned_values(
    root: ast.Expr, field_name: str, *, is_list: bool = False
) -> frozenset[str] | None:
    """The values of ``field_name`` (``name`` or ``name[arg]``) for which ``root`` can match, or
    None when it may match any value or an event without the field. ``is_list`` disables exact
    pinning (``in`` means "all elements in" there)."""
    t, _ = value_sets(root, field_name, is_list=is_list)
    if t.finite and not t.absent:
        return t.vals
    return None
