"""Type-check condition ASTs against a field table and compile them to Python functions.

``check_condition`` validates an AST the way libsinsp's ``sinsp_filter_compiler`` does (same
checks, same order, same messages: see ``operators``, ``transformers`` and ``values``) and
records the warnings upstream emits. ``build_matcher`` turns several checked conditions into ONE
generated Python function: Python source text, ``compile()``d once, so evaluation never walks
the AST.

Safety: rule text never becomes code. Every identifier in the generated source is made by this
module from a counter (``_x3`` extractor, ``_f2`` transformer, ``_k7`` constant, ``_v1`` cached
value, ``_h4`` helper); every literal, converted value, regex or set is a pre-built object
handed to the function through its namespace under such a name. Only fixed helper names
(``_U``, ``_lw``, ``_cs``) are referenced besides them.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from falconet.condition import ast
from falconet.condition.ast import Expr, Pos
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
from falconet.condition.transformers import (
    TRANSFORMER_NAMES,
    Operand,
    OperandError,
    check_field_arg,
    field_label,
    resolve_operand,
    standalone_extractor,
)
from falconet.condition.values import ascii_lower, convert_literal, make_regex, unhex
from falconet.fields import Extractor, FieldSpec, FieldTable, FieldType, InlinePath

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


@dataclass(frozen=True, eq=False)
class Bool:
    """A boolean node of a checked plan (nested and/or of one kind flattened, ``not not``
    removed); ``true`` is an empty and/or."""

    kind: str  # "and" | "or" | "not" | "true"
    children: tuple[Plan, ...] = ()


Plan = Leaf | Bool


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


# --- code generation ----------------------------------------------------------------------------

_UNSET = object()  # "not extracted yet"; never a field value
_MAX_BOOL_DEPTH = 32  # boolean nesting per generated function (Python's parser allows ~200 parens)
_ABSENT = object()  # what an inlined JSON walk yields for a missing key
#: A seed value that is not known when building (see ``build_matcher``).
UNKNOWN_VALUE: Any = _UNSET


class _OtherValue:
    """A value equal to nothing a rule names: stands for every such value of an index field."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<other value>"


OTHER_VALUE: Any = _OtherValue()
_MAX_IF_NESTING = 24  # nested ifs for shared rule prefixes (Python allows 100 indent levels)
_MAX_INLINE_OPERAND = 8  # deeper transformer chains are called as one composed extractor


def _cache_set(cache: list[Any], index: int, value: Any) -> Any:
    cache[index] = value
    return value


class _Slot:
    __slots__ = ("index", "op", "uses")

    def __init__(self, index: int, op: Operand) -> None:
        self.index, self.op, self.uses = index, op, 1


