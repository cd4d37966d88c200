"""The runtime ruleset: which rules are enabled, how they are bucketed, and evaluation.

Upstream keeps one ruleset per source and buckets syscall rules by event type. falconet does the
same for syscalls and, for plugin sources (where upstream evaluates every rule on every event),
buckets by the string field that pins the most rules (``ka.verb``, ``ct.name``...), found from
the conditions themselves. Each bucket is one generated Python function (``build_matcher``) that
evaluates its rules in enable order and extracts each field at most once.

Enabling follows ``falco_engine::enable_rule*``: by exact name, by wildcard (Falco's
``matches_wildcard``: no backtracking), by legacy substring, or by tag; the falco.yaml ``rules:``
selection is applied in order after loading. Rules below the minimum priority are never enabled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from falconet.condition.compiler import UNKNOWN_VALUE, build_matcher
from falconet.condition.evttypes import pinned_values
from falconet.fields import FieldRegistry, FieldSpec, FieldType
from falconet.ruleset.model import CompiledRule, Priority

Matcher = Callable[..., list[CompiledRule]]


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


class SelectionError(ValueError):
    """A falco.yaml ``rules:`` entry that is not ``{enable|disable: {rule|tag: ...}}``."""


@dataclass
class _SourceIndex:
    """The buckets of one source: key -> matcher over the rules that key can reach, and ``run``,
    the closure that evaluates an event (one per source, so evaluation does no lookups)."""

    rules: list[CompiledRule]
    buckets: dict[Any, tuple[Matcher, list[CompiledRule]]]
    default: tuple[Matcher, list[CompiledRule]]
    index_field: str | None
    run: Callable[[Any], list[CompiledRule]]


def _runner(key_extract: Callable[[Any], Any] | None,
            buckets: dict[Any, tuple[Matcher, list[CompiledRule]]],
            default: tuple[Matcher, list[CompiledRule]]) -> Callable[[Any], list[CompiledRule]]:
    if key_extract is None:
        return default[0]
    get = {k: m for k, (m, _rules) in buckets.items()}.get
    fallback = default[0]

    def run(event: Any) -> list[CompiledRule]:
        key = key_extract(event)
        return get(key, fallback)(event, key)

    return run


@dataclass
class Ruleset:
    """Enabled rules for every source, ready to evaluate events."""

    rules: Sequence[CompiledRule]
    registry: FieldRegistry
    min_priority: Priority = Priority.DEBUG
    first_match: bool = True
    _enabled: dict[str, None] = field(default_factory=dict, init=False)  # ordered set of names
    _by_source: dict[str, _SourceIndex] = field(default_factory=dict, init=False)
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

    def apply_selection(self, selection: Iterable[Mapping[str, Any]]) -> None:
        """Apply falco.yaml ``rules: [{enable: {rule: x}}, {disable: {tag: y}}, ...]`` in order."""
        for i, entry in enumerate(selection):
            if not isinstance(entry, Mapping) or len(entry) != 1:
                raise SelectionError(f"rules[{i}]: expected one of 'enable' or 'disable'")
            (action, target), = entry.items()
            if action not in ("enable", "disable") or not isinstance(target, Mapping):
                raise SelectionError(
                    f"rules[{i}]: expected 'enable: {{rule: ...}}' or 'disable: {{tag: ...}}'"
                )
            unknown = set(target) - {"rule", "tag"}
            if unknown or not target:
                raise SelectionError(f"rules[{i}].{action}: expected a 'rule' or a 'tag' key")
            method = self.enable if action == "enable" else self.disable
            if "rule" in target:
                method(rule=str(target["rule"]))
            if "tag" in target:
                method(tag=str(target["tag"]))

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
        self._by_source = {src: self._index_source(src, rules) for src, rules in per_source.items()}
        self._dirty = False

    def _index_source(self, source: str, rules: list[CompiledRule]) -> _SourceIndex:
        if source == "syscall":
            pins = [r.event_types for r in rules]
            index_field: str | None = "evt.type"
        else:
            index_field, pins = self._best_index_field(source, rules)
        key_extract = None
        seed = None
        if index_field is not None:
            found = self.registry.table(source).lookup(index_field)
            if found is not None:
                seed = found[0]
                key_extract = seed.extractor(None)
        keys = {k for p in pins if p is not None for k in p}
        buckets = {}
        for key in keys:
            members = [r for r, p in zip(rules, pins, strict=True) if p is None or key in p]
            buckets[key] = self._matcher(members, seed, key)
        default = self._matcher([r for r, p in zip(rules, pins, strict=True) if p is None], seed)
        run = _runner(key_extract, buckets, default)
        return _SourceIndex(rules, buckets, default, index_field, run)

    def _best_index_field(
        self, source: str, rules: list[CompiledRule]
    ) -> tuple[str | None, list[frozenset[str] | None]]:
        """The string field whose values pin the most rules of this source."""
        table = self.registry.table(source)
        candidates: dict[str, None] = {}
        for rule in rules:
            for name in rule.checked.fields:
                spec = table.fields.get(name)
                if spec is not None and spec.type is FieldType.CHARBUF and not spec.is_list:
                    candidates[name] = None
        best: tuple[int, str | None, list[frozenset[str] | None]] = (0, None, [None] * len(rules))
        for name in candidates:
            pins = [pinned_values(r.ast, name) for r in rules]
            pinned = sum(p is not None for p in pins)
            if pinned > best[0]:
                best = (pinned, name, pins)
        return best[1], best[2]

    def _matcher(
        self, rules: list[CompiledRule], seed: FieldSpec | None, key: Any = UNKNOWN_VALUE
    ) -> tuple[Matcher, list[CompiledRule]]:
        """The bucket's generated function; ``key`` (when known) is the index field's value of
        every event the bucket receives, so checks of it are decided when building."""
        if not rules:
            return (lambda _event, _key=None: []), []
        conditions = [r.checked for r in rules]
        matcher = build_matcher(
            conditions, first_match=self.first_match, seed=seed, seed_value=key, results=rules
        )
        return matcher, rules

    def index_summary(self) -> dict[str, dict[str, Any]]:
        """Per source: the index field, number of buckets and the largest bucket (for -L/debug)."""
        if self._dirty:
            self._build()
        return {
            src: {
                "index_field": idx.index_field,
                "buckets": len(idx.buckets),
                "max_bucket": max([len(b[1]) for b in idx.buckets.values()] or [0]),
                "unindexed": len(idx.default[1]),
                "rules": len(idx.rules),
            }
            for src, idx in self._by_source.items()
        }

    # --- evaluation -----------------------------------------------------------------------

    def evaluate(self, event: Any, source: str | None = None) -> list[CompiledRule]:
        """The rules that match ``event`` (at most one with ``rule_matching: first``), in
        evaluation order. Counting matches is the caller's business (alerts are rarer than
        events)."""
        if self._dirty:
            self._build()
        idx = self._by_source.get(source or event.source)
        return [] if idx is None else idx.run(event)
