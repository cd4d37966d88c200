"""Checked plans: the boolean structure ``check_condition`` produces and code is generated from.

A plan is a tree of ``Bool`` nodes (n-ary ``and``/``or``, ``not``, constant ``true``) over
``Leaf`` checks (``operators.Leaf``); it lives in its own module so that the checker, the code
generator and the bucket specializer can share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from falconet.condition.operators import Leaf


@dataclass(frozen=True, eq=False)
class Bool:
    """A boolean node of a checked plan (nested and/or of one kind flattened, ``not not``
    removed); ``true`` is an empty and/or."""

    kind: str  # "and" | "or" | "not" | "true"
    children: tuple[Plan, ...] = ()


Plan = Leaf | Bool


def leaves(plan: Plan) -> list[Leaf]:
    """Every check of a plan, left to right."""
    out: list[Leaf] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, Leaf):
            out.append(node)
        else:
            stack.extend(reversed(node.children))
    return out
