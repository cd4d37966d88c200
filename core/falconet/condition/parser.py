"""Parse Falco conditions into the AST, accepting exactly what libsinsp's filter parser accepts.

The grammar (``grammar.lark``) is LALR(1) with lark's contextual lexer, and AST nodes are built
by callbacks while the parser reduces, so no parse tree is built and nothing recurses: deeply
nested input cannot exhaust the Python stack.

Node positions and error positions follow upstream's cursor exactly (``idx`` 0-based, ``line`` and
``col`` 1-based, where both ``\\r`` and ``\\n`` start a new line), because Falco reports the
position of a failed parse and rule authors rely on it.

Fast path: one plain lark parse. Slow path (only on error, or when the text has enough ``(`` to
possibly reach the recursion limit): an interactive re-parse that keeps the tokens, so that the
error can be given upstream's message and position, and upstream's recursion depth replayed.

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

_CHECK_OPERATORS = (
    "exists",
    "<=",
    "<",
    ">=",
    ">",
    "==",
    "=",
    "!=",
    "glob",
    "iglob",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "regex",
    "intersects",
    "in",
    "pmatch",
)
_TRANSFORMERS = ("val", "tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt")


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(f"'{item}'" for item in items)


MSG_EMPTY = "filter input string is empty"
MSG_CHECK = "expected a '(' token, a field check, or an identifier"
MSG_RPAREN = "expected a ')' token"
MSG_OPERATOR = "expected a valid check operator: one of " + _listed(_CHECK_OPERATORS)
MSG_NUM_VALUE = "expected a number value or a field with a valid transformer: " + _listed(
    _TRANSFORMERS
)
MSG_STR_VALUE = "expected a string value or a field with a valid transformer: " + _listed(
    _TRANSFORMERS
)
MSG_LIST_VALUE = "expected a list, an identifier, or a field with a valid transformer: " + _listed(
    _TRANSFORMERS
)
MSG_MOD_LIST = "expected a list or an identifier"
MSG_LIST_ITEM = "expected a string value"
MSG_FIELD_ARG = "expected a valid field argument: a quoted string or a bare string"
MSG_FIELD_ARG_END = "expected a ']' token"
MSG_TRANSFORMER_ARG = (
    "expected field transformer argument: "
    "field, transformer, quoted string, number, or transformer list"
)
MSG_TRANSFORMER_END = "expected a ')' token closing the transformer"
MSG_TLIST_ARG = "expected transformer list argument: field, transformer, quoted string, or number"
MSG_TLIST_END = "expected ')'"
MSG_VAL_FIELD = "expected a field within 'val' transformer"
MSG_FORMAT_START = "unexpected token after '"


class ConditionSyntaxError(Exception):
    """A condition that libsinsp would reject while parsing.

    ``message`` is upstream's text (without position); ``pos`` is where upstream's cursor was.
    """

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


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
    return str(tok) if original is None else original[_start(tok) : _end(tok)]


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


def _start(tok: Token) -> int:
    return tok.start_pos  # type: ignore[return-value]


def _end(tok: Token) -> int:
    return tok.end_pos  # type: ignore[return-value]


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
        tok.value = _unquote(_raw(tok), _end(tok))
        return tok

    def FIRST_QUOTED(self, tok: Token) -> Token:
        # upstream swallows the first item's error, then needs ")" right after the quote
        value = _unquote(_raw(tok), _end(tok))
        tok.value = _BadToken(MSG_RPAREN, _end(tok)) if _failed_first_item(value) else value
        return tok

    def FIRST_QUOTED_CLOSE(self, tok: Token) -> Token:
        value = _unquote(_raw(tok), _end(tok))
        tok.value = _SWALLOWED if _failed_first_item(value) else value
        return tok

    def FIELDARG(self, tok: Token) -> Token:
        inner = _raw(tok)[1:-1]
        tok.value = _unquote(inner, _end(tok) - 1) if inner[0] in "\"'" else inner
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
        return run.outcome(MAX_DEPTH, _DepthReplay.CONDITION)  # type: ignore[return-value]
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
        node = run.outcome(FORMAT_MAX_DEPTH, _DepthReplay.FORMAT)
        return node, start + _end(run.tokens[-1])  # type: ignore[return-value]
    finally:
        _tls.original = None


def _reject_nul(text: str) -> None:
    nul = text.find("\0")
    if nul >= 0:  # upstream's C strings end there; its value parser rejects NUL bytes
        raise ConditionSyntaxError(NUL_MESSAGE, _pos_at(text, nul))


def _enter(text: str) -> str:
    """The text lark reads: lark counts lines at "\\n" only, upstream at "\\r" too."""
    if "\r" not in text:
        _tls.original = None
        return text
    _tls.original = text
    return text.replace("\r", "\n")


def _pos_at(text: str, idx: int) -> Pos:
    head = text[:idx]
    last = max(head.rfind("\n"), head.rfind("\r"))
    return Pos(idx, 1 + head.count("\n") + head.count("\r"), idx - last)


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
            self._stop(len(text) if exc.token.type == "$END" else _start(exc.token))
        except UnexpectedCharacters as exc:
            self._stop(exc.pos_in_stream)

    def _consume(self) -> None:
        for tok in self.ip.iter_parse():
            unquote = _TOKEN_CALLBACKS.get(tok.type)
            if unquote is not None:
                unquote(tok)
            value = tok.value
            if value.__class__ is _BadToken:
                error = ConditionSyntaxError(value.message, _pos_at(self.text, value.idx))
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
            if not (touching and _end(self.tokens[-1]) == at and "FIELDARG" in accepts):
                self.result = self.ip.feed_eof()
                return
        self.failed_at = len(self.text) if at is None else at

    def outcome(self, limit: int, mode: str) -> object:
        """The AST, or upstream's error: the depth limit if it is hit before the failure."""
        end = len(self.text) if self.failed_at is None else self.failed_at
        _check_depth(self.text, self.tokens, end, limit, mode)
        if self.escape_error is not None:
            raise self.escape_error
        if self.failed_at is not None:
            if self.start == "fot" and not self.tokens:
                raise ConditionSyntaxError(MSG_FORMAT_START, Pos())
            raise _syntax_error(self.text, self.tokens, self.ip.accepts(), self.failed_at)
        if self.nul_error is not None:
            raise self.nul_error
        return self.result


