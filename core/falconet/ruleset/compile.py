"""The compiler: collected definitions -> compiled lists, macros and rules (upstream's
``rule_loader_compiler.cpp``).

Order: lists (one level of list-in-list expansion, with visibility), then macros (every macro
condition list-substituted and parsed, then macro references resolved with visibility), then
rules (exceptions, output check, condition parse + macro resolution with every macro visible,
warning checks, field/operator compilation, event types). Any error aborts the whole compile.
Parse results are cached by text: each file load recompiles everything collected so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falconet.condition import ast as A
from falconet.ruleset import context as C
from falconet.ruleset.collector import Collector, CondPiece, RuleInfo
from falconet.ruleset.condition_checks import (
    DEPRECATED_FIELDS,
    deprecated_fields_in_output,
    warning_checks,
)
from falconet.ruleset.context import Ctx, LoadError
from falconet.ruleset.language import Language
from falconet.ruleset.model import CompiledList, CompiledMacro, CompiledRule
from falconet.ruleset.results import ErrorCode, WarningCode
from falconet.ruleset.rule_exceptions import build_exceptions_condition, exception_operators
from falconet.ruleset.substitute import Edit, ListSub, ListTable, MacroResolver, unmap
from falconet.ruleset.yaml_source import line_col

CONTAINER_INFO = "%container.info"
_UNKNOWN_MARKERS = ("nonexistent field", "invalid formatting token", "unknown event type",
                    "unknown filter:")
_ITEM_CONDITIONS = (C.RULE_CONDITION, C.MACRO_CONDITION)

#: (code, message, ctx, deprecated field or None)
Warn = Callable[[WarningCode, str, Ctx, "str | None"], None]


def _is_unknown_field_error(err: str) -> bool:
    return any(m in err for m in _UNKNOWN_MARKERS)


@dataclass(slots=True)
class _Parsed:
    """A condition as the parser saw it and how to trace positions back to the YAML."""

    written: str  # before list substitution (upstream's alt content for macro/compile messages)
    text: str  # after list substitution (what was parsed)
    edits: list[Edit]
    pieces: list[CondPiece]
    fallback: Ctx
    ast: A.Expr
    lists: list[str]


@dataclass(slots=True)
class CompileOutput:
    lists: dict[str, CompiledList] = field(default_factory=dict)
    macros: dict[str, CompiledMacro] = field(default_factory=dict)
    rules: list[CompiledRule] = field(default_factory=list)


class Compiler:
    """Compiles a collector's content; keeps parse caches across compiles of one loader."""

    def __init__(self, engine: Language) -> None:
        self.engine = engine
        self._parse_cache: dict[str, A.Expr] = {}
        self._subst_cache: dict[tuple[str, int], tuple[str, list[str], list[Edit]]] = {}
        self._check_cache: dict[tuple[str, A.Expr], tuple[Any, Any, bool, str]] = {}
        self._check_by_id: dict[tuple[str, int], tuple[A.Expr, Any]] = {}
        self._resolve_cache: dict[tuple[int, str], Any] = {}
        self._lint_cache: dict[int, tuple[A.Expr, bool, list[str]]] = {}
        self._list_subs: dict[tuple[str, tuple[str, ...]], ListSub] = {}

    # --- positions ----------------------------------------------------------------------------

    def locate(self, parsed: _Parsed, alt: str, alt_idx: int, written_idx: int, *,
               item_level: bool = False) -> Ctx:
        """A condition-expression context at ``written_idx`` of the written condition, with the
        snippet cut from ``alt`` at ``alt_idx``."""
        piece = None
        for p in parsed.pieces:
            if p.start <= written_idx:
                piece = p
        base = piece.ctx if piece is not None else parsed.fallback
        last = base.last
        line, col, offset = last.line, last.column, last.offset
        if piece is not None and piece.anchor is not None:
            offset = piece.anchor.offset(written_idx - piece.start)
            line, col = line_col(piece.anchor.content, offset)
        if item_level and base.last.item_type in _ITEM_CONDITIONS:
            base = base.parent()
        return base.in_condition(alt, alt_idx, line, col, offset)

    # --- parsing ------------------------------------------------------------------------------

    def parse_condition(self, written: str, pieces: list[CondPiece], fallback: Ctx,
                        lists: ListTable, lists_key: int,
                        compiled_lists: dict[str, CompiledList]) -> _Parsed:
        """List substitution then parsing; a syntax error is LOAD_ERR_COMPILE_CONDITION."""
        key = (written, lists_key)
        hit = self._subst_cache.get(key)
        if hit is None:
            hit = lists.resolve(written)
            self._subst_cache[key] = hit
        text, used, edits = hit
        for name in used:
            compiled_lists[name].used = True
        tree = self._parse_cache.get(text)
        if tree is None:
            try:
                tree = self.engine.parse(text)
            except self.engine.syntax_error as exc:
                pos = exc.pos
                idx = pos.idx if pos is not None else 0
                partial = _Parsed(written, text, edits, pieces, fallback, A.Identifier(""), used)
                raise LoadError(ErrorCode.LOAD_ERR_COMPILE_CONDITION, exc.message,
                                self.locate(partial, text, idx, unmap(idx, edits))) from None
            self._parse_cache[text] = tree
        return _Parsed(written, text, edits, pieces, fallback, tree, used)

    def resolve_macros(self, parsed: _Parsed, lookup: Callable[[str], A.Expr | None],
                       compiled_macros: dict[str, CompiledMacro],
                       owner: str) -> tuple[A.Expr, list[str]]:
        """Substitute macro references; "Undefined macro" and loops are LOAD_ERR_VALIDATE.

        Memoized per (parsed tree, owner) and validated by the lookups it made: when every
        macro it looked up resolves to the same object again, the result is reused, so
        recompiles hand out identical trees and the type-check cache hits by identity."""
        key = (id(parsed.ast), owner)
        hit = self._resolve_cache.get(key)
        if hit is not None and hit[0] is parsed.ast and all(
            lookup(name) is obj for name, obj in hit[3]
        ):
            tree, resolved = hit[1], hit[2]
        else:
            deps: list[tuple[str, A.Expr | None]] = []

            def tracked(name: str) -> A.Expr | None:
                found = lookup(name)
                deps.append((name, found))
                return found

            resolver = MacroResolver(tracked)
            tree = resolver.run(parsed.ast)
            if resolver.errors or resolver.unknown:
                if resolver.errors:
                    msg, pos = resolver.errors[0]
                else:
                    name, pos = resolver.unknown[0]
                    msg = f"Undefined macro '{name}' used in filter."
                written_idx = unmap(pos.idx, parsed.edits)
                raise LoadError(ErrorCode.LOAD_ERR_VALIDATE, msg,
                                self.locate(parsed, parsed.written, written_idx, written_idx,
                                            item_level=True))
            resolved = list(dict.fromkeys(name for name, _ in resolver.resolved))
            self._resolve_cache[key] = (parsed.ast, tree, resolved, tuple(deps))
        for name in resolved:
            compiled_macros[name].used = True
        return tree, resolved

    # --- the three phases ---------------------------------------------------------------------

    def compile(self, col: Collector, warn: Warn) -> CompileOutput:
        out = CompileOutput()
        self._compile_lists(col, out)
        subs = []
        for li in out.lists.values():
            key = (li.name, tuple(li.items_compiled))
            sub = self._list_subs.get(key)
            if sub is None:
                sub = self._list_subs[key] = ListSub.of(li.name, li.items_compiled)
            subs.append(sub)
        list_items = ListTable(subs)
        lists_key = hash(tuple(id(sub) for sub in subs))
        macro_asts = self._compile_macros(col, out, list_items, lists_key)
        for info in col.rules.values():
            if info.unknown_source:
                continue
            rule = self._compile_rule(info, col, out, list_items, lists_key, macro_asts, warn)
            if rule is not None:
                out.rules.append(rule)
        for m in out.macros.values():
            if not m.used:
                warn(WarningCode.LOAD_UNUSED_MACRO, "Macro not referred to by any other rule/macro",
                     col.macros[m.name].ctx, None)
        for li in out.lists.values():
            if not li.used:
                warn(WarningCode.LOAD_UNUSED_LIST, "List not referred to by any other rule/macro",
                     col.lists[li.name].ctx, None)
        return out

    def _compile_lists(self, col: Collector, out: CompileOutput) -> None:
        used_names: list[str] = []
        for info in col.lists.values():
            items: list[str] = []
            refs: list[str] = []
            for item in info.items:
                ref = col.lists.get(item)
                if ref is not None and ref.index < info.visibility:
                    used_names.append(ref.name)
                    refs.append(ref.name)
                    items.extend(ref.items)
                else:
                    items.append(item)
            out.lists[info.name] = CompiledList(info.name, list(info.items), items, False, refs)
        for name in used_names:
            out.lists[name].used = True

    def _compile_macros(self, col: Collector, out: CompileOutput,
                        list_items: ListTable,
                        lists_key: int) -> dict[str, A.Expr]:
        parsed: dict[str, _Parsed] = {}
        for info in col.macros.values():
            p = self.parse_condition(info.cond, info.pieces, info.cond_ctx, list_items, lists_key,
                                     out.lists)
            parsed[info.name] = p
            out.macros[info.name] = CompiledMacro(info.name, info.cond, p.ast, False,
                                                  lists=list(p.lists))
        # resolved in place, in order: a macro sees the current state of the visible ones
        asts = {name: p.ast for name, p in parsed.items()}
        for name, p in parsed.items():
            visibility = col.macros[name].visibility

            def lookup(ref: str, visibility: int = visibility) -> A.Expr | None:
                ref_info = col.macros.get(ref)
                if ref_info is None or ref_info.index >= visibility:
                    return None
                return asts[ref]

            tree, names = self.resolve_macros(p, lookup, out.macros, "macro " + name)
            asts[name] = tree
            out.macros[name].ast = tree
            out.macros[name].macros = names
        return asts

    def _compile_rule(self, info: RuleInfo, col: Collector, out: CompileOutput,
                      list_items: ListTable, lists_key: int,
                      macro_asts: dict[str, A.Expr], warn: Warn) -> CompiledRule | None:
        table = self.engine.table(info.source)
        condition = info.cond
        pieces = info.pieces
        exception_fields: list[str] = []
        if info.exceptions:
            condition, exception_fields, starts = build_exceptions_condition(info.cond,
                                                                             info.exceptions)
            pieces = [CondPiece(p.start + 1, p.ctx, p.anchor) for p in info.pieces]
            pieces += [CondPiece(start, ex.ctx) for start, ex in starts]
        output = info.output
        if CONTAINER_INFO in output:
            warn(WarningCode.LOAD_DEPRECATED_ITEM,
                 "%container.info is deprecated and no more useful, and will be dropped by Falco "
                 "1.0.0. The container plugin will automatically add required fields to the "
                 "output message.", info.ctx, None)
            output = output.replace(CONTAINER_INFO, "")
        err = self.engine.output_error(output, table)
        if err is not None:
            if info.skip_if_unknown_filter and _is_unknown_field_error(err):
                warn(WarningCode.LOAD_UNKNOWN_FILTER, err, info.output_ctx, None)
                return None
            raise LoadError(ErrorCode.LOAD_ERR_COMPILE_OUTPUT, err, info.output_ctx)
        for df in deprecated_fields_in_output(output):
            warn(WarningCode.LOAD_DEPRECATED_ITEM,
                 f"usage of deprecated field '{df}' has been detected in the rule output",
                 info.output_ctx, df)
        parsed = self.parse_condition(condition, pieces, info.cond_ctx, list_items, lists_key,
                                      out.lists)
        tree, macro_names = self.resolve_macros(parsed, macro_asts.get, out.macros,
                                                "rule " + info.name)
        lint = self._lint_cache.get(id(tree))
        if lint is None or lint[0] is not tree:
            lint = self._lint_cache[id(tree)] = (tree, *warning_checks(tree))
        _, na_check, deprecated = lint
        if na_check or deprecated:
            ctx0 = self.locate(parsed, condition, 0, 0)
            if na_check:
                warn(WarningCode.LOAD_UNSAFE_NA_CHECK, "", ctx0, None)
            for df in deprecated:
                warn(WarningCode.LOAD_DEPRECATED_ITEM, DEPRECATED_FIELDS[df], ctx0, df)
        try:
            checked, event_types, too_many, compiled = self._check(tree, info.source, table)
        except self.engine.compile_error as exc:
            ctx = self._node_ctx(parsed, exc.pos, macro_asts)
            if info.skip_if_unknown_filter and _is_unknown_field_error(exc.message):
                warn(WarningCode.LOAD_UNKNOWN_FILTER, exc.message, ctx, None)
                return None
            raise LoadError(ErrorCode.LOAD_ERR_COMPILE_CONDITION, exc.message, ctx) from None
        for w in getattr(checked, "warnings", ()):
            warn(WarningCode.LOAD_COMPILE_CONDITION, w.message,
                 self._node_ctx(parsed, w.pos, macro_asts), None)
        if info.source == "syscall":
            if isinstance(event_types, Exception):
                raise LoadError(ErrorCode.LOAD_ERR_COMPILE_CONDITION, str(event_types),
                                info.ctx) from None
            if too_many and info.warn_evttypes:
                warn(WarningCode.LOAD_NO_EVTTYPE, "Rule matches too many evt.type values. This "
                     "has a significant performance penalty.", info.ctx, None)
        return CompiledRule(
            name=info.name, index=info.index, source=info.source, desc=info.desc,
            condition=info.cond, condition_compiled=compiled, ast=tree, checked=checked,
            output=output, priority=info.priority, tags=frozenset(info.tags),
            enabled=info.enabled, capture=info.capture, capture_duration=info.capture_duration,
            warn_evttypes=info.warn_evttypes, skip_if_unknown_filter=info.skip_if_unknown_filter,
            exception_names=[ex.name for ex in info.exceptions],
            exception_fields=exception_fields,
            exception_operators=exception_operators(info.exceptions),
            event_types=event_types, macros=macro_names, lists=list(parsed.lists),
        )

    def _check(self, tree: A.Expr, source: str, table: Any) -> tuple[Any, Any, bool, str]:
        """Type-check and infer event types; cached by the (structurally compared) resolved
        tree, since every load recompiles the rules of the earlier files."""
        by_id = self._check_by_id.get((source, id(tree)))
        if by_id is not None and by_id[0] is tree:
            return by_id[1]
        key = (source, tree)
        hit = self._check_cache.get(key)
        if hit is not None:
            self._check_by_id[(source, id(tree))] = (tree, hit)
            return hit
        checked = self.engine.check(tree, table)
        event_types: Any = None
        too_many = False
        if source == "syscall":
            try:
                event_types, too_many = self.engine.event_types(tree)
            except self.engine.event_type_error as exc:
                event_types = exc
        hit = (checked, event_types, too_many, A.as_string(tree))
        self._check_cache[key] = hit
        self._check_by_id[(source, id(tree))] = (tree, hit)
        return hit

    def _node_ctx(self, parsed: _Parsed, pos: Any, macro_asts: dict[str, A.Expr]) -> Ctx:
        """Where a compiler message about the node at ``pos`` points: into the written rule
        condition, or, for a node that came from a macro, at that macro's reference."""
        written = parsed.written
        if pos is None:
            return self.locate(parsed, written, 0, 0)
        ref = _macro_reference(parsed.ast, pos, macro_asts)
        idx = ref.idx if ref is not None else pos.idx
        written_idx = unmap(idx, parsed.edits)
        return self.locate(parsed, written, written_idx, written_idx)


def _macro_reference(tree: A.Expr, pos: Any, macro_asts: dict[str, A.Expr]) -> A.Pos | None:
    """If ``pos`` (by identity) belongs to a node of a macro referenced by ``tree``, the position
    of that reference; None if it is the rule's own."""
    if _contains_pos(tree, pos):
        return None
    for node in _walk(tree):
        if isinstance(node, A.Identifier):
            macro = macro_asts.get(node.name)
            if macro is not None and _contains_pos(macro, pos):
                return node.pos
    return None


def _contains_pos(tree: Any, pos: Any) -> bool:
    return any(getattr(n, "pos", None) is pos for n in _walk(tree))


def _walk(node: Any) -> list[Any]:
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        match n:
            case A.And(children) | A.Or(children) | A.TransformerList(children):
                stack.extend(children)
            case A.Not(child):
                stack.append(child)
            case A.UnaryCheck(left):
                stack.append(left)
            case A.BinaryCheck(left, _, right):
                stack.extend((left, right))
            case A.Transformer(_, values):
                stack.extend(values)
    return out
