"""What the loader needs from the condition language and the field tables, in one place.

The loader parses conditions, type-checks them against a source's fields, validates outputs,
infers syscall event types and checks exception fields; this adapter binds those to
``falconet.condition`` and ``falconet.fields`` (imported lazily so the YAML side of the loader
does not pay for them) and keeps per-source caches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.condition import ast as A
from falconet.fields import FieldRegistry, FieldTable
from falconet.ruleset.output_check import output_error


class Language:
    def __init__(self, registry: FieldRegistry) -> None:
        self.registry = registry
        self._validators: dict[str, Callable[[str], bool]] = {}
        self._lhs_cache: dict[tuple[str, str], bool] = {}
        self._output_cache: dict[tuple[str, str], str | None] = {}

    @property
    def syntax_error(self) -> type[Any]:
        from falconet.condition.parser import ConditionSyntaxError

        return ConditionSyntaxError

    @property
    def compile_error(self) -> type[Any]:
        from falconet.condition.compiler import ConditionCompileError

        return ConditionCompileError

    def parse(self, text: str) -> A.Expr:
        from falconet.condition.parser import parse

        return parse(text)

    def table(self, source: str) -> FieldTable:
        return self.registry.table(source)

    def check(self, tree: A.Expr, table: FieldTable) -> Any:
        """Type-check a resolved condition: CheckedCondition, or ConditionCompileError."""
        from falconet.condition.compiler import check_condition

        return check_condition(tree, table)

    def output_error(self, fmt: str, table: FieldTable) -> str | None:
        key = (table.source, fmt)
        if key in self._output_cache:
            return self._output_cache[key]
        err = self._output_cache[key] = output_error(fmt, table)
        return err

    @property
    def event_type_error(self) -> type[Exception]:
        from falconet.condition.evttypes import EventTypeError

        return EventTypeError

    def event_types(self, tree: A.Expr) -> tuple[frozenset[str] | None, bool]:
        """Syscall event types of a condition (None: every type) and whether Falco 0.44.1 warns
        LOAD_NO_EVTTYPE for it (no code, or more than 100 ppm event codes). Raises
        ``event_type_error`` where upstream's ``ppm_event_codes`` throws."""
        from falconet.condition import evttypes

        names = evttypes.event_types(tree)
        warns = evttypes.warns_no_evttype(evttypes.event_code_count(tree))
        return (None if names == evttypes.ALL_EVENT_TYPES else names), warns

    def field_validator(self, source: str) -> Callable[[str], bool] | None:
        """``falco_source::is_valid_lhs_field`` for a source; None when the source is unknown."""
        if not self.registry.has_source(source):
            return None
        validator = self._validators.get(source)
        if validator is None:
            table = self.registry.table(source)

            def validator(name: str, table: FieldTable = table) -> bool:
                return self._valid_lhs(name, table)

            self._validators[source] = validator
        return validator

    def _valid_lhs(self, name: str, table: FieldTable) -> bool:
        key = (table.source, name)
        hit = self._lhs_cache.get(key)
        if hit is None:
            hit = self._lhs_cache[key] = self._check_lhs(name, table)
        return hit

    def _check_lhs(self, name: str, table: FieldTable) -> bool:
        if "(" in name:
            # a transformer: compile "<field> exists", as upstream does
            try:
                self.check(self.parse(name + " exists"), table)
            except (self.syntax_error, self.compile_error):
                return False
            return True
        # a plain field: a filtercheck accepts any text that starts with a field name
        return any(name.startswith(f) for f in table.fields)