# ---- upstream's error messages ----

_QUOTED_RE = re.compile(r""""(?:[^"\x00]|(?<=\\)")*(?<!\\)"|'(?:[^'\x00]|(?<=\\)')*(?<!\\)'""")
_FIELD_ARG_BARE_RE = re.compile(r"[^\[\]\"' \t\n\x0b\x0c\r]+")
_BLANKS_RE = re.compile(r"[ \t\x08\r\n]*")
_OPENERS = frozenset(
    (
        "LPAR",
        "LIST_LPAR",
        "TLIST_LPAR",
        "TRANSFORMER_OPEN",
        "VAL_OPEN",
        "NOT_P",
        "NOTS_P",
        "_AND_P",
        "_OR_P",
    )
)


def _syntax_error(
    text: str, tokens: list[Token], accepts: set[str], at: int
) -> ConditionSyntaxError:
    """Upstream's message for a parse that cannot go on at ``at``, from what could go on there."""

    def error(message: str, idx: int = at) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, _pos_at(text, idx))

    prev = tokens[-1] if tokens else None
    touching = prev is not None and _end(prev) == at and text.startswith("[", at)
    if touching and "FIELDARG" in accepts:  # "[" right after a field: a bad argument
        return _field_arg_error(text, at)
    if "_OR_B" in accepts:  # after a complete check: "and"/"or", ")" or the end
        if "_AND_B" in accepts and text.startswith("and", at):
            return error("expected blank or '(' after 'and'", at + 3)
        if text.startswith("or", at):
            return error("expected blank or '(' after 'or'", at + 2)
        if "_RPAR" in accepts:
            return error(MSG_RPAREN)
        message = f"unexpected token after '{_last_token_text(prev)}', expecting 'or', 'and'"
        return error(message.partition("\0")[0])  # upstream's message is a C string
    return error(_context_message(accepts, tokens))


def _context_message(accepts: set[str], tokens: list[Token]) -> str:
    """Which upstream function failed, told apart by the terminals it could have taken."""
    if "LPAR" in accepts:  # only where a check may start
        return MSG_CHECK
    if "EXISTS" in accepts:
        return MSG_OPERATOR
    if "MODIFIER" in accepts:
        return MSG_STR_VALUE
    if "LIST_LPAR" in accepts:
        return MSG_LIST_VALUE if "VAL_OPEN" in accepts else MSG_MOD_LIST
    if "VAL_OPEN" in accepts:
        return MSG_NUM_VALUE
    if "FIRST_QUOTED" in accepts:  # upstream swallows the first item's error, then wants ")"
        return MSG_RPAREN
    if "TLIST_LPAR" in accepts:
        return MSG_TRANSFORMER_ARG
    if "FIELDNAME" in accepts:
        return MSG_TLIST_ARG if "HEXNUM" in accepts else MSG_VAL_FIELD
    if "BARESTR" in accepts:
        return MSG_LIST_ITEM
    opener = _innermost_opener(tokens)  # "," or ")" expected: whose ")"?
    if opener == "LIST_LPAR":
        return MSG_RPAREN
    if opener == "TLIST_LPAR":
        return MSG_TLIST_END
    return MSG_TRANSFORMER_END


