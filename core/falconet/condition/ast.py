"""The condition AST: the node kinds of libsinsp's ``filter/ast.h``, with source positions.

Nodes are frozen dataclasses so that macro substitution can share subtrees safely. ``as_string``
prints a node exactly as upstream's ``string_visitor`` does; that text is what Falco shows as
``condition_compiled`` in ``-L`` output, so golden tests compare against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node starts inside the condition text: 0-based offset, 1-based line and column."""

    idx: int = 0
    line: int = 1
    col: int = 1


NO_POS = Pos()


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Expr
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A macro reference (resolved away before compilation)."""

    name: str
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Value:
    """A literal right-hand side, already unescaped."""

    value: str
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class ListValue:
    """An inline list ``(a, b, "c d")``; items are unescaped literals."""

    values: tuple[str, ...]
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """``name`` or ``name[arg]``; ``arg`` is None when no brackets were written."""

    name: str
    arg: str | None = None
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class Transformer:
    """``tolower(x)``, ``join(",", x)``, ``val(x)`` ... with an optional ``[arg]`` after it."""

    name: str
    values: tuple[Operand, ...]
    arg: str | None = None
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class TransformerList:
    """A parenthesized list of transformer arguments: ``concat((a, b))``."""

    children: tuple[Operand, ...]
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class UnaryCheck:
    """``left exists``."""

    left: Field | Transformer
    op: str
    pos: Pos = field(default=NO_POS, compare=False)


@dataclass(frozen=True, slots=True)
class BinaryCheck:
    """``left op right``; ``op`` is the operator text, e.g. ``=``, ``in``, ``startswith oneof``."""

    left: Field | Transformer
    op: str
    right: Value | ListValue | Field | Transformer
    pos: Pos = field(default=NO_POS, compare=False)


Operand: TypeAlias = Field | Transformer | Value | TransformerList
Expr: TypeAlias = And | Or | Not | Identifier | UnaryCheck | BinaryCheck

_ESCAPES = {
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\\": "\\\\",
    '"': '\\"',
}
_QUOTE_ONLY = frozenset(" ='\0")
_NOT_BARE = frozenset("()\",'")


def escape_str(value: str, *, round_trip: bool = False, force: bool = False) -> str:
    """Quote a literal the way libsinsp's ``escape_str`` does when printing an AST.

    Upstream quotes a value only when it holds a blank, ``=``, a quote, a backslash or a control
    character; ``(``, ``,`` and the empty string stay bare, so its text does not always parse
    back. ``round_trip=True`` also quotes those, and spells a final backslash ``\\x5c`` (upstream's
    closing quote is the first one not preceded by a backslash). ``force`` always quotes.
    """
    quote = force or (
        round_trip and (not value or any(c in _NOT_BARE or c.isspace() for c in value))
    )
    out = []
    for c in value:
        esc = _ESCAPES.get(c)
        if esc is not None:
            quote = True
            out.append(esc)
        else:
            quote = quote or c in _QUOTE_ONLY
            out.append(c)
    text = "".join(out)
    if round_trip and text.endswith("\\"):
        text = text[:-2] + "\\x5c"
    return f'"{text}"' if quote else text


def _arg_suffix(arg: str | None, round_trip: bool) -> str:
    if arg is None:
        return ""
    if not arg:
        return '[""]'
    force = round_trip and any(c in "[]" for c in arg)
    return "[" + escape_str(arg, round_trip=round_trip, force=force) + "]"


def as_string(node: Expr | Operand | ListValue, *, round_trip: bool = False) -> str:
    """Print a node in upstream's normalized form (``string_visitor``).

    ``round_trip`` prints text that parses back to an equal AST: it quotes every literal that
    would not parse back bare (see ``escape_str``), quotes literals inside transformers (where
    upstream only accepts quoted strings and numbers), and parenthesizes a ``not`` directly under
    a ``not`` (``not not x`` parses as ``x``). It recurses once per nesting level, so any AST
    within upstream's depth limit prints.
    """
    rt = round_trip
    match node:
        case And(children) | Or(children):
            parts = []
            for child in children:
                parts.append(as_string(child, round_trip=rt))
            return "(" + (" and " if isinstance(node, And) else " or ").join(parts) + ")"
        case Not(child):
            text = as_string(child, round_trip=rt)
            return f"not ({text})" if rt and isinstance(child, Not) else "not " + text
        case Identifier(name):
            return name
        case Value(value):
            return escape_str(value, round_trip=rt)
        case ListValue(values):
            return "(" + ", ".join([escape_str(v, round_trip=rt) for v in values]) + ")"
        case TransformerList(_) | Transformer(_, _, _):
            items = node.children if isinstance(node, TransformerList) else node.values
            parts = []
            for v in items:  # a loop, not a helper: one Python frame per nesting level
                if isinstance(v, Value):  # transformer arguments are quoted strings or numbers
                    parts.append(escape_str(v.value, round_trip=rt, force=rt))
                else:
                    parts.append(as_string(v, round_trip=rt))
            if isinstance(node, TransformerList):
                return "(" + ",".join(parts) + ")"
            return f"{node.name}({','.join(parts)}){_arg_suffix(node.arg, rt)}"
        case UnaryCheck(left, op):
            return f"{as_string(left, round_trip=rt)} {op}"
        case BinaryCheck(left, op, right):
            return f"{as_string(left, round_trip=rt)} {op} {as_string(right, round_trip=rt)}"
        case Field(name, arg):
            return name + _arg_suffix(arg, rt)
    raise TypeError(f"not an AST node: {node!r}")
