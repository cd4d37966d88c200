"""Type-check condition ASTs against a field table and compile them to Python functions.

``check_condition`` validates an AST the way libsinsp's ``sinsp_filter_compiler`` does (same
checks, same order, same messages: see ``operators``, ``transformers`` and ``values``) and
records the warnings upstream emits. ``build_matcher`` turns several checked conditions into ONE
generated Python function: Python source text, ``compile()``d once, so evaluation never walks
the AST.

Safety: rule text never becomes code (see ``codegen``, which writes the functions).

Evaluation semantics (upstream's, including the surprising ones):

* An absent value (extractor returned None) makes a comparison false for EVERY operator,
  ``!=`` included, so ``not x = v`` is true when x is absent; ``exists`` tests presence.
  A ``val()`` right-hand field that is absent makes the comparison false too.
* List-valued fields (tuples) allow ``exists``, ``in`` (every value in the set) and
  ``intersects`` (any value in the set) only.
* Each distinct operand (field, argument and transformer chain) is extracted at most once per
  matcher call: operands used more than once are cached in locals initialised to a private
  sentinel and filled with the walrus operator at first use, so short-circuiting still skips
  extraction that is not needed.

Extractor conventions (``FieldSpec.extractor(arg)`` -> ``event -> value | None``): see
``falconet.fields``; in addition, the ancestor fields ``proc.aname``, ``proc.apid``,
``proc.aexe``, ``proc.aexepath``, ``proc.acmdline`` and ``proc.aenv`` WITHOUT an index must
return the tuple of the values of all ancestors (the process itself excluded, nearest first),
or None when there is none; the compiler applies the operator with "any ancestor" semantics,
as ``sinsp_filter_check_thread::compare_full_a*`` does. With an index they return one value.
Likewise the syscall fields ``fd.ip``, ``fd.net``, ``fd.port`` and ``fd.proto`` return the tuple
of the socket's endpoint values (client, server; one value for a listening socket), or None for
a non-socket fd: they match when either endpoint matches, and ``!=`` when neither equals
(``sinsp_filter_check_fd::compare_ip/net/port``).

Deliberate differences from libsinsp (nobody can rely on the upstream behaviour):

* ``glob`` matches code points (as in a UTF-8 locale), not bytes.
* Upstream bugs not reproduced: ``pmatch``'s glob branch carrying its position across failed
  entries; modifiers on ancestor and endpoint fields testing only the first value;
  ``fd.net in (a, b)`` checking only the first network.
* Operators upstream throws on while evaluating (``fd.ip``/``fd.port``/``fd.proto`` forms) are
  refused when the rule loads, with the same message; transformer nesting deeper than 100 is
  refused ("transformer nesting is too deep").
* ``join``/``concat``/``getopt`` check argument types after transformers.
* ``evt.rawarg`` (DYNAMIC): a decimal literal compares as a number, anything else as a string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from falconet.condition import ast
from falconet.condition.ast import Expr, Pos
from falconet.condition.codegen import OTHER_VALUE, UNKNOWN_VALUE, generate, seed_key
from falconet.condition.operators import (
    Leaf,
    ancestor_leaf,
    comparable_error,
    endpoint_leaf,
    field_compare,
    modifier_leaf,
    parse_operator,
    scalar_leaf,
    set_leaf,
)
from falconet.condition.plan import Bool, Plan
from falconet.condition.specialize import specialize
from falconet.condition.transformers import (
    TRANSFORMER_NAMES,
    Operand,
    OperandError,
    check_field_arg,
    field_label,
    resolve_operand,
    standalone_extractor,
)
from falconet.condition.values import convert_literal, make_regex, unhex
from falconet.fields import Extractor, FieldSpec, FieldTable, FieldType

_REGEX_SPECIAL = ".+*?^$()[]{}|\\"
_MAX_OPERAND_DEPTH = 100


class ConditionCompileError(Exception):
    """A condition libsinsp would refuse; ``message`` is upstream's text, ``pos`` the node."""

    def __init__(self, message: str, pos: Pos = ast.NO_POS) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass
class CompileWarning:
    message: str
    pos: Pos


@dataclass
class CheckedCondition:
    """A condition that passed ``check_condition``: what ``-L`` reports about it and the plan
    ``build_matcher`` generates code from. ``source`` is the event source of the field table
    it was checked against."""

    ast: Expr
    source: str
    fields: list[str]  # unique, in order of appearance, with [arg] as written
    operators: list[str]  # unique, in order, as written
    warnings: list[CompileWarning]
    transformers: list[str] = field(default_factory=list)
    plan: Plan = field(default=Bool("true"), repr=False)


