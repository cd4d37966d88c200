"""Parse Falco conditions into the AST, accepting exactly what libsinsp's filter parser accepts.

The grammar (``grammar.lark``) is LALR(1) with lark's contextual lexer, and AST nodes are built
by callbacks while the parser reduces, so no parse tree is built and nothing recurses: deeply
nested input cannot exhaust the Python stack.

Node positions and error positions follow upstream's cursor exactly (``idx`` 0-based, ``line`` and
``col`` 1-based, where both ``\\r`` and ``\\n`` start a new line), because Falco reports the
position of a failed parse and rule authors rely on it.

Fast path: one plain lark parse. Slow path (only on error, or when the text has enough ``(`` to
possibly reach the recursion limit): an interactive re-parse that keeps the tokens, so that the
error can be given upstream's message and position (``parse_errors.py``), and upstream's
recursion depth replayed (``depth.py``).

Deliberate differences from libsinsp:

* positions count characters, not UTF-8 bytes (the same for ASCII text);
* a NUL byte in a value (``"\\x00"``) is rejected here, after any syntax error, with the message
  upstream's compiler gives it later;
* lark's ``cache=True`` is not used: it unpickles a file with a predictable name in the shared
  temporary directory, which a root daemon must not do; building the tables takes ~0.1 s once.
"""

from __future__ import annotations

import re
import threading
from copy import copy
from dataclasses import replace
from functools import cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from falconet.condition import depth
from falconet.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    Field,
    Identifier,
    ListValue,
    Not,
    Operand,
    Or,
    Pos,
    Transformer,
    TransformerList,
    UnaryCheck,
    Value,
)
from falconet.condition.escaping import NUL_MESSAGE, EscapeError, NulByteError, unescape_str
from falconet.condition.parse_errors import (
    MSG_EMPTY,
    MSG_FORMAT_START,
    MSG_RPAREN,
    ConditionSyntaxError,
    pos_at,
    syntax_error,
    token_end,
    token_start,
)

__all__ = [
    "FORMAT_MAX_DEPTH",
    "MAX_DEPTH",
    "ConditionSyntaxError",
    "parse",
    "parse_field_or_transformer",
]

MAX_DEPTH = 1000
"""libsinsp master's recursion limit as Falco's rule compiler sets it (``set_max_depth(1000)``)."""
FORMAT_MAX_DEPTH = 100
"""The parser's default limit, which output formats get (the event formatter never raises it)."""


def parse(text: str) -> Expr:
    """Parse a whole condition; raise ConditionSyntaxError (and nothing else) when invalid."""
    try:
        return _parse_condition(text)
    except ConditionSyntaxError:
        raise
    except Exception as exc:  # a bug here must still not escape as a non-syntax error
        raise ConditionSyntaxError(f"parser fatal error: {exc!r}", Pos()) from exc


def parse_field_or_transformer(text: str, start: int = 0) -> tuple[Field | Transformer, int]:
    """Parse one field or transformer starting exactly at ``text[start]`` (an output ``%token``).

    Returns the node and the offset in ``text`` just after it. As upstream's formatter parses the
    substring ``text[start:]``, node and error positions are relative to ``start``.
    """
    try:
        return _parse_format_token(text, start)
    except ConditionSyntaxError:
        raise
    except Exception as exc:
        raise ConditionSyntaxError(f"parser fatal error: {exc!r}", Pos()) from exc


# ---- building the AST during the LALR reductions ----


class _BadToken:
    """Stands for a quoted token's value when unescaping it fails. The token callbacks run when
    the parser shifts the token, which can be after a later token failed to lex; upstream
    reports the first failure in the text, so the slow path decides which error wins."""

    __slots__ = ("idx", "message", "value")

    def __init__(self, message: str, idx: int, value: str | None = None) -> None:
        self.message = message
        self.idx = idx
        self.value = value  # set for a NUL byte: a compile-time error upstream, reported last


class _Retry(Exception):
    """A callback met a bad token: redo the parse on the slow path for upstream's error."""


_SWALLOWED = object()  # a failing first list item that upstream silently drops, as in '("\q")'
_TOP = Pos(0, 1, 1)
_tls = threading.local()  # the original text while lark reads a copy with "\r" made "\n"


def _raw(tok: Token) -> str:
    original = getattr(_tls, "original", None)
    return str(tok) if original is None else original[token_start(tok) : token_end(tok)]