def _innermost_opener(tokens: list[Token]) -> str | None:
    stack: list[str] = []
    for tok in tokens:
        if tok.type in _OPENERS:
            stack.append(tok.type)
        elif tok.type == "_RPAR" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _last_token_text(tok: Token | None) -> str:
    """Upstream's ``m_last_token``: the last lexed token, quoted strings already unescaped."""
    if tok is None:
        return ""
    if tok.type in ("FIELDARG", "LIST_LITERAL"):
        return "]" if tok.type == "FIELDARG" else ")"
    value = tok.value
    return value if value.__class__ is str else str(tok)


def _field_arg_error(text: str, at: int) -> ConditionSyntaxError:
    """Why ``[`` at ``at`` does not start a valid field argument (no blanks are skipped)."""
    inner = at + 1
    quoted = _QUOTED_RE.match(text, inner)
    if quoted is not None:
        try:
            unescape_str(quoted.group()[1:-1], quoted.group()[0])
        except NulByteError:
            pass  # upstream's parser takes it; the missing "]" is the error
        except EscapeError as exc:
            return ConditionSyntaxError(exc.message, _pos_at(text, quoted.end()))
        return ConditionSyntaxError(MSG_FIELD_ARG_END, _pos_at(text, quoted.end()))
    bare = _FIELD_ARG_BARE_RE.match(text, inner)
    if bare is None:
        return ConditionSyntaxError(MSG_FIELD_ARG, _pos_at(text, inner))
    return ConditionSyntaxError(MSG_FIELD_ARG_END, _pos_at(text, bare.end()))


# ---- upstream's recursion depth ----


class _DepthExceeded(Exception):
    def __init__(self, idx: int) -> None:
        self.idx = idx


def _check_depth(text: str, tokens: list[Token], end: int, limit: int, mode: str) -> None:
    """Raise upstream's max-depth error if its recursive descent would reach ``limit`` before
    ``end`` (where parsing stopped): the depth that counts is upstream's call depth, which
    depends on the spelling ("and(" nests less than "and ("), not on the AST."""
    try:
        _DepthReplay(limit, tokens, end, mode).run()
    except _DepthExceeded as exc:
        if exc.idx <= end:
            message = f"exceeded max depth limit of {limit}"
            raise ConditionSyntaxError(message, _pos_at(text, exc.idx)) from None
    except _FirstItemSwallowed as exc:
        if exc.idx <= end:
            raise ConditionSyntaxError(MSG_RPAREN, _pos_at(text, exc.idx)) from None


class _FirstItemSwallowed(Exception):
    """Upstream catches the depth error of a list's first item, then needs ")" there."""

    def __init__(self, idx: int) -> None:
        self.idx = idx


# the depth of parse_embedded_remainder, relative to parse_or, for each way to open a "("
_EMBEDDED = {"NOT_P": 3, "NOTS_P": 3, "LPAR": 4, "_AND_P": 2, "_OR_P": 1}


