"""Code generation: checked plans to one Python function per bucket of rules.

Safety: rule text never becomes code. Every identifier in the generated source is made here from
a counter (``_x3`` extractor, ``_f2`` transformer, ``_k7`` constant, ``_v1`` cached value, ``_h4``
helper, ``_p0`` result, ``_d0`` JSON document, ``_o1`` object inside it); every literal, converted
value, regex or set is a pre-built object handed to the function through its namespace under such
a name, and the function runs without builtins (only ``type``, ``dict`` and ``str`` are handed
in, as ``_ty``, ``_dc`` and ``_st``).

Speed: each operand is extracted at most once per call (locals filled with the walrus operator,
so short-circuiting still skips what is not needed); a reference after a certain earlier read is
a plain local; consecutive rules test their shared leading terms once; cheap terms go first; plain
JSON string fields are read in place (``fields.InlinePath``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from falconet.condition.operators import Leaf
from falconet.condition.plan import Bool, Plan, leaves
from falconet.condition.transformers import Operand, standalone_extractor
from falconet.condition.values import ascii_lower
from falconet.fields import NO_DOCUMENT, FieldSpec, InlinePath

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
        results: Sequence[Any] | None = None, document: Callable[[Any], Any] | None = None,
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
            "_ND": NO_DOCUMENT,
        }
        self.docs: dict[int, int] = {}  # id(InlinePath.document) -> index of its _d local
        #: (document index, keys but the last) of nested JSON paths -> index of its _o local
        self.parents: dict[tuple[int, tuple[str, ...]], int] = {}
        #: a document the caller passes in (argument ``_dd``), already read: local ``_d0``
        self.document_given = document is not None
        if document is not None:
            self.docs[id(document)] = 0
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
            for leaf in leaves(plan):
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
        key is absent, anything else (or no document) goes to ``fallback`` (the extractor
        call). ``_w``/``_y`` are scratch names used up inside this expression."""
        index = self.docs.setdefault(id(path.document), len(self.docs))
        docfn = self.name(path.document, "_x")
        doc, var = f"(_d{index} := {docfn}(e))", f"_d{index}"
        if self.document_given and index == 0:
            doc = var
        elif ("doc", index) in self.touched:
            doc = f"({var} if {var} is not _U else {doc})"
        self.touched.add(("doc", index))
        if path.event_time:
            return f"(_st(e.ts) if {doc} is not _ND else {fallback})"
        first_key = self.name(path.keys[0], "_k")
        if path.requires is None:
            walk = f"{doc}.get({first_key}, _M)"
        else:  # the test reads the document first, so the walk can use the local
            walk = f"({var}.get({first_key}, _M) if {self.name(path.requires, '_k')} in {doc} "\
                   "else _M)"
        if len(path.keys) > 1:
            last_key = self.name(path.keys[-1], "_k")
            walk = f"{self.parent_object(index, path, walk)}.get({last_key}, _M)"
        absent = f"(None if _y is _M and {var} is not _ND else {fallback})"
        if path.render is not None:  # a found non-string value is rendered, not walked again
            absent = f"({self.name(path.render, '_x')}(_y) if _y is not _M else {absent})"
        return f"(_y if _ty(_y := {walk}) is _st else {absent})"

    def parent_object(self, doc_index: int, path: InlinePath, first_step: str) -> str:
        """The object holding a nested path's last key, read once per call and shared by every
        field under it (``/client/ip`` and ``/client/agent`` walk ``client`` once): local
        ``_o<i>``, an empty mapping when the walk meets a missing key or a non-object."""
        index = self.parents.setdefault((doc_index, path.keys[:-1]), len(self.parents))
        walk = first_step
        for key in path.keys[1:-1]:
            walk = f"(_w.get({self.name(key, '_k')}, _M) if _ty(_w := {walk}) is _dc else _M)"
        compute, var = f"(_w if _ty(_w := {walk}) is _dc else _ND)", f"_o{index}"
        if ("parent", index) in self.touched:
            return f"({var} if {var} is not _U else ({var} := {compute}))"
        self.touched.add(("parent", index))
        return f"({var} := {compute})"

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
        args = ["e", *(f"_sd{i}" for i in range(len(self.seeds)))]
        lines = ["def _m(" + ", ".join([*args, "_dd"] if self.document_given else args) + "):"]
        if self.document_given:
            lines.append("    _d0 = _dd")
        unread = [f"_d{i}" for i in range(self.document_given, len(self.docs))]
        unread += [f"_o{i}" for i in range(len(self.parents))]
        if unread:
            lines.append("    " + " = ".join(unread) + " = _U")
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
        for leaf in leaves(plan):
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


def generate(
    plans: Sequence[Plan], mode: str, seed_keys: Sequence[str] = (),
    results: Sequence[Any] | None = None, document: Callable[[Any], Any] | None = None,
) -> Callable[..., Any]:
    gen = _Codegen(plans, seed_keys, results, document)
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
