"""Where a load message points: upstream's location chain (``rule_loader::context``) and snippets.

Falco reports every error and warning with a chain of locations (the file, then the item, then
the key or the condition expression) and a one-line snippet of the text with a caret. Positions
are kept here as 1-based line/column and 0-based offset; ``report.py`` prints them the way Falco
does (YAML marks 0-based, condition-expression positions 1-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from falconet.ruleset.results import ErrorCode, LoadMessage, Location, WarningCode

# Upstream's item type names (``item_type_strings`` in rule_loader.cpp).
VALUE_FOR = "value for"
EXCEPTIONS = "exceptions"
EXCEPTION = "exception"
EXCEPTION_VALUES = "exception values"
EXCEPTION_VALUE = "exception value"
RULES_CONTENT = "rules content"
RULES_CONTENT_ITEM = "rules content item"
REQUIRED_ENGINE_VERSION = "required_engine_version"
REQUIRED_PLUGIN_VERSIONS = "required plugin versions"
REQUIRED_PLUGIN_VERSIONS_ENTRY = "required plugin versions entry"
REQUIRED_PLUGIN_VERSIONS_ALTERNATIVE = "required plugin versions alternative"
LIST = "list"
LIST_ITEM = "list item"
MACRO = "macro"
MACRO_CONDITION = "macro condition"
RULE = "rule"
RULE_CONDITION = "rule condition"
CONDITION_EXPRESSION = "condition expression"
RULE_OUTPUT = "rule output"
RULE_OUTPUT_EXPRESSION = "rule output expression"
RULE_PRIORITY = "rule priority"
OVERRIDE = "overrides"
EXTENSION_ITEM = "extension item"

SNIPPET_WIDTH = 160
_SIZE_T = 1 << 64  # the snippet arithmetic is upstream's size_t arithmetic, wrap-arounds included


@dataclass(frozen=True, slots=True)
class Ctx:
    """An immutable location chain; ``alt`` is the text a condition-expression snippet is cut
    from (the condition as the parser saw it) and ``alt_pos`` the caret position in it."""

    locs: tuple[Location, ...]
    alt: str | None = None
    alt_pos: int = 0

    @classmethod
    def root(cls, name: str) -> Ctx:
        """The whole document: every chain starts here (upstream's position 0:0)."""
        return cls((Location(name, 1, 1, 0, RULES_CONTENT, ""),))

    @property
    def name(self) -> str:
        """The content (file) name: the first location's."""
        return self.locs[0].name

    @property
    def last(self) -> Location:
        return self.locs[-1]

    def parent(self) -> Ctx:
        return Ctx(self.locs[:-1]) if len(self.locs) > 1 else self

    def at(self, node: Any, item_type: str, item_name: str = "") -> Ctx:
        """A child location at a YAML node's start mark."""
        mark = node.start_mark
        return self.at_mark(mark.line, mark.column, mark.index, item_type, item_name)

    def at_mark(self, line0: int, col0: int, index: int, item_type: str = VALUE_FOR,
                item_name: str = "") -> Ctx:
        loc = Location(self.name, line0 + 1, col0 + 1, index, item_type, item_name)
        return Ctx((*self.locs, loc))

    def in_condition(self, condition: str, idx: int, line: int, col: int, offset: int) -> Ctx:
        """A condition-expression location: named after the condition's first characters, as
        upstream does, placed at (line, col, offset) in the file, caret at ``idx`` of
        ``condition``."""
        label = condition[:17] + '..."' if len(condition) > 20 else condition + '"'
        label = ('"' + label).replace("\n", " ").replace("\r", " ")
        loc = Location(label, line, col, offset, CONDITION_EXPRESSION, "")
        return Ctx((*self.locs, loc), condition, idx)


class LoadError(Exception):
    """Raised inside the reader, collector and compiler; becomes one error of the result (the
    first error stops the load of a file, as upstream's ``rule_load_exception``)."""

    def __init__(self, code: ErrorCode, message: str, ctx: Ctx) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ctx = ctx


def snippet(content: str, pos: int, width: int = SNIPPET_WIDTH) -> str:
    """The line of ``content`` around ``pos`` (at most width/2 characters each way, cut ends
    marked ``...``) and a caret line, exactly as ``rule_loader::context::snippet``."""
    if not content:
        return "<No context available>\n"
    n = len(content)
    half = width // 2
    while pos > 0 and (pos >= n or content[pos] == "\n"):
        pos -= 1
    frm = pos
    while frm > 0 and content[frm] != "\n" and (pos - frm) < half:
        frm -= 1
    to = pos
    while to < n - 1 and content[to] != "\n" and (to - pos) < half:
        to += 1
    if frm < n and content[frm] == "\n":
        frm += 1
    if to < n and content[to] == "\n":
        to -= 1
    count = (to - frm + 1) % _SIZE_T
    ret = content[frm : frm + count]
    if not ret:
        return "<No context available>\n"
    before = (pos - frm) % _SIZE_T
    if before >= half:
        ret = "..." + ret[3:]
    if (to - pos) % _SIZE_T >= half:
        ret = ret[: max(len(ret) - 3, 0)] + "..."
    ret += "\n"
    if before <= len(ret) - 1:
        ret += " " * before + "^\n"
    return ret


def ctx_snippet(ctx: Ctx, contents: dict[str, str]) -> str:
    """The snippet for a context: from the condition text for condition expressions, else from
    the rules content the last location names."""
    if ctx.alt:
        return snippet(ctx.alt, ctx.alt_pos)
    content = contents.get(ctx.last.name)
    if content is None:
        return f"<No context for file + {ctx.last.name}>\n"
    return snippet(content, ctx.last.offset)


def make_message(code: ErrorCode | WarningCode, message: str, ctx: Ctx,
                 contents: dict[str, str], deprecated_field: str | None = None) -> LoadMessage:
    return LoadMessage(code, message, list(ctx.locs), ctx_snippet(ctx, contents),
                       deprecated_field)
