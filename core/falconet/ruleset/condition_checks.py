"""Load-time lint of rule conditions and outputs (upstream's ``filter_warning_resolver`` and
``check_deprecated_fields_in_output``).

* ``<NA>`` compared with ``=``/``!=``/``in``... on a ``ka.*``/``jevt.*`` field: the field may
  be missing, and then every comparison is false, so the check does not do what it says.
* Deprecated fields (``evt.dir`` and the latency fields, meaningless since enter events are
  dropped): in conditions (left-hand sides, as upstream visits them) and in outputs (by
  substring, as upstream).
"""

from __future__ import annotations

from typing import Any

from falconet.condition import ast as A

_LATENCY = "field is not available due to the drop of enter events."
#: upstream's deprecated fields, in its enum order, with the warning text for conditions
DEPRECATED_FIELDS: dict[str, str] = {
    "evt.dir": "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and "
    "'evt.dir = >' always evaluates to false. The rule expression can be simplified by removing "
    "the condition on 'evt.dir'",
    "evt.latency": _LATENCY,
    "evt.latency.s": _LATENCY,
    "evt.latency.ns": _LATENCY,
    "evt.latency.human": _LATENCY,
    "evt.wait_latency": _LATENCY,
}
_ORDER = {name: i for i, name in enumerate(DEPRECATED_FIELDS)}
_EQUALITY_OPS = frozenset({"==", "=", "!=", "in", "intersects", "pmatch"})
NO_VALUE = "<NA>"


def deprecated_fields_in_output(output: str) -> list[str]:
    """Deprecated field names found anywhere in an output (substring search, enum order)."""
    return [name for name in DEPRECATED_FIELDS if name in output]


class _Visitor:
    __slots__ = ("deprecated", "equality", "na_check", "unsafe")

    def __init__(self) -> None:
        self.equality = False
        self.unsafe = False
        self.na_check = False
        self.deprecated: set[str] = set()

    def visit(self, node: Any) -> None:
        match node:
            case A.And(children) | A.Or(children):
                for c in children:
                    self.visit(c)
            case A.Not(child):
                self.visit(child)
            case A.BinaryCheck(left, op, right):
                self.unsafe = False
                self.visit(left)
                if self.unsafe and op in _EQUALITY_OPS:
                    self.equality = True
                    self.visit(right)
                    self.equality = False
            case A.UnaryCheck(left):
                self.visit(left)
            case A.Transformer(_, values):
                for v in values:
                    self.visit(v)
            case A.Field(name):
                self.unsafe = name.startswith(("ka.", "jevt."))
                if name in DEPRECATED_FIELDS:
                    self.deprecated.add(name)
            case A.Value(value):
                if self.equality and value == NO_VALUE:
                    self.na_check = True
            case A.ListValue(values):
                if self.equality and NO_VALUE in values:
                    self.na_check = True


def warning_checks(tree: A.Expr) -> tuple[bool, list[str]]:
    """(an unsafe ``<NA>`` comparison was found, deprecated fields used in enum order)."""
    v = _Visitor()
    v.visit(tree)
    return v.na_check, sorted(v.deprecated, key=_ORDER.__getitem__)
