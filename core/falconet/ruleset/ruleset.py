"""The runtime ruleset: which rules are enabled, and evaluation.

One index per source (``index.py``: buckets by event type for syscalls, by the most pinning
fields for plugin sources); each bucket is one generated function that evaluates its rules in
enable order and extracts each field at most once.

Enabling follows ``falco_engine::enable_rule*``: by exact name, by wildcard (Falco's
``matches_wildcard``: no backtracking), by legacy substring, or by tag; the falco.yaml ``rules:``
selection is applied in order after loading. Rules below the minimum priority are never enabled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from falconet.config import RuleSelection
from falconet.fields import FieldRegistry
from falconet.ruleset.index import SourceIndex, choose_index_field
from falconet.ruleset.model import CompiledRule, Priority


def matches_wildcard(pattern: str, text: str) -> bool:
    """Falco's ``falco::utils::matches_wildcard``: ``*`` matches any run, and each literal chunk
    matches at its first occurrence (no backtracking, so ``*a`` does not match ``aba``)."""
    if "*" not in pattern:
        return pattern == text
    chunks = pattern.split("*")
    pos = 0
    for i, chunk in enumerate(chunks):
        if not chunk:
            continue
        if i == 0:
            if not text.startswith(chunk):
                return False
            pos = len(chunk)
            continue
        found = text.find(chunk, pos)
        if found < 0:
            return False
        pos = found + len(chunk)
    return not chunks[-1] or pos == len(text)


@dataclass
class Ruleset:
    """Enabled rules for every source, ready to evaluate events."""

    rules: Sequence[CompiledRule]
    registry: FieldRegistry
    min_priority: Priority = Priority.DEBUG
    first_match: bool = True
    _enabled: dict[str, None] = field(default_factory=dict, init=False)  # ordered set of names
    _by_source: dict[str, SourceIndex] = field(default_factory=dict, init=False)
    _dirty: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        self._by_name = {r.name: r for r in self.rules}
        for rule in self.rules:
            if rule.enabled:
                self._enable(rule)

    # --- selection ------------------------------------------------------------------------

    def _eligible(self, rule: CompiledRule) -> bool:
        return rule.priority <= self.min_priority

    def _enable(self, rule: CompiledRule) -> None:
        if self._eligible(rule) and rule.name not in self._enabled:
            self._enabled[rule.name] = None
            self._dirty = True

    def _disable(self, rule: CompiledRule) -> None:
        if self._enabled.pop(rule.name, 0) is None:
            self._dirty = True

    def _select(self, *, rule: str | None = None, tag: str | None = None,
                substring: str | None = None) -> list[CompiledRule]:
        chosen = []
        for r in self.rules:
            if rule is not None and not matches_wildcard(rule, r.name):
                continue
            if tag is not None and tag not in r.tags:
                continue
            if substring is not None and substring not in r.name:
                continue
            chosen.append(r)
        return chosen

    def enable(self, *, rule: str | None = None, tag: str | None = None,
               substring: str | None = None) -> int:
        """Enable matching rules; returns how many matched the pattern."""
        chosen = self._select(rule=rule, tag=tag, substring=substring)
        for r in chosen:
            self._enable(r)
        return len(chosen)

    def disable(self, *, rule: str | None = None, tag: str | None = None,
                substring: str | None = None) -> int:
        chosen = self._select(rule=rule, tag=tag, substring=substring)
        for r in chosen:
            self._disable(r)
        return len(chosen)

    def apply_selection(self, selection: Iterable[RuleSelection]) -> None:
        """Apply falco.yaml's ``rules:`` entries (validated by ``config``) in order."""
        for entry in selection:
            method = self.enable if entry.action == "enable" else self.disable
            if entry.rule:
                method(rule=entry.rule)
            if entry.tag:
                method(tag=entry.tag)

    @property
    def enabled_rules(self) -> list[CompiledRule]:
        """Enabled rules in enable order (the evaluation order)."""
        return [self._by_name[n] for n in self._enabled]

    def is_enabled(self, name: str) -> bool:
        return name in self._enabled

    # --- indexing -------------------------------------------------------------------------

    def _build(self) -> None:
        per_source: dict[str, list[CompiledRule]] = {}
        for rule in self.enabled_rules:
            per_source.setdefault(rule.source, []).append(rule)
        self._by_source = {
            source: SourceIndex(
                rules,
                choose_index_field(source, rules, self.registry.table(source)),
                self.first_match,
            )
            for source, rules in per_source.items()
        }
        self._dirty = False

    def index_summary(self) -> dict[str, dict[str, Any]]:
        """Per source: the index field, the rules, and the buckets built so far."""
        if self._dirty:
            self._build()
        return {source: index.summary() for source, index in self._by_source.items()}

    # --- evaluation -----------------------------------------------------------------------

    def evaluate(self, event: Any, source: str | None = None) -> list[CompiledRule]:
        """The rules that match ``event`` (at most one with ``rule_matching: first``), in
        evaluation order. Counting matches is the caller's business (alerts are rarer than
        events)."""
        if self._dirty:
            self._build()
        idx = self._by_source.get(source or event.source)
        return [] if idx is None else idx.run(event)

    def evaluate_batch(
        self, source: str, events: Iterable[Any]
    ) -> list[tuple[Any, list[CompiledRule] | None]]:
        """``(event, matching rules)`` for the events of one source that match something: the
        form a source task uses, with the lookups of ``evaluate`` done once per batch. Rules are
        None for an event whose payload turned out not to be JSON when it was decoded for
        evaluation (a ``JsonLine``, see ``index.py``): it was not evaluated."""
        if self._dirty:
            self._build()
        idx = self._by_source.get(source)
        return [] if idx is None else idx.run_batch(events)
