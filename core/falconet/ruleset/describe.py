"""``falconet -L`` / ``-l RULE``: describe loaded rules, macros and lists as Falco does.

The JSON shape is ``falco_engine::describe_rule``'s (``info`` + ``details`` per item) so tools
that read ``falco -L -o json_output=true`` keep working; the text form is Falco's two-column
"Rule / Description" table with the description wrapped at column 51 of 110.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from falconet.condition import ast
from falconet.condition.parser import ConditionSyntaxError, parse
from falconet.fields import FieldRegistry
from falconet.ruleset.formats import OutputFormatter
from falconet.ruleset.model import CompiledList, CompiledMacro, CompiledRule


class UnknownRuleError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f'Rule "{name}" is not loaded')


def _walk(node: Any) -> Iterable[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        match n:
            case ast.And(children) | ast.Or(children) | ast.TransformerList(children):
                stack.extend(reversed(children))
            case ast.Not(child):
                stack.append(child)
            case ast.UnaryCheck(left):
                stack.append(left)
            case ast.BinaryCheck(left, _, right):
                stack.extend((right, left))
            case ast.Transformer(_, values):
                stack.extend(reversed(values))


def _refs(condition: str, macros: set[str], lists: set[str]) -> tuple[list[str], list[str]]:
    """Macros and lists named in a condition as written (before substitution)."""
    try:
        tree = parse(condition)
    except ConditionSyntaxError:
        return [], []
    used_macros: set[str] = set()
    used_lists: set[str] = set()
    for n in _walk(tree):
        if isinstance(n, ast.Identifier) and n.name in macros:
            used_macros.add(n.name)
        elif isinstance(n, ast.ListValue):
            used_lists.update(v for v in n.values if v in lists)
        elif isinstance(n, ast.Value) and n.value in lists:
            used_lists.add(n.value)
    return sorted(used_macros), sorted(used_lists)


def _compiled_details(tree: ast.Expr | None) -> tuple[list[str], list[str]]:
    """Operators and fields of a resolved condition."""
    ops: set[str] = set()
    fields: set[str] = set()
    if tree is None:
        return [], []
    for n in _walk(tree):
        if isinstance(n, ast.BinaryCheck | ast.UnaryCheck):
            ops.add(n.op)
        elif isinstance(n, ast.Field):
            fields.add(ast.as_string(n))
    return sorted(ops), sorted(fields)


def _events(rule_source: str, event_types: frozenset[str] | None) -> list[str]:
    if rule_source != "syscall":
        return ["asyncevent", "pluginevent"]
    if event_types is None:
        return ["all"]
    return sorted({*event_types, "asyncevent"})


class Describer:
    """Builds the describe output from a loader's compiled items."""

    def __init__(self, rules: list[CompiledRule], macros: list[CompiledMacro],
                 lists: list[CompiledList], *, required_engine_version: str | None = None,
                 required_plugin_versions: list[dict[str, Any]] | None = None,
                 registry: FieldRegistry | None = None) -> None:
        self.rules = rules
        self.macros = macros
        self.lists = lists
        self.required_engine_version = required_engine_version
        self.required_plugin_versions = required_plugin_versions or []
        self._macro_names = {m.name for m in macros}
        self._list_names = {li.name for li in lists}
        self._registry = registry

    def _output_fields(self, rule: CompiledRule) -> list[str]:
        """The fields of the rule's output, as its formatter tokenizes them."""
        if self._registry is None:
            return []
        formatter = OutputFormatter(rule.output, self._registry.table(rule.source))
        return [token.text for token in formatter.field_tokens]

    def rule_json(self, rule: CompiledRule) -> dict[str, Any]:
        macros, lists = _refs(rule.condition, self._macro_names, self._list_names)
        ops, fields = _compiled_details(rule.ast)
        return {
            "info": {
                "name": rule.name,
                "condition": rule.condition,
                "priority": rule.priority.label,
                "output": rule.output,
                "description": rule.desc,
                "enabled": rule.enabled,
                "source": rule.source,
                "capture": rule.capture,
                "capture_duration": rule.capture_duration,
                "tags": sorted(rule.tags),
            },
            "details": {
                "macros": macros,
                "lists": lists,
                "condition_operators": ops,
                "condition_fields": fields,
                "output_fields": self._output_fields(rule),
                "exception_fields": sorted(set(rule.exception_fields)),
                "exception_names": sorted(set(rule.exception_names)),
                "exception_operators": sorted(set(rule.exception_operators)),
                "events": _events(rule.source, rule.event_types),
                "condition_compiled": rule.condition_compiled,
                "output_compiled": rule.output,
                "plugins": [],
            },
        }

    def macro_json(self, macro: CompiledMacro) -> dict[str, Any]:
        macros, lists = _refs(macro.condition, self._macro_names, self._list_names)
        ops, fields = _compiled_details(macro.ast)
        return {
            "info": {"name": macro.name, "condition": macro.condition},
            "details": {
                "used": macro.used,
                "macros": macros,
                "lists": lists,
                "condition_operators": ops,
                "condition_fields": fields,
                "condition_compiled": ast.as_string(macro.ast) if macro.ast is not None else "",
                "plugins": [],
            },
        }

    def list_json(self, lst: CompiledList) -> dict[str, Any]:
        compiled = set(lst.items_compiled)
        return {
            "info": {"name": lst.name, "items": [i for i in lst.items if i in compiled]},
            "details": {
                "used": lst.used,
                "lists": sorted({i for i in lst.items if i not in compiled}),
                "items_compiled": lst.items_compiled,
                "plugins": [],
            },
        }

    def describe(self, rule_name: str | None = None) -> dict[str, Any]:
        """All items (``-L``) or one rule (``-l NAME``), as Falco's JSON."""
        if rule_name is not None:
            for rule in self.rules:
                if rule.name == rule_name:
                    return {"rules": [self.rule_json(rule)]}
            raise UnknownRuleError(rule_name)
        return {
            "required_engine_version": self.required_engine_version or "0.0.0",
            "required_plugin_versions": self.required_plugin_versions,
            "rules": [self.rule_json(r) for r in self.rules],
            "macros": [self.macro_json(m) for m in self.macros],
            "lists": [self.list_json(li) for li in self.lists],
        }


def wrap_text(text: str, indent: int, line_len: int) -> str:
    """Falco's ``falco::utils::wrap_text`` (words separated by one space, trailing space kept)."""
    out: list[str] = []
    length = 0
    for word in text.split():
        if length + len(word) + 1 <= line_len - indent:
            length += len(word) + 1
        else:
            out.append("\n" + " " * indent)
            length = len(word) + 1
        out.append(word + " ")
    return "".join(out)


def described_rules_as_text(described: dict[str, Any]) -> str:
    """Falco's ``format_described_rules_as_text``."""
    lines = [f"{'Rule':<50} Description", f"{'----':<50} -----------"]
    for r in described["rules"]:
        desc = wrap_text(r["info"]["description"], 51, 110) + "\n"
        lines.append(f"{r['info']['name']:<50} {desc}")
    return "\n".join(lines) + "\n"
