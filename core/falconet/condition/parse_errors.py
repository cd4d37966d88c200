"""Upstream's syntax errors: the exception, its message texts, and where it is reported.

libsinsp's recursive-descent parser fails inside a specific function, and its message names what
that function expected; the LALR parser (``parser.py``) only knows where it stopped and which
terminals it could have taken there. This module maps the latter to the former, and computes
positions the way upstream's cursor counts them (``idx`` 0-based, ``line`` and ``col`` 1-based,
where both ``\\r`` and ``\\n`` start a new line). It is kept apart from ``parser.py`` so that
the parser holds the grammar's callbacks and the parse itself, and this module holds everything
that only exists to reproduce upstream's error texts.
"""

from __future__ import annotations

import re

from lark import Token

from falconet.condition.ast import Pos
from falconet.condition.escaping import EscapeError, NulByteError, unescape_str

# ---- upstream's message texts ----

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
    Part of the public API of ``falconet.condition.parser``, which re-exports it.
    """

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


# ---- positions ----


# lark types a token's offsets as optional; a lexed token always has them
def token_start(tok: Token) -> int:
    return tok.start_pos  # type: ignore[return-value]


def token_end(tok: Token) -> int:
    return tok.end_pos  # type: ignore[return-value]


def pos_at(text: str, idx: int) -> Pos:
    """Upstream's cursor position at offset ``idx`` of ``text``."""
    head = text[:idx]
    last = max(head.rfind("\n"), head.rfind("\r"))
    return Pos(idx, 1 + head.count("\n") + head.count("\r"), idx - last)


# ---- which message, from where the LALR parse stopped ----

_QUOTED_RE = re.compile(r""""(?:[^"\x00]|(?<=\\)")*(?<!\\)"|'(?:[^'\x00]|(?<=\\)')*(?<!\\)'""")
_FIELD_ARG_BARE_RE = re.compile(r"[^\[\]\"' \t\n\x0b\x0c\r]+")
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


def syntax_error(
    text: str, tokens: list[Token], accepts: set[str], at: int
) -> ConditionSyntaxError:
    """Upstream's message for a parse that cannot go on at ``at``, from what could go on there."""

    def error(message: str, idx: int = at) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, pos_at(text, idx))

    prev = tokens[-1] if tokens else None
    touching = prev is not None and token_end(prev) == at and text.startswith("[", at)
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
            return ConditionSyntaxError(exc.message, pos_at(text, quoted.end()))
        return ConditionSyntaxError(MSG_FIELD_ARG_END, pos_at(text, quoted.end()))
    bare = _FIELD_ARG_BARE_RE.match(text, inner)
    if bare is None:
        return ConditionSyntaxError(MSG_FIELD_ARG, pos_at(text, inner))
    return ConditionSyntaxError(MSG_FIELD_ARG_END, pos_at(text, bare.end()))