def _unquote(quoted: str, error_idx: int) -> str | _BadToken:
    try:
        return unescape_str(quoted[1:-1], quoted[0])
    except NulByteError as exc:
        return _BadToken(exc.message, error_idx, exc.value)
    except EscapeError as exc:
        return _BadToken(exc.message, error_idx)


def _failed_first_item(value: str | _BadToken) -> bool:
    return value.__class__ is _BadToken and value.value is None  # type: ignore[union-attr]


# lark types a token's offsets as optional; a lexed token always has them
def _pos(tok: Token) -> Pos:
    return Pos(tok.start_pos, tok.line, tok.column)  # type: ignore[arg-type]


def _end_pos(tok: Token) -> Pos:
    return Pos(tok.end_pos, tok.end_line, tok.end_column)  # type: ignore[arg-type]


def _text(tok: Token) -> str:
    value = tok.value
    if value.__class__ is str:
        return value
    raise _Retry


def _node(item: Expr | tuple[Pos, Expr]) -> Expr:
    return item[1] if item.__class__ is tuple else item  # type: ignore[return-value]


def _first_pos(item: Expr | tuple[Pos, Expr]) -> Pos:
    return item[0] if item.__class__ is tuple else item.pos  # type: ignore[return-value, union-attr]


def _moved(node: Operand, pos: Pos) -> Operand:
    """``node`` placed at ``pos``, as upstream positions transformer arguments (see builder)."""
    if node.pos == pos:
        return node
    if isinstance(node, TransformerList):
        return TransformerList(tuple(_moved(c, pos) for c in node.children), pos)
    return replace(node, pos=pos)


class _Builder:
    """lark callbacks. Expressions in parentheses travel as ``(start, node)`` tuples, because
    upstream places an ``and``/``or`` node where its first operand's text starts."""

    # -- token callbacks (terminal names), run when the token is shifted --
    def QUOTED(self, tok: Token) -> Token:
        tok.value = _unquote(_raw(tok), token_end(tok))
        return tok

    def FIRST_QUOTED(self, tok: Token) -> Token:
        # upstream swallows the first item's error, then needs ")" right after the quote
        value = _unquote(_raw(tok), token_end(tok))
        tok.value = _BadToken(MSG_RPAREN, token_end(tok)) if _failed_first_item(value) else value
        return tok

    def FIRST_QUOTED_CLOSE(self, tok: Token) -> Token:
        value = _unquote(_raw(tok), token_end(tok))
        tok.value = _SWALLOWED if _failed_first_item(value) else value
        return tok

    def FIELDARG(self, tok: Token) -> Token:
        inner = _raw(tok)[1:-1]
        tok.value = _unquote(inner, token_end(tok) - 1) if inner[0] in "\"'" else inner
        return tok

    # -- rule callbacks --
    def start(self, c: list) -> Expr:
        if len(c) == 1:
            return _node(c[0])
        return Or(tuple(_node(x) for x in c), _TOP)

    def or_expr(self, c: list) -> Or:
        return Or(tuple(_node(x) for x in c), _first_pos(c[0]))

    def and_expr(self, c: list) -> And:
        return And(tuple(_node(x) for x in c), _first_pos(c[0]))

    def negate(self, c: list) -> Expr | tuple[Pos, Expr]:
        nots, inner = c
        return _negated(nots, nots.count("not") % 2 == 1, inner)

    def negate_paren(self, c: list) -> Expr | tuple[Pos, Expr]:
        nots, inner = c
        return _negated(nots, nots.count("not") % 2 == 1, inner)

    def paren(self, c: list) -> tuple[Pos, Expr]:
        return (_pos(c[0]), _node(c[1]))

    def macro(self, c: list) -> Identifier:
        return Identifier(c[0].value, _pos(c[0]))

    def unary(self, c: list) -> UnaryCheck:
        left, _ = _split_left(c)
        return UnaryCheck(left, "exists", left.pos)

    def binary(self, c: list) -> BinaryCheck:
        left, (op, right) = _split_left(c)
        return BinaryCheck(left, op.value, _operand(right), left.pos)

    def modified(self, c: list) -> BinaryCheck:
        left, (op, modifier, right) = _split_left(c)
        return BinaryCheck(left, f"{op.value} {modifier.value[:5]}", _operand(right), left.pos)

    def field(self, c: list) -> Field:
        name = c[0]
        return Field(name.value, _text(c[1]) if len(c) == 2 else None, _pos(name))

    def val(self, c: list) -> Transformer:
        arg = _text(c[2]) if len(c) == 3 else None
        return Transformer("val", (c[1],), arg, _pos(c[0]))

    def transformer(self, c: list) -> Transformer:
        opening, last = c[0], c[-1]
        arg = None
        if last.__class__ is Token and last.type == "FIELDARG":
            arg = _text(last)
            c = c[:-1]
        values: list[Operand] = []
        at = None  # upstream places an argument after a comma right after the comma
        for item in c[1:]:
            if item.__class__ is Token:
                if item.type == "COMMA":
                    at = _end_pos(item)
                    continue
                values.append(Value(_text(item), at or _pos(item)))
            else:
                values.append(item if at is None else _moved(item, at))
            at = None
        return Transformer(opening.value[:-1], tuple(values), arg, _pos(opening))

    def tlist(self, c: list) -> TransformerList:
        # upstream gives every element the position of the list itself
        pos = _pos(c[0])
        items = [
            (Value(_text(x), pos) if x.__class__ is Token else _moved(x, pos))
            for x in c[1:]
            if not (x.__class__ is Token and x.type == "COMMA")
        ]
        return TransformerList(tuple(items), pos)

    def LIST_LITERAL(self, tok: Token) -> Token:
        raw = _raw(tok)
        tok.value = tuple(
            m.group(m.lastindex or 0) for m in _LIST_ITEM_RE.finditer(raw, 1, len(raw) - 1)
        )
        return tok

    def value_list(self, c: list) -> ListValue:
        values = tuple(_text(t) for t in c[1:] if t.type != "COMMA" and t.value is not _SWALLOWED)
        return ListValue(values, _pos(c[0]))

    def fot(self, c: list) -> Field | Transformer:
        return c[0]


