"""Partial evaluation of checked plans for one bucket of the ruleset.

The ruleset picks a bucket by the value of one field (``evt.type``, ``ka.target.resource``...).
Inside that bucket the value is known, so every check of that field against a constant
(``=``, ``in``, ``exists``) is decided before any event arrives: this is what makes bucketing
pay off fully, as upstream's per-event-type index does. Afterwards the plan is simplified
(``and`` with a false child is false, and so on); a rule whose plan becomes false is left out of
the bucket's generated code.
"""

from __future__ import annotations

from typing import Any

from falconet.condition.operators import Leaf
from falconet.condition.plan import Bool, Plan

TRUE = Bool("and", ())
FALSE = Bool("or", ())


def is_true(plan: Plan) -> bool:
    return isinstance(plan, Bool) and (plan.kind == "true" or (plan.kind == "and"
                                                               and not plan.children))


def is_false(plan: Plan) -> bool:
    return isinstance(plan, Bool) and plan.kind == "or" and not plan.children


def _decide(leaf: Leaf, value: Any) -> bool | None:
    """The leaf's outcome when its field's value is ``value``; None if it cannot be decided."""
    if leaf.form == "exists":
        return value is not None
    if leaf.form == "eq":
        return value is not None and value == leaf.const
    if leaf.form == "member":
        return value is not None and value in leaf.const
    return None


def specialize(plan: Plan, key: str, value: Any) -> Plan:
    """``plan`` with every decidable check of the operand ``key`` replaced by its outcome."""
    if isinstance(plan, Leaf):
        if plan.lhs.key != key or plan.rhs is not None:
            return plan
        outcome = _decide(plan, value)
        if outcome is None:
            return plan
        return TRUE if outcome else FALSE
    if plan.kind == "true":
        return TRUE
    children = [specialize(c, key, value) for c in plan.children]
    if plan.kind == "not":
        (child,) = children
        if is_true(child):
            return FALSE
        if is_false(child):
            return TRUE
        return Bool("not", (child,))
    absorbing, neutral = (is_false, is_true) if plan.kind == "and" else (is_true, is_false)
    if any(absorbing(c) for c in children):
        return FALSE if plan.kind == "and" else TRUE
    kept = tuple(c for c in children if not neutral(c))
    if len(kept) == 1:
        return kept[0]
    return Bool(plan.kind, kept)