# --- checking ---------------------------------------------------------------------------------


class _Checker:
    def __init__(self, table: FieldTable) -> None:
        self.table = table
        self.fields: dict[str, None] = {}
        self.operators: dict[str, None] = {}
        self.transformers: dict[str, None] = {}
        self.warnings: list[CompileWarning] = []

    def run(self, root: Expr) -> Plan:
        """Post-order over And/Or/Not without recursion (2000 nested ``not``s must compile):
        ``not not x`` is ``x`` and nested and/or of the same kind are flattened."""
        results: list[Plan] = []
        work: list[tuple[bool, Any]] = [(False, root)]
        while work:
            built, item = work.pop()
            if built:
                kind, count, negate = item
                children = results[len(results) - count :]
                del results[len(results) - count :]
                results.append(
                    _negate(_combine(kind, children)) if negate else _combine(kind, children)
                )
                continue
            node, negate = item, False
            while isinstance(node, ast.Not):
                node, negate = node.child, not negate
            if isinstance(node, ast.And | ast.Or):
                kind = "and" if isinstance(node, ast.And) else "or"
                work.append((True, (kind, len(node.children), negate)))
                work.extend((False, c) for c in reversed(node.children))
            else:
                leaf = self.check(node)
                results.append(_negate(leaf) if negate else leaf)
        return results[0]

    def fail(self, message: str, node: Any) -> ConditionCompileError:
        return ConditionCompileError(message, getattr(node, "pos", ast.NO_POS))

    def operand(self, node: Any) -> Operand:
        if _operand_depth(node) > _MAX_OPERAND_DEPTH:
            raise self.fail("filter error: transformer nesting is too deep", node)
        try:
            op = resolve_operand(node, self.table)
        except OperandError as exc:
            raise self.fail(str(exc), exc.node) from None
        for name in op.fields:
            self.fields.setdefault(name, None)
        _collect_transformers(node, self.transformers)
        return op

    def check(self, node: Any) -> Plan:
        if isinstance(node, ast.Identifier):
            raise self.fail(f"filter error: unexpected identifier '{node.name}'", node)
        if not isinstance(node, ast.UnaryCheck | ast.BinaryCheck):
            raise self.fail(f"filter error: unexpected {type(node).__name__} node", node)
        lhs = self.operand(node.left)
        try:
            op, mod = parse_operator(node.op)
        except ValueError as exc:
            raise self.fail(str(exc), node) from None
        self.operators.setdefault(node.op, None)
        err = comparable_error(op, mod, lhs.type, lhs.is_list)
        if err is not None:
            raise self.fail("filter error: " + err, node)
        if isinstance(node, ast.UnaryCheck) or op == "exists":
            return Leaf(lhs, "exists")
        right = node.right
        if isinstance(right, ast.Value | ast.ListValue):
            values = [right.value] if isinstance(right, ast.Value) else list(right.values)
            return self.constant_check(node, lhs, op, mod, values)
        rhs = self.operand(right)
        return self.field_check(node, lhs, op, mod, rhs)

    # -- field vs field (val(), transformers on the right) -------------------------------------

    def field_check(self, node: Any, lhs: Operand, op: str, mod: str | None, rhs: Operand) -> Leaf:
        if op in ("pmatch", "regex"):
            raise self.fail(f"operator '{op.upper()}' doesn't support right-hand side fields", node)
        if lhs.type is FieldType.IPNET:
            raise self.fail("field type 'IPNET' doesn't support right-hand side fields", node)
        if not lhs.rhs_allowed:
            raise self.fail(f"field '{lhs.name}' doesn't support right-hand side fields", node)
        if not rhs.rhs_allowed:
            raise self.fail(f"field '{rhs.name}' can't be used as a right-hand side field", node)
        if lhs.type is not rhs.type or lhs.is_list != rhs.is_list:
            raise self.fail(
                f"field '{lhs.name}' has type '{_type_text(lhs)}' while the right-hand side "
                f"field '{rhs.name}' has incompatible type '{_type_text(rhs)}'",
                node,
            )
        if mod is not None:
            raise self.fail(f"filter error: '{op} {mod}' requires a list of values", node)
        if op in ("=", "in", "intersects") and not lhs.is_list:
            return Leaf(lhs, "field", None, "{v} == {r}", rhs)
        if op == "!=":
            return Leaf(lhs, "field", None, "{v} != {r}", rhs)
        return Leaf(lhs, "field", field_compare(op, lhs.type, lhs.is_list), "{k}({v}, {r})", rhs)

    # -- constants -------------------------------------------------------------------------------

    def constant_check(
        self, node: Any, lhs: Operand, op: str, mod: str | None, texts: list[str]
    ) -> Leaf:
        right = node.right
        consts: list[Any] = []
        for text in texts:
            self.value_warnings(op, text, right.pos)
            consts.append(self.convert(node, lhs, op, text))
        if lhs.type is FieldType.IPNET and op not in ("in", "intersects") and mod is None:
            consts = consts[:1]
        if lhs.endpoints:
            try:
                return endpoint_leaf(lhs, op, mod, consts)
            except ValueError as exc:
                raise self.fail(str(exc), node) from None
        if mod is not None:
            return modifier_leaf(lhs, op, mod, consts)
        if lhs.any_ancestor:
            return ancestor_leaf(lhs, op, consts)
        if op in ("in", "intersects", "pmatch") or not consts:
            return set_leaf(lhs, op, consts)
        return scalar_leaf(lhs, op, consts[0])

    def convert(self, node: Any, lhs: Operand, op: str, text: str) -> Any:
        right = node.right
        if op in ("bcontains", "bstartswith"):
            raw = unhex(text)
            if raw is None:
                raise self.fail(
                    "filter error: bcontains and bstartswith operator support hex strings only",
                    right,
                )
            if lhs.type is FieldType.BYTEBUF:
                return raw
            text = raw.decode("utf-8", "surrogateescape")
        try:
            value = convert_literal(text, lhs.type)
        except ValueError as exc:
            raise self.fail(str(exc), right) from None
        if (
            self.table.source == "syscall"
            and lhs.spec is not None
            and lhs.spec.name == "evt.type"
            and lhs.type.is_string
        ):
            from falconet.condition.evttypes import is_known_event_type

            if not is_known_event_type(value):
                raise self.fail(f"unknown event type {value}", right)
        if op == "regex":
            try:
                return make_regex(value)
            except ValueError as exc:
                raise self.fail(str(exc), right) from None
        return value

    # -- warnings (sinsp_filter_compiler::check_value_and_add_warnings) --------------------------

    def value_warnings(self, op: str, value: str, pos: Pos) -> None:
        nospaces = "".join(c for c in value if c not in " \t\n\v\f\r")
        if op == "regex" and _regex_is_plain(value):
            self.warnings.append(
                CompileWarning(
                    f"regex check with '{value}' may be optimized with simpler operators such as "
                    "'=', 'contains', 'startswith', 'endswith'",
                    pos,
                )
            )
        if _names_a_field(self.table, nospaces):
            self.warnings.append(
                CompileWarning(
                    f"'{value}' may be a valid field misused as a const string value", pos
                )
            )
        for name in TRANSFORMER_NAMES:
            if (
                len(nospaces) >= len(name) + 2
                and nospaces.startswith(name + "(")
                and nospaces.endswith(")")
            ):
                self.warnings.append(
                    CompileWarning(
                        f"'{value}' may be a valid field transformer misused as a const "
                        "string value",
                        pos,
                    )
                )