def _split_left(c: list) -> tuple[Field | Transformer, list]:
    """A check's left-hand side, spelled inline in the grammar, and the rest of the check."""
    first = c[0]
    if first.__class__ is not Token:
        return first, c[1:]
    if c[1].type == "FIELDARG":
        return Field(first.value, _text(c[1]), _pos(first)), c[2:]
    return Field(first.value, None, _pos(first)), c[1:]


def _negated(first: Token, odd: bool, inner: Expr | tuple[Pos, Expr]) -> Expr | tuple[Pos, Expr]:
    node = _node(inner)
    return Not(node, _pos(first)) if odd else (_pos(first), node)


def _operand(
    right: Token | Field | Transformer | ListValue,
) -> Value | ListValue | Field | Transformer:
    """A check's right-hand side: a literal token becomes a Value (or a ListValue)."""
    if isinstance(right, Token):
        if right.type == "LIST_LITERAL":
            return ListValue(right.value, _pos(right))
        return Value(_text(right), _pos(right))
    return right


_LIST_ITEM_RE = re.compile(r""""([^"]*)"|'([^']*)'|([^()"' \t\n\x0b\x0c\r=,\x08]+)""")


_BUILDER = _Builder()
_TOKEN_CALLBACKS = {
    name: getattr(_BUILDER, name)
    for name in ("QUOTED", "FIRST_QUOTED", "FIRST_QUOTED_CLOSE", "FIELDARG")
}


@cache
def _lark() -> Lark:
    """The parser, built once per process (the LALR tables take ~0.1 s to compute)."""
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        start=["start", "fot"],
        transformer=_BUILDER,
        maybe_placeholders=False,
    )


# ---- the two entry points ----

# 10 + 5 per "(" bounds upstream's recursion depth; below the limit no replay is needed
_SAFE_PARENS = (MAX_DEPTH - 10) // 5 - 1


def _parse_condition(text: str) -> Expr:
    if not text:
        raise ConditionSyntaxError(MSG_EMPTY, Pos())
    _reject_nul(text)
    lark_text = _enter(text)
    try:
        if text.count("(") <= _SAFE_PARENS:
            try:
                return _lark().parse(lark_text, start="start")  # type: ignore[return-value]
            except (UnexpectedInput, _Retry):
                pass
        run = _Run(text, lark_text, "start")
        return run.outcome(MAX_DEPTH, depth.CONDITION)  # type: ignore[return-value]
    finally:
        _tls.original = None


# A plain field token, the common case in outputs; anything else goes through the parser.
_FORMAT_FIELD_RE = re.compile(
    r"""[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z][a-zA-Z0-9_]*)+"""
    r"""(?:\[(?:"([^"\\\x00]*)"|'([^'\\\x00]*)'|([^\[\]"' \t\n\x0b\x0c\r\x00]+))\])?"""
)