class _DepthReplay:
    """Replays which depth-guarded upstream function is entered at which cursor position.

    Frames: ``expr`` (base = depth of parse_or), ``check`` (base = parse_check; ``rhs`` once
    the operator is read), ``tr`` (parse_field_or_transformer_remainder), ``tlist`` (the
    argument holding a transformer list), ``list`` (parse_list_value*), ``val`` (the try_parse
    call), ``fot`` (parse_field_or_transformer).
    """

    CONDITION = "condition"
    FORMAT = "format"

    def __init__(self, limit: int, tokens: list[Token], end: int, mode: str) -> None:
        self.limit = limit
        self.tokens = tokens
        self.end = end
        self.mode = mode
        self.stack: list[list] = []  # [kind, base, rhs]
        self.prev_end = 0

    def run(self) -> None:
        tokens = self.tokens
        first = tokens[0] if tokens else None
        first_at = _start(first) if first else self.end
        if self.mode == self.FORMAT:
            self.enter(1, 0)
            self.stack.append(["fot", 1, False])
        else:
            self.enter(1, 0)  # parse_or at the very start, before any blank
            self.stack.append(["expr", 1, False])
            self.enter(2, first_at)
            self.operand(1, first_at, first.type if first else None)
        for i, tok in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            at = _start(nxt) if nxt else self.end
            if self.stack:
                self.step(tok, at, nxt.type if nxt else None)
            self.prev_end = _end(tok)

    def enter(self, depth: int, idx: int) -> None:
        if depth >= self.limit:
            raise _DepthExceeded(idx)

    def operand(self, e: int, at: int, typ: str | None) -> None:
        """parse_not, then parse_check unless "not " / "not(" come first."""
        self.enter(e + 2, at)
        if typ not in ("NOTS", "NOT_P", "NOTS_P"):
            self.enter(e + 3, at)

    def first_item(self, depth: int, at: int, empty: bool) -> None:
        """Upstream catches the first list item's errors, the depth error included."""
        if depth >= self.limit and not empty:
            raise _FirstItemSwallowed(at)  # (with ")" next, upstream just goes on)

    def open_expr(self, e: int, at: int, typ: str | None) -> None:
        self.stack.append(["expr", e, False])
        self.enter(e, at)
        self.enter(e + 1, at)
        self.operand(e, at, typ)

    def open_transformer(self, r: int, at: int) -> None:
        self.enter(r, at)
        self.stack.append(["tr", r, False])
        self.enter(r + 1, at)  # first argument, after the blanks

    def done(self) -> None:
        """Pop a finished frame; a finished right-hand side also finishes its check."""
        self.stack.pop()
        if self.stack and self.stack[-1][0] == "check" and self.stack[-1][2]:
            self.stack.pop()

    def step(self, tok: Token, at: int, nxt: str | None) -> None:
        frame = self.stack[-1]
        getattr(self, "step_" + frame[0])(frame, tok, at, nxt)

    def step_expr(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        e, typ, end = frame[1], tok.type, _end(tok)
        if typ == "NOTS":
            self.enter(e + 3, end)  # parse_check, right after the "not " run
        elif typ in _EMBEDDED:
            embedded = _EMBEDDED[typ]
            self.enter(e + embedded, end)
            self.open_expr(e + embedded + 1, at, nxt)
        elif typ == "_AND_B":
            self.operand(e, at, nxt)
        elif typ == "_OR_B":
            self.enter(e + 1, at)
            self.operand(e, at, nxt)
        elif typ == "_RPAR":
            self.stack.pop()
        elif typ == "FIELDNAME":
            self.enter(e + 4, end)
            self.stack.append(["check", e + 3, False])
        elif typ == "TRANSFORMER_OPEN":
            self.stack.append(["check", e + 3, False])
            self.open_transformer(e + 4, at)

    def step_check(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        c, typ, end = frame[1], tok.type, _end(tok)
        if typ == "FIELDARG":
            return
        if not frame[2]:  # the operator
            self.enter(c + 1, self.prev_end)  # parse_condition
            frame[2] = True
            if typ == "EXISTS":
                self.stack.pop()
            elif typ == "NUM_OP":
                self.enter(c + 2, end)
                self.enter(c + 3, at)  # try_parse_transformer_or_val
            elif typ == "STR_OP" and nxt != "MODIFIER":
                self.enter(c + 2, at)
                self.enter(c + 3, at)
            elif typ == "LIST_OP":
                self.enter(c + 2, end)
                if nxt not in ("LIST_LPAR", "LIST_LITERAL"):
                    self.enter(c + 3, at)
        elif typ == "MODIFIER":
            self.enter(c + 2, at)  # parse_list_value
        elif typ == "LIST_LPAR":
            self.stack.append(["list", c + 2, False])
            self.first_item(c + 3, at, nxt == "_RPAR")
        elif typ == "LIST_LITERAL":
            first = _BLANKS_RE.match(tok, 1).end()  # type: ignore[union-attr]  # "*" always matches
            self.first_item(c + 3, _start(tok) + first, tok[first] == ")")
            self.stack.pop()
        elif typ == "VAL_OPEN":
            self.stack.append(["val", c + 3, False])
        elif typ == "TRANSFORMER_OPEN":
            self.open_transformer(c + 4, at)
        else:
            self.stack.pop()  # a plain value ends the check

    def step_list(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "COMMA":
            self.enter(frame[1] + 1, _end(tok))
        elif tok.type == "_RPAR":
            self.done()

    def step_val(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "FIELDNAME":
            self.enter(frame[1] + 1, _end(tok))
        elif tok.type == "_RPAR":
            self.done()

    def step_tr(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        r, typ = frame[1], tok.type
        if typ == "COMMA":
            self.enter(r + 1, _end(tok))
        elif typ == "FIELDNAME":
            self.enter(r + 2, _end(tok))
        elif typ == "TRANSFORMER_OPEN":  # nested: entered before the blanks are skipped
            self.enter(r + 2, _end(tok))
            self.stack.append(["tr", r + 2, False])
            self.enter(r + 3, at)
        elif typ == "TLIST_LPAR":
            self.stack.append(["tlist", r + 1, False])
        elif typ == "_RPAR":
            self.done()

    def step_tlist(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        a, typ = frame[1], tok.type
        if typ == "FIELDNAME":
            self.enter(a + 1, _end(tok))
        elif typ == "TRANSFORMER_OPEN":
            self.open_transformer(a + 1, at)
        elif typ == "_RPAR":
            self.stack.pop()

    def step_fot(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "FIELDNAME":
            self.enter(2, _end(tok))
        elif tok.type == "TRANSFORMER_OPEN":
            self.open_transformer(2, at)