def _regex_is_plain(v: str) -> bool:
    """``check_warnings_regex_value``: no regex syntax beyond anchors and leading/trailing
    ``.*``/``.+``/``.?``, so a simpler operator would do."""
    n = len(v)
    i = 0
    while i < n:
        c = v[i]
        if (i == 0 and c == "^") or (i == n - 1 and c == "$"):
            i += 1
            continue
        if ((i == 0 and n > 1) or i == n - 2) and c == "." and v[i + 1] in "+*?":
            i += 2
            continue
        if c in _REGEX_SPECIAL or c == "\0":
            return False
        i += 1
    return True


def _names_a_field(table: FieldTable, text: str) -> bool:
    """Would ``new_filtercheck(text)`` succeed: a known field, with a valid argument?"""
    name, arg = text, None
    if "[" in text:
        if not text.endswith("]"):
            return False
        name, _, arg = text[:-1].partition("[")
    found = table.lookup(name)
    if found is None or (found[1] is not None and arg is not None):
        return False
    spec, suffix = found
    try:
        check_field_arg(table, spec, text, arg if arg is not None else suffix)
    except ValueError:
        return False
    return True


def _type_text(op: Operand) -> str:
    return op.type.value + (" (list)" if op.is_list else "")


def _operand_depth(node: Any) -> int:
    depth, level = 0, [node]
    while level:
        depth += 1
        if depth > _MAX_OPERAND_DEPTH:
            break
        nxt: list[Any] = []
        for n in level:
            if isinstance(n, ast.Transformer):
                nxt.extend(n.values)
            elif isinstance(n, ast.TransformerList):
                nxt.extend(n.children)
        level = nxt
    return depth