def _parse_format_token(text: str, start: int) -> tuple[Field | Transformer, int]:
    sub = text[start:]
    if not sub or not ("a" <= sub[0] <= "z" or "A" <= sub[0] <= "Z"):
        raise ConditionSyntaxError(MSG_FORMAT_START, Pos())  # no blank may come first
    field = _FORMAT_FIELD_RE.match(sub)
    if field is not None and (field.lastindex or not sub.startswith("[", field.end())):
        name_end = sub.find("[", 0, field.end())
        name = sub[: field.end()] if name_end < 0 else sub[:name_end]
        arg = None if field.lastindex is None else field.group(field.lastindex)
        return Field(name, arg, Pos()), start + field.end()
    _reject_nul(sub)
    lark_sub = _enter(sub)
    try:
        run = _Run(sub, lark_sub, "fot")
        node = run.outcome(FORMAT_MAX_DEPTH, depth.FORMAT)
        return node, start + token_end(run.tokens[-1])  # type: ignore[return-value]
    finally:
        _tls.original = None


def _reject_nul(text: str) -> None:
    nul = text.find("\0")
    if nul >= 0:  # upstream's C strings end there; its value parser rejects NUL bytes
        raise ConditionSyntaxError(NUL_MESSAGE, pos_at(text, nul))


def _enter(text: str) -> str:
    """The text lark reads: lark counts lines at "\\n" only, upstream at "\\r" too."""
    if "\r" not in text:
        _tls.original = None
        return text
    _tls.original = text
    return text.replace("\r", "\n")


class _Run:
    """An interactive parse that keeps the accepted tokens, and where and why it stopped."""

    def __init__(self, text: str, lark_text: str, start: str) -> None:
        self.text = text
        self.start = start
        self.tokens: list[Token] = []
        self.result: object = None
        self.failed_at: int | None = None  # where the parse could not go on
        self.escape_error: ConditionSyntaxError | None = None
        self.nul_error: ConditionSyntaxError | None = None
        self.ip = _lark().parse_interactive(lark_text, start=start)
        # token callbacks run here once, when each token is lexed, as upstream unescapes
        state = self.ip.parser_state
        state.parse_conf = copy(state.parse_conf)
        state.parse_conf.callbacks = {
            k: v for k, v in state.parse_conf.callbacks.items() if k not in _TOKEN_CALLBACKS
        }
        try:
            self._consume()
        except UnexpectedToken as exc:
            if self.tokens and exc.token is self.tokens[-1]:
                self.tokens.pop()  # lexed, but refused by the parser
            self._stop(len(text) if exc.token.type == "$END" else token_start(exc.token))
        except UnexpectedCharacters as exc:
            self._stop(exc.pos_in_stream)

    def _consume(self) -> None:
        for tok in self.ip.iter_parse():
            unquote = _TOKEN_CALLBACKS.get(tok.type)
            if unquote is not None:
                unquote(tok)
            value = tok.value
            if value.__class__ is _BadToken:
                error = ConditionSyntaxError(value.message, pos_at(self.text, value.idx))
                if value.value is None:  # upstream unescapes while lexing
                    self.escape_error = error
                    self.failed_at = value.idx
                    return
                self.nul_error = self.nul_error or error
                tok.value = value.value
            self.tokens.append(tok)
        if self.start == "fot":
            self._stop(None)
        else:
            self.result = self.ip.feed_eof()

    def _stop(self, at: int | None) -> None:
        """A format token ends where the parser could stop; a condition must use all text."""
        accepts = self.ip.accepts() if self.start == "fot" and self.tokens else set()
        if "$END" in accepts:
            touching = at is not None and self.text.startswith("[", at)
            if not (touching and token_end(self.tokens[-1]) == at and "FIELDARG" in accepts):
                self.result = self.ip.feed_eof()
                return
        self.failed_at = len(self.text) if at is None else at

    def outcome(self, limit: int, mode: str) -> object:
        """The AST, or upstream's error: the depth limit if it is hit before the failure."""
        end = len(self.text) if self.failed_at is None else self.failed_at
        depth.check_depth(self.text, self.tokens, end, limit, mode)
        if self.escape_error is not None:
            raise self.escape_error
        if self.failed_at is not None:
            if self.start == "fot" and not self.tokens:
                raise ConditionSyntaxError(MSG_FORMAT_START, Pos())
            raise syntax_error(self.text, self.tokens, self.ip.accepts(), self.failed_at)
        if self.nul_error is not None:
            raise self.nul_error
        return self.result