class _Codegen:
    """Emits one function for a list of plans. See the module docstring for the naming rules."""

    def __init__(
        self, plans: Sequence[Plan], seed_keys: Sequence[str] = (),
        results: Sequence[Any] | None = None,
    ) -> None:
        self.plans = plans
        self.ns: dict[str, Any] = {
            "__builtins__": {},
            "_U": _UNSET,
            "_lw": ascii_lower,
            "_cs": _cache_set,
            "_ty": type,
            "_dc": dict,
            "_st": str,
            "_M": _ABSENT,
        }
        self.docs: dict[int, int] = {}  # id(InlinePath.document) -> index of its _d local
        #: what a match of plan i reports: ``i`` itself, or the generated name of results[i]
        self.result_names = [str(i) for i in range(len(plans))] if results is None else [
            self._result_name(i, r) for i, r in enumerate(results)
        ]
        self.names: dict[Any, str] = {}
        self.slots: dict[str, _Slot] = {}
        self.cached: dict[str, int] = {}  # slot key -> cache index (multi-use slots)
        self.helpers: list[tuple[str, Bool]] = []
        self.deep = False
        for plan in plans:
            for leaf in _leaves(plan):
                if leaf.form != "false":
                    self.register(leaf.lhs)
                    if leaf.rhs is not None:
                        self.register(leaf.rhs)
        for key, slot in self.slots.items():
            if (slot.uses > 1 or key in seed_keys) and slot.op.kind != "const":
                self.cached[key] = len(self.cached)
        #: per seed argument ``_sd<i>``: the cache index it fills, or None if no rule reads it
        self.seeds = [self.cached.get(k) for k in seed_keys]
        self.deep = any(_plan_depth(p) > _MAX_BOOL_DEPTH for p in plans)
        #: cache indices holding their value from the start: the seeds, as plain ``_v<i>``
        #: (not in deep mode, whose helper functions share the ``_c`` list)
        self.assigned = set() if self.deep else {i for i in self.seeds if i is not None}
        self.seeded = set(self.assigned)  # ``assigned`` changes while code is generated
        #: cache indices (and ("doc", i) for documents) that code emitted so far may have filled:
        #: code is emitted in execution order, so a first reference needs no "already read?" test
        self.touched: set[Any] = set(self.seeded)

    def _result_name(self, index: int, obj: Any) -> str:
        name = f"_p{index}"
        self.ns[name] = obj
        return name

    def name(self, obj: Any, prefix: str) -> str:
        """A generated identifier bound to ``obj`` in the function's namespace. Equal hashable
        constants share one name, so equal checks in different rules print identically (which
        lets ``source`` merge their common prefixes)."""
        ident: Any = id(obj)
        if prefix == "_k" and _hashable(obj):
            ident = (type(obj), obj)
        found = self.names.get(ident)
        if found is None:
            found = f"{prefix}{len(self.names)}"
            self.names[ident] = found
            self.ns[found] = obj
        return found

    def register(self, op: Operand) -> None:
        slot = self.slots.get(op.key)
        if slot is not None:
            slot.uses += 1
            return
        self.slots[op.key] = _Slot(len(self.slots), op)
        if op.kind == "apply" and _op_depth(op) <= _MAX_INLINE_OPERAND:
            for arg in op.args:
                self.register(arg)

    def var(self, op: Operand) -> str | None:
        """The expression holding a cached operand's value once ``ref`` ran, else None."""
        index = self.cached.get(op.key)
        if index is None:
            return None
        return f"_c[{index}]" if self.deep else f"_v{index}"

    def ref(self, op: Operand) -> str:
        """An expression evaluating to the operand's value, extracting it at most once."""
        op = self.slots[op.key].op
        if op.kind == "const":
            return self.name(op.value, "_k")
        index = self.cached.get(op.key)
        if index is None:
            return self._compute(op)
        if index in self.assigned:
            return f"_v{index}"
        compute = self._compute(op)
        if self.deep:
            return f"(_c[{index}] if _c[{index}] is not _U else _cs(_c, {index}, {compute}))"
        if index not in self.touched:  # no code before this can have filled it
            self.touched.add(index)
            return f"(_v{index} := {compute})"
        return f"(_v{index} if _v{index} is not _U else (_v{index} := {compute}))"

    def _compute(self, op: Operand) -> str:
        """The expression that extracts (or transforms) an operand."""
        if op.kind == "field":
            compute = self.name(op.extract, "_x") + "(e)"
            if op.inline is not None and not self.deep:
                compute = self.inline(op.inline, compute)
            return compute
        if _op_depth(op) > _MAX_INLINE_OPERAND:
            return self.name(standalone_extractor(op), "_x") + "(e)"
        args = ", ".join(self.ref(a) for a in op.args)
        return self.name(op.fn, "_f") + f"({args})"

    def inline(self, path: InlinePath, fallback: str) -> str:
        """Read a JSON field in place (``fields.InlinePath``): a string is the value, a missing
        key is absent, anything else goes to ``fallback`` (the extractor call). ``_w``/``_y``
        are scratch names used up inside this expression."""
        index = self.docs.setdefault(id(path.document), len(self.docs))
        docfn = self.name(path.document, "_x")
        if ("doc", index) in self.touched:
            walk = f"(_d{index} if _d{index} is not _U else (_d{index} := {docfn}(e)))"
        else:  # no code before this can have read the document
            self.touched.add(("doc", index))
            walk = f"(_d{index} := {docfn}(e))"
        walk = f"{walk}.get({self.name(path.keys[0], '_k')}, _M)"
        for key in path.keys[1:]:
            walk = f"(_w.get({self.name(key, '_k')}, _M) if _ty(_w := {walk}) is _dc else _M)"
        return f"(_y if _ty(_y := {walk}) is _st else (None if _y is _M else {fallback}))"

    def bind(self, op: Operand, temp: str) -> tuple[str, str]:
        """(expression testing presence, name of the present value)."""
        ref, var = self.ref(op), self.var(op)
        if var is not None:
            return f"{ref} is not None", var
        return f"({temp} := {ref}) is not None", temp

    def leaf(self, leaf: Leaf) -> str:
        form = leaf.form
        if form == "false":
            return "False"
        if form == "exists":
            return f"({self.ref(leaf.lhs)} is not None)"
        k = self.name(leaf.const, "_k") if leaf.const is not None else ""
        if form == "eq":
            return f"({self.ref(leaf.lhs)} == {k})"
        if form == "member":
            return f"({self.ref(leaf.lhs)} in {k})"
        test, v = self.bind(leaf.lhs, "_t")
        if form == "call":
            return f"({test} and {k}({v}))"
        if form == "pred":
            return f"({test} and {leaf.expr.format(v=v, k=k)})"
        assert leaf.rhs is not None  # form == "field"
        rtest, r = self.bind(leaf.rhs, "_s")
        return f"({test} and {rtest} and {leaf.expr.format(v=v, k=k, r=r)})"

    def expr(self, plan: Plan, depth: int) -> str:
        """Code for a plan. Outside deep mode it also tracks which cached operands are
        definitely read once this code has run (``assigned``): later references to them are
        plain locals."""
        before = set(self.assigned)
        text = self._expr(plan, depth)
        if not self.deep:
            self.assigned = before | self._first_reads(plan)
        return text

    def _expr(self, plan: Plan, depth: int) -> str:
        if isinstance(plan, Leaf):
            return self.leaf(plan)
        if plan.kind == "true" or (plan.kind == "and" and not plan.children):
            return "True"
        if plan.kind == "or" and not plan.children:
            return "False"
        if depth >= _MAX_BOOL_DEPTH:
            helper = f"_h{len(self.helpers)}"
            self.helpers.append((helper, plan))
            return f"{helper}(e, _c)"
        if plan.kind == "not":
            return f"(not {self.expr(plan.children[0], depth + 1)})"
        parts = []
        for child in plan.children:  # each child runs after the ones before it began
            parts.append(self.expr(child, depth + 1))
            if not self.deep:
                self.assigned |= self._first_reads(child)
        return "(" + f" {plan.kind} ".join(parts) + ")"

    def _first_reads(self, plan: Plan) -> set[int]:
        """Cache indices certainly filled whenever ``plan`` is evaluated: the left-hand side of
        its leftmost check (and/or/not always evaluate their first child)."""
        while isinstance(plan, Bool):
            if not plan.children:
                return set()
            plan = plan.children[0]
        if plan.form == "false":
            return set()
        index = self.cached.get(plan.lhs.key)
        return set() if index is None else {index}

    def source(self, mode: str) -> str:
        body: list[str] = []
        self._emit_body(body, mode)
        lines = ["def _m(" + ", ".join(["e", *(f"_sd{i}" for i in range(len(self.seeds)))]) + "):"]
        if self.docs:
            lines.append("    " + " = ".join(f"_d{i}" for i in range(len(self.docs))) + " = _U")
        if self.deep:
            lines.append(f"    _c = [_U] * {len(self.cached)}")
            lines += [f"    _c[{c}] = _sd{i}" for i, c in enumerate(self.seeds) if c is not None]
        elif self.cached:
            names = [f"_v{i}" for i in range(len(self.cached)) if i not in self.seeded]
            if names:
                lines.append("    " + " = ".join(names) + " = _U")
            lines += [f"    _v{c} = _sd{i}" for i, c in enumerate(self.seeds) if c is not None]
        lines += body
        done = 0
        while done < len(self.helpers):  # helpers may add helpers
            helper, plan = self.helpers[done]
            done += 1
            test = self.expr(plan, 1)
            lines += ["", f"def {helper}(e, _c):", f"    return {test}"]
        return "\n".join(lines) + "\n"


    def _emit_body(self, lines: list[str], mode: str) -> None:
        """The rule tests (generated before the locals: they decide which ``_d`` exist)."""
        if mode == "predicate":
            lines.append(f"    return True if {self.expr(self.plans[0], 0)} else False")
        elif mode == "first":
            self._emit_rules(lines, "return [{}]")
            lines.append("    return []")
        else:
            lines.append("    _r = []")
            self._emit_rules(lines, "_r.append({})")
            lines.append("    return _r")

    def _cost(self, plan: Plan) -> int:
        """A rough price of evaluating a term: ``and`` terms are pure, so a rule may test the
        cheap ones (known or in-place values) before those that call extractors."""
        total = 0
        for leaf in _leaves(plan):
            for op in (leaf.lhs, leaf.rhs):
                if op is None or op.kind == "const":
                    continue
                index = self.cached.get(op.key)
                if index is not None and index in self.seeded:
                    continue
                total += 1 if op.kind == "field" and op.inline is not None else (
                    2 if op.kind == "field" else 3)
            total += leaf.form in ("pred", "call", "field")
        return total

    @staticmethod
    def _terms(plan: Plan) -> list[Plan]:
        """The top-level ``and`` terms of a plan (the plan itself for anything else)."""
        if isinstance(plan, Bool) and plan.kind in ("and", "true"):
            return list(plan.children)
        return [plan]

    def _emit_rules(self, lines: list[str], action: str) -> None:
        """One ``if`` per rule, with the leading terms that consecutive rules share tested once
        (nested ``if``s keep rule order). Rules whose plan is constant false are left out."""
        baseline = set(self.assigned)
        items = []
        for i, plan in enumerate(self.plans):
            if isinstance(plan, Bool) and plan.kind == "or" and not plan.children:
                continue
            terms = sorted(self._terms(plan), key=self._cost)  # stable: ties keep rule order
            keys = []
            for term in terms:  # context-free text, to find shared prefixes
                self.assigned, self.touched = set(baseline), set(self.seeded)
                keys.append(self.expr(term, 1))
            items.append((i, terms, keys))
        self.assigned, self.touched = baseline, set(self.seeded)
        self._emit_group(lines, items, action, 1)

    def _emit_group(
        self, lines: list[str], items: list[tuple[int, list[Plan], list[str]]], action: str,
        depth: int,
    ) -> None:
        pad = "    " * depth
        i = 0
        while i < len(items):
            index, terms, keys = items[i]
            j = i + 1
            if keys and depth < _MAX_IF_NESTING:
                while j < len(items) and items[j][2][:1] == keys[:1]:
                    j += 1
            before = set(self.assigned)
            if not terms:
                lines.append(pad + action.format(self.result_names[index]))
            elif j - i == 1:
                test = " and ".join(self._in_sequence(terms))
                lines += [f"{pad}if {test}:", f"{pad}    {action.format(self.result_names[index])}"]
            else:
                lines.append(f"{pad}if {self.expr(terms[0], 1)}:")
                rest = [(k, t[1:], ks[1:]) for k, t, ks in items[i:j]]
                self._emit_group(lines, rest, action, depth + 1)
            # after the statement, only what its first test read is certain
            self.assigned = before | (self._first_reads(terms[0]) if terms and not self.deep
                                      else set())
            i = j

    def _in_sequence(self, terms: list[Plan]) -> list[str]:
        """Code for terms joined by ``and``: each may use what the ones before it read."""
        texts = []
        for term in terms:
            texts.append(self.expr(term, 1))
            if not self.deep:
                self.assigned |= self._first_reads(term)
        return texts


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _leaves(plan: Plan) -> list[Leaf]:
    out: list[Leaf] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, Leaf):
            out.append(node)
        else:
            stack.extend(reversed(node.children))
    return out