def _collect_transformers(node: Any, out: dict[str, None]) -> None:
    if isinstance(node, ast.Transformer):
        out.setdefault(node.name, None)
        for v in node.values:
            _collect_transformers(v, out)
    elif isinstance(node, ast.TransformerList):
        for c in node.children:
            _collect_transformers(c, out)


def _negate(plan: Plan) -> Plan:
    if isinstance(plan, Bool) and plan.kind == "not":
        return plan.children[0]
    return Bool("not", (plan,))


def _combine(kind: str, children: list[Plan]) -> Plan:
    flat: list[Plan] = []
    for c in children:
        if isinstance(c, Bool) and c.kind == kind:
            flat.extend(c.children)
        else:
            flat.append(c)
    if not flat:
        return Bool("true")
    return flat[0] if len(flat) == 1 else Bool(kind, tuple(flat))


def check_condition(ast_: Expr, table: FieldTable) -> CheckedCondition:
    """Validate ``ast_`` (macros already resolved) against ``table``; raise
    ``ConditionCompileError`` with upstream's message, or return the checked condition."""
    checker = _Checker(table)
    plan = checker.run(ast_)
    return CheckedCondition(
        ast=ast_,
        source=table.source,
        fields=list(checker.fields),
        operators=list(checker.operators),
        warnings=checker.warnings,
        transformers=list(checker.transformers),
        plan=plan,
    )


def compile_operand(
    node: ast.Field | ast.Transformer, table: FieldTable
) -> tuple[Extractor, FieldSpec]:
    """An extractor and a describing FieldSpec for a field or transformer expression (output
    format tokens); raises ConditionCompileError."""
    if _operand_depth(node) > _MAX_OPERAND_DEPTH:
        raise ConditionCompileError("filter error: transformer nesting is too deep", node.pos)
    try:
        op = resolve_operand(node, table)
    except OperandError as exc:
        raise ConditionCompileError(str(exc), getattr(exc.node, "pos", ast.NO_POS)) from None
    spec = FieldSpec(
        field_label(node.name, node.arg) if isinstance(node, ast.Field) else ast.as_string(node),
        op.type,
        op.is_list,
    )
    return standalone_extractor(op), spec


# --- building matchers ----------------------------------------------------------------------

def build_matcher(
    conditions: Sequence[CheckedCondition],
    *,
    first_match: bool,
    seeds: Sequence[tuple[str, Any]] = (),
    results: Sequence[Any] | None = None,
    document: Callable[[Any], Any] | None = None,
) -> Callable[..., list[Any]]:
    """One generated function evaluating ``conditions`` in order on an event: the indices of
    those that matched (with ``first_match``, at most the first one), or with ``results`` the
    matching elements of it (``results[i]`` stands for ``conditions[i]``).

    ``seeds`` are ``(seed_key(...), value)`` pairs for fields the caller has already read (to
    choose the bucket): the function then takes their values as extra arguments,
    ``matcher(event, v0, v1, ...)``, and does not extract them again. A seed value other than
    ``UNKNOWN_VALUE`` is what every event reaching this matcher has (``OTHER_VALUE``: a value no
    rule compares the field with), so checks of it against constants are decided at build time.
    With ``document`` (an ``InlinePath.document`` function), the function takes that document,
    already read by the caller, as its last argument.
    """
    mode = "first" if first_match else "all"
    plans = [c.plan for c in conditions]
    for key, value in seeds:
        if value is not UNKNOWN_VALUE:
            plans = [specialize(p, key, value) for p in plans]
    return generate(plans, mode, [key for key, _value in seeds], results, document)


def compile_predicate(condition: CheckedCondition) -> Callable[[Any], bool]:
    """One condition as ``event -> bool``."""
    return generate([condition.plan], "predicate")


__all__ = [
    "OTHER_VALUE", "UNKNOWN_VALUE", "Bool", "CheckedCondition", "CompileWarning",
    "ConditionCompileError", "Plan", "build_matcher", "check_condition", "compile_operand",
    "compile_predicate", "seed_key",
]
