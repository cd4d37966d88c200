"""Textual list substitution in conditions (upstream's ``resolve_list``), and macro resolution
on the AST (``filter_macro_resolver``).

Lists are replaced in the condition *text* before parsing, one list at a time in definition
order, so a list name inserted by an earlier list is substituted in turn, and a list name that
appears as a blank-delimited word inside a quoted string is substituted too. Every replacement
is recorded so that a parser position can be traced back to the text as written.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from falconet.condition.ast import And, Expr, Identifier, Not, Or, Pos
from falconet.ruleset.rule_exceptions import quote_item

_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="

_WORDS = re.compile(r"[ \t\n\r(),=]+")
_HAS_DELIM = re.compile(r"[ \t\n\r(),=]")

#: (start, old length, new length, where the list name started) in the text before the edit
Edit = tuple[int, int, int, int]


def resolve_list(cnd: str, name: str, items: list[str], edits: list[Edit]) -> tuple[str, bool]:
    """Replace every delimited occurrence of ``name`` by its items; returns (text, used)."""
    used = False
    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or cnd[start - 1] in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS):
            name_at = start
            while start > 0 and cnd[start - 1] in _BLANKS:
                start -= 1
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            sub = ", ".join(quote_item(v) for v in items)
            if not sub:
                if start > 0 and cnd[start - 1] == ",":
                    start -= 1
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            new = (cnd[:start] + " " if start > 0 else "") + sub + " "
            edits.append((start, end - start, len(new) - start, name_at))
            cnd = new + cnd[end:]
            start += len(sub) + 1
            used = True
        start = cnd.find(name, start + 1)
    return cnd, used


@dataclass(frozen=True, slots=True)
class ListSub:
    """A list ready for substitution: its name, its (compiled) items, and the words they hold."""

    name: str
    items: list[str]
    words: frozenset[str]
    has_delim: bool

    @classmethod
    def of(cls, name: str, items: list[str]) -> ListSub:
        words = frozenset(w for item in items for w in _WORDS.split(item))
        return cls(name, items, words, _HAS_DELIM.search(name) is not None)


class ListTable:
    """The lists of one compile, in definition order, indexed so that a condition only tries
    the lists whose names it contains as delimited words (a name holding a delimiter is always
    looked for): exactly what trying every list with ``resolve_list`` would substitute."""

    def __init__(self, lists: Iterable[ListSub]) -> None:
        self.lists = list(lists)
        self.order = {li.name: i for i, li in enumerate(self.lists)}
        self._with_delims = [i for i, li in enumerate(self.lists) if li.has_delim]

    def resolve(self, cnd: str) -> tuple[str, list[str], list[Edit]]:
        """Substitute the lists in order; returns the text, the lists used, and the edits for
        ``unmap``."""
        used: list[str] = []
        edits: list[Edit] = []
        order = self.order
        todo = {order[w] for w in _WORDS.split(cnd) if w in order}
        todo.update(self._with_delims)
        heap = sorted(todo)
        while heap:
            i = heapq.heappop(heap)
            li = self.lists[i]
            if li.has_delim and li.name not in cnd:
                continue
            cnd, hit = resolve_list(cnd, li.name, li.items, edits)
            if hit:
                used.append(li.name)
                for w in li.words:
                    j = order.get(w)
                    if j is not None and j > i and j not in todo:
                        todo.add(j)
                        heapq.heappush(heap, j)
        return cnd, used, edits


def resolve_lists(cnd: str, lists: Iterable[ListSub]) -> tuple[str, list[str], list[Edit]]:
    """Substitute every list (in the order given): see ``ListTable.resolve``."""
    return ListTable(lists).resolve(cnd)


def unmap(idx: int, edits: list[Edit]) -> int:
    """A position in the substituted text -> the position in the text before substitution
    (inside a substituted list: where its name was)."""
    for start, old, new, name_at in reversed(edits):
        if idx >= start + new:
            idx -= new - old
        elif idx >= start:
            idx = name_at
    return idx


@dataclass
class MacroResolver:
    """Substitutes ``Identifier`` nodes by macro ASTs (recursively), recording what it resolved,
    what it could not, and reference loops, with the identifiers' positions."""

    lookup: Callable[[str], Expr | None]
    resolved: list[tuple[str, Pos]] = field(default_factory=list)
    unknown: list[tuple[str, Pos]] = field(default_factory=list)
    errors: list[tuple[str, Pos]] = field(default_factory=list)
    _path: list[str] = field(default_factory=list)

    def run(self, node: Expr) -> Expr:
        kind = type(node)
        if kind is And or kind is Or:
            children = node.children  # type: ignore[union-attr]
            new = tuple(self.run(c) for c in children)
            for a, b in zip(new, children, strict=True):
                if a is not b:
                    return kind(new, node.pos)  # type: ignore[call-arg]
            return node
        if kind is Not:
            child = self.run(node.child)  # type: ignore[union-attr]
            return node if child is node.child else Not(child, node.pos)  # type: ignore[union-attr]
        if kind is Identifier:
            name = node.name  # type: ignore[union-attr]
            macro = self.lookup(name)
            if macro is None:
                self.unknown.append((name, node.pos))
                return node
            if name in self._path:
                self.errors.append((f"reference loop in macro '{name}'", node.pos))
                self.unknown.append((name, node.pos))
                return node
            self._path.append(name)
            out = self.run(macro)
            self.resolved.append((name, node.pos))
            self._path.pop()
            return out
        return node
