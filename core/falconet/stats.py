"""The engine's counters: plain integers, written on the hot path, read when /metrics is scraped
and when the run ends (Falco's summary). No metric library is called per event."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from falconet.api import SourceCounters


@dataclass
class OutputStats:
    """One output: what it sent, dropped and failed on; ``queue_depth`` is read live."""

    sent: int = 0
    dropped: int = 0  # alerts discarded because the output's queue was full (or on shutdown)
    errors: int = 0  # failed send attempts (each retried)
    queue_depth: Callable[[], int] = lambda: 0


@dataclass
class SourceStats:
    """One enabled source: events evaluated, plus the source's own counters."""

    events: int = 0
    batches: int = 0
    counters: SourceCounters = field(default_factory=SourceCounters)


@dataclass
class RulesStats:
    """The result of the last (re)load of the rules."""

    files: int = 0
    loaded: int = 0  # rules defined
    enabled: int = 0
    errors: int = 0
    warnings: int = 0
    reloads: int = 0
    failed_reloads: int = 0
    loaded_ns: int = field(default_factory=time.time_ns)  # when the rules were last (re)loaded


@dataclass
class EngineStats:
    """Everything the engine counts. Alert counters are per rule; by-priority totals are derived
    when read (alerts are rarer than events, rules fewer than alerts)."""

    started_ns: int = field(default_factory=time.time_ns)
    sources: dict[str, SourceStats] = field(default_factory=dict)
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    rule_priority: dict[str, str] = field(default_factory=dict)  # rule -> priority label
    rule_source: dict[str, str] = field(default_factory=dict)  # rule -> source (for /metrics)
    rule_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule -> tags
    outputs: dict[str, OutputStats] = field(default_factory=dict)
    rules: RulesStats = field(default_factory=RulesStats)

    def source(self, name: str) -> SourceStats:
        return self.sources.setdefault(name, SourceStats())

    def output(self, name: str) -> OutputStats:
        return self.outputs.setdefault(name, OutputStats())

    @property
    def events_total(self) -> int:
        return sum(s.events for s in self.sources.values())

    @property
    def alerts_total(self) -> int:
        return sum(self.alerts_by_rule.values())

    def alerts_by_priority(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for rule, count in self.alerts_by_rule.items():
            label = self.rule_priority.get(rule, "")
            totals[label] = totals.get(label, 0) + count
        return totals