def _plan_depth(plan: Plan) -> int:
    best, stack = 0, [(plan, 1)]
    while stack:
        node, depth = stack.pop()
        best = max(best, depth)
        if isinstance(node, Bool):
            stack.extend((c, depth + 1) for c in node.children)
    return best


def _op_depth(op: Operand) -> int:
    return 1 + max((_op_depth(a) for a in op.args), default=0) if op.kind == "apply" else 1


def _generate(
    plans: Sequence[Plan], mode: str, seed_keys: Sequence[str] = (),
    results: Sequence[Any] | None = None,
) -> Callable[..., Any]:
    gen = _Codegen(plans, seed_keys, results)
    src = gen.source(mode)
    code = compile(src, "<falconet-condition>", "exec")
    exec(code, gen.ns)  # the namespace holds only generated names bound to prebuilt objects
    fn = gen.ns["_m"]
    fn.__falconet_source__ = src
    return fn


def seed_key(spec: FieldSpec, label: str) -> str:
    """The identity of the operand ``label`` (``name`` or ``name[arg]``) of field ``spec`` in
    checked plans: what ``build_matcher``'s seeds refer to."""
    return f"{label}@{id(spec):x}"


def build_matcher(
    conditions: Sequence[CheckedCondition],
    *,
    first_match: bool,
    seeds: Sequence[tuple[str, Any]] = (),
    results: Sequence[Any] | None = None,
) -> Callable[..., list[Any]]:
    """One generated function evaluating ``conditions`` in order on an event: the indices of
    those that matched (with ``first_match``, at most the first one), or with ``results`` the
    matching elements of it (``results[i]`` stands for ``conditions[i]``).

    ``seeds`` are ``(seed_key(...), value)`` pairs for fields the caller has already read (to
    choose the bucket): the function then takes their values as extra arguments,
    ``matcher(event, v0, v1, ...)``, and does not extract them again. A seed value other than
    ``UNKNOWN_VALUE`` is what every event reaching this matcher has (``OTHER_VALUE``: a value no
    rule compares the field with), so checks of it against constants are decided at build time.
    """
    mode = "first" if first_match else "all"
    plans = [c.plan for c in conditions]
    for key, value in seeds:
        if value is not UNKNOWN_VALUE:
            from falconet.condition.specialize import specialize

            plans = [specialize(p, key, value) for p in plans]
    return _generate(plans, mode, [key for key, _value in seeds], results)


def compile_predicate(condition: CheckedCondition) -> Callable[[Any], bool]:
    """One condition as ``event -> bool``."""
    return _generate([condition.plan], "predicate")
