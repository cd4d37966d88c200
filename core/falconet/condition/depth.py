"""Replay of libsinsp's recursion-depth limit over the tokens of a parse.

Upstream's parser is recursive descent and fails with ``exceeded max depth limit of N`` when its
call depth reaches N. That depth depends on the spelling (``and(`` nests less than ``and (``),
not on the AST, so the LALR parser cannot see it: this module replays which depth-guarded
upstream function is entered at which cursor position, from the tokens the parser accepted.
Only the slow path in ``parser.py`` runs it (on errors, or text with many ``(``).
"""

from __future__ import annotations

import re

from lark import Token

from falconet.condition.parse_errors import (
    MSG_RPAREN,
    ConditionSyntaxError,
    pos_at,
    token_end,
    token_start,
)

CONDITION = "condition"
"""Replay mode for a whole condition (``parse``)."""
FORMAT = "format"
"""Replay mode for one output format token (``parse_field_or_transformer``)."""

_BLANKS_RE = re.compile(r"[ \t\x08\r\n]*")


class _DepthExceeded(Exception):
    def __init__(self, idx: int) -> None:
        self.idx = idx


def check_depth(text: str, tokens: list[Token], end: int, limit: int, mode: str) -> None:
    """Raise upstream's max-depth error if its recursive descent would reach ``limit`` before
    ``end`` (where parsing stopped): the depth that counts is upstream's call depth, which
    depends on the spelling ("and(" nests less than "and ("), not on the AST."""
    try:
        _DepthReplay(limit, tokens, end, mode).run()
    except _DepthExceeded as exc:
        if exc.idx <= end:
            message = f"exceeded max depth limit of {limit}"
            raise ConditionSyntaxError(message, pos_at(text, exc.idx)) from None
    except _FirstItemSwallowed as exc:
        if exc.idx <= end:
            raise ConditionSyntaxError(MSG_RPAREN, pos_at(text, exc.idx)) from None


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
        first_at = token_start(first) if first else self.end
        if self.mode == FORMAT:
            self.enter(1, 0)
            self.stack.append(["fot", 1, False])
        else:
            self.enter(1, 0)  # parse_or at the very start, before any blank
            self.stack.append(["expr", 1, False])
            self.enter(2, first_at)
            self.operand(1, first_at, first.type if first else None)
        for i, tok in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            at = token_start(nxt) if nxt else self.end
            if self.stack:
                self.step(tok, at, nxt.type if nxt else None)
            self.prev_end = token_end(tok)

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
        e, typ, end = frame[1], tok.type, token_end(tok)
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
        c, typ, end = frame[1], tok.type, token_end(tok)
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
            self.first_item(c + 3, token_start(tok) + first, tok[first] == ")")
            self.stack.pop()
        elif typ == "VAL_OPEN":
            self.stack.append(["val", c + 3, False])
        elif typ == "TRANSFORMER_OPEN":
            self.open_transformer(c + 4, at)
        else:
            self.stack.pop()  # a plain value ends the check

    def step_list(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "COMMA":
            self.enter(frame[1] + 1, token_end(tok))
        elif tok.type == "_RPAR":
            self.done()

    def step_val(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "FIELDNAME":
            self.enter(frame[1] + 1, token_end(tok))
        elif tok.type == "_RPAR":
            self.done()

    def step_tr(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        r, typ = frame[1], tok.type
        if typ == "COMMA":
            self.enter(r + 1, token_end(tok))
        elif typ == "FIELDNAME":
            self.enter(r + 2, token_end(tok))
        elif typ == "TRANSFORMER_OPEN":  # nested: entered before the blanks are skipped
            self.enter(r + 2, token_end(tok))
            self.stack.append(["tr", r + 2, False])
            self.enter(r + 3, at)
        elif typ == "TLIST_LPAR":
            self.stack.append(["tlist", r + 1, False])
        elif typ == "_RPAR":
            self.done()

    def step_tlist(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        a, typ = frame[1], tok.type
        if typ == "FIELDNAME":
            self.enter(a + 1, token_end(tok))
        elif typ == "TRANSFORMER_OPEN":
            self.open_transformer(a + 1, at)
        elif typ == "_RPAR":
            self.stack.pop()

    def step_fot(self, frame: list, tok: Token, at: int, nxt: str | None) -> None:
        if tok.type == "FIELDNAME":
            self.enter(2, token_end(tok))
        elif tok.type == "TRANSFORMER_OPEN":
            self.open_transformer(2, at)
