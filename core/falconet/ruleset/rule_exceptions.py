"""Rule ``exceptions:``: their shape checks and the condition text they compile to.

Upstream validates exceptions when a rule is collected (``validate_exception_info``: default
comps, operator and field checks) and turns them into condition text when it is compiled
(``build_rule_exception_infos``). The text is parsed afterwards like any condition, so quoting
and parenthesizing here decide how values are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from falconet.ruleset.context import Ctx, LoadError
from falconet.ruleset.results import ErrorCode

# libsinsp's parser::supported_operators(): unary, numeric, string, then list operators.
SUPPORTED_OPERATORS = frozenset({
    "exists", "<=", "<", ">=", ">", "==", "=", "!=", "glob", "iglob", "contains", "icontains",
    "bcontains", "startswith", "bstartswith", "endswith", "regex", "intersects", "in", "pmatch",
})
LIST_OPERATORS = frozenset({"intersects", "in", "pmatch"})
# Base operators that take a oneof/anyof/allof modifier (cmpop_supports_modifier).
_MODIFIABLE = frozenset({"=", "==", "!=", "contains", "icontains", "bcontains", "startswith",
                         "bstartswith", "endswith", "glob", "iglob", "regex"})
_MODIFIERS = frozenset({"oneof", "anyof", "allof"})


@dataclass(slots=True)
class Entry:
    """A fields/comps/values entry: a scalar or a (nested) list, as upstream's ``entry``."""

    is_list: bool = False
    item: str = ""
    items: list[Entry] = field(default_factory=list)

    def is_valid(self) -> bool:
        return bool(self.items) if self.is_list else bool(self.item)


@dataclass(slots=True)
class ExceptionInfo:
    ctx: Ctx
    name: str
    fields: Entry = field(default_factory=Entry)
    comps: Entry = field(default_factory=Entry)
    values: list[Entry] = field(default_factory=list)


def is_str_operator_with_modifier(op: str) -> bool:
    """``startswith oneof`` and friends (a string operator, one blank, a modifier)."""
    base, blank, mod = op.partition(" ")
    return bool(blank) and base in _MODIFIABLE and mod in _MODIFIERS


def is_operator_for_list(op: str) -> bool:
    """Operators whose right-hand side is a parenthesized list."""
    return op in LIST_OPERATORS or is_str_operator_with_modifier(op)


def _normalize_comp(text: str) -> str:
    return text.strip(" \t\r\n")


def _fail(message: str, ctx: Ctx) -> LoadError:
    return LoadError(ErrorCode.LOAD_ERR_VALIDATE, message, ctx)


def validate_exception_info(ex: ExceptionInfo, valid_field: Callable[[str], bool] | None) -> None:
    """Fill default comps and check operators and fields (``valid_field`` is None when the
    rule's source is unknown: fields are not checked then). Raises LoadError."""
    if ex.fields.is_list:
        if not ex.comps.is_valid():
            ex.comps.is_list = True
            ex.comps.items.extend(Entry(item="=") for _ in ex.fields.items)
        if len(ex.fields.items) != len(ex.comps.items):
            raise _fail("Fields and comps lists must have equal length", ex.ctx)
        for comp in ex.comps.items:
            comp.item = _normalize_comp(comp.item)
            if comp.item not in SUPPORTED_OPERATORS and not is_str_operator_with_modifier(
                comp.item
            ):
                raise _fail(f"'{comp.item}' is not a supported comparison operator", ex.ctx)
        if valid_field is not None:
            for f in ex.fields.items:
                if not valid_field(f.item):
                    raise _fail(f"'{f.item}' is not a supported filter field", ex.ctx)
        return
    if not ex.comps.is_valid():
        ex.comps.is_list = False
        ex.comps.item = "in"
    if ex.comps.is_list:
        raise _fail("Fields and comps must both be strings", ex.ctx)
    ex.comps.item = _normalize_comp(ex.comps.item)
    if ex.comps.item not in LIST_OPERATORS and not is_str_operator_with_modifier(ex.comps.item):
        raise _fail(
            "When fields is a single value, comps must be one of (in, pmatch, intersects) or a "
            "modifier operator (e.g. startswith oneof)",
            ex.ctx,
        )
    if valid_field is not None and not valid_field(ex.fields.item):
        raise _fail(f"'{ex.fields.item}' is not a supported filter field", ex.ctx)


def quote_item(text: str) -> str:
    """Wrap in double quotes a value holding a blank that is not already quoted (upstream does
    not escape inner quotes)."""
    if " " in text and text[:1] not in ('"', "'"):
        return '"' + text + '"'
    return text


def _paren_item(text: str) -> str:
    return text if text[:1] == "(" else "(" + text + ")"


def build_exceptions_condition(
    condition: str, exceptions: list[ExceptionInfo]
) -> tuple[str, list[str], list[tuple[int, ExceptionInfo]]]:
    """``(condition) and not (...)...``: the text, the exception fields (sorted, as upstream's
    set) and where each exception's text starts (to place errors). Raises LoadError."""
    fields: set[str] = set()
    starts: list[tuple[int, ExceptionInfo]] = []
    out = "(" + condition + ")"
    for ex in exceptions:
        icond = _scalar_fields(ex, fields) if not ex.fields.is_list else _list_fields(ex, fields)
        if icond:
            out += " and not "
            starts.append((len(out), ex))
            out += icond
    return out, sorted(fields), starts


def _scalar_fields(ex: ExceptionInfo, fields: set[str]) -> str:
    icond = ""
    for val in ex.values:
        if val.is_list:
            raise _fail("Expected values array to contain a list of strings", ex.ctx)
        icond += f"({ex.fields.item} {ex.comps.item} (" if not icond else ", "
        fields.add(ex.fields.item)
        icond += quote_item(val.item)
    return icond + "))" if icond else ""


def _list_fields(ex: ExceptionInfo, fields: set[str]) -> str:
    icond = "("
    comps = ex.comps.items
    for values in ex.values:
        if len(ex.fields.items) != len(values.items):
            raise _fail("Fields and values lists must have equal length", ex.ctx)
        icond += "" if icond == "(" else " or "
        icond += "("
        for k, f in enumerate(ex.fields.items):
            # replaced exceptions skip validation: a missing comp is empty (upstream reads
            # past the end of its vector here)
            comp = comps[k].item if k < len(comps) else ""
            icond += "" if k == 0 else " and "
            value = values.items[k]
            if value.is_list:
                istr = "("
                for v in value.items:
                    istr += "" if istr == "(" else ", "
                    istr += quote_item(v.item)
                istr += ")"
            elif is_operator_for_list(comp):
                istr = _paren_item(value.item)
            else:
                istr = quote_item(value.item)
            icond += f" {f.item} {comp} {istr}"
            fields.add(f.item)
        icond += ")"
    icond += ")"
    return "" if icond == "()" else icond


def exception_operators(exceptions: list[ExceptionInfo]) -> list[str]:
    """The comps used, for ``-L`` details (two levels of lists, as upstream)."""
    ops: set[str] = set()
    for ex in exceptions:
        if ex.comps.is_list:
            for c in ex.comps.items:
                if c.is_list:
                    ops.update(i.item for i in c.items)
                else:
                    ops.add(c.item)
        else:
            ops.add(ex.comps.item)
    return sorted(ops)
