"""The pipeline: sources -> parsers -> rules -> alerts -> output queues, on one asyncio loop.

Each enabled source is one task that takes batches from its stream (a live source's async
iterator, or a replay's plain iterator), numbers the events (``evt.num``, per source), hands the
batch to the source's parsers, evaluates it with ``Ruleset.evaluate_batch`` and formats one
alert per (event, rule) match into the dispatcher, which only appends to bounded queues. Rule
evaluation is CPU-bound, so the task yields to the loop between batches, at least every
``YIELD_EVERY_S``: output tasks run then, and never wait long.

The rules in use (ruleset + alert formatters) are one :class:`RulesState` object read once per
batch; a reload swaps the object between batches, so a batch is evaluated by one ruleset and
queued alerts are untouched.

Counting follows DESIGN.md: plain ints in :class:`falconet.stats.EngineStats`; ``summary()`` is
upstream's ``stats_manager::format`` text printed when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from falconet.api import Alert, EventBatch
from falconet.dispatch import Dispatcher
from falconet.log import get_logger
from falconet.ruleset.alerts import AlertFormatter
from falconet.ruleset.model import Priority
from falconet.ruleset.ruleset import Ruleset
from falconet.stats import EngineStats

__all__ = ["BatchStream", "Engine", "RulesState", "format_summary", "settle_heap"]

BatchStream = AsyncIterator[EventBatch] | Iterator[EventBatch]
Parser = Callable[[EventBatch], None]

#: allocations between two young-generation collections once running (Python's default: 700)
GC_GEN0_THRESHOLD = 10_000
#: a source task with input ready lets output tasks run at least this often (s); yielding after
#: every batch cost a loop iteration, with its epoll_wait system call, per batch
YIELD_EVERY_S = 0.002
#: how long stopping waits for the source tasks to end (upstream gives plugins 5 s to close)
SOURCE_STOP_TIMEOUT_S = 5.0
#: errors of one kind (evaluation, formatting, parsing) logged in full before only counting
MAX_LOGGED_ERRORS = 10

_log = get_logger(component="engine")


@dataclass
class RulesState:
    """The rules one batch is evaluated with: swapped whole on reload."""

    ruleset: Ruleset
    formatters: Mapping[str, AlertFormatter]
    #: rule name -> position in the rules files (upstream's rule id: the summary's order)
    order: Mapping[str, int] = field(default_factory=dict)


def settle_heap() -> None:
    """Called once start-up is done: the compiled rules, grammar tables and plugin modules live
    for the whole run, so they are moved out of the collector's reach (``gc.freeze``), and young
    objects are collected less often. Each batch allocates thousands of short-lived containers
    (decoded documents) that reference counting frees; with the default thresholds the
    collector kept walking them, and the start-up heap with them, many times a second."""
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), gen1, gen2)


def _short_label(priority: Priority) -> str:
    """Upstream's ``format_priority(shortfmt=true)``, upper-cased: ``INFO`` for Informational."""
    return "INFO" if priority is Priority.INFORMATIONAL else priority.name


def format_summary(stats: EngineStats, order: Mapping[str, int]) -> str:
    """``stats_manager::format``: total, then counts by severity (most severe first) and by rule
    (in rules-file order), zero counts left out."""
    lines = [f"Events detected: {stats.alerts_total}", "Rule counts by severity:"]
    by_priority = stats.alerts_by_priority()
    for priority in Priority:
        count = by_priority.get(priority.label, 0)
        if count:
            lines.append(f"   {_short_label(priority)}: {count}")
    lines.append("Triggered rules by rule name:")
    known = len(order)
    ranked = sorted(enumerate(stats.alerts_by_rule.items()),
                    key=lambda item: (order.get(item[1][0], known), item[0]))
    for _, (rule, count) in ranked:
        if count:
            lines.append(f"   {rule}: {count}")
    return "\n".join(lines) + "\n"


class Engine:
    """Runs the sources' tasks and counts; see the module docstring."""

    def __init__(self, rules: RulesState, dispatcher: Dispatcher, stats: EngineStats,
                 parsers: Mapping[str, Sequence[Parser]] | None = None,
                 window: tuple[int | None, int | None] | None = None) -> None:
        self.rules = rules
        #: ``--since``/``--until`` (ns): events outside are skipped before anything sees them
        self.window = window
        self.dispatcher = dispatcher
        self.stats = stats
        self.parsers = parsers or {}
        self.failed_sources: list[str] = []
        self.eval_errors = 0
        self.format_errors = 0
        self.parser_errors = 0
        self._order: dict[str, int] = dict(rules.order)
        self._stop = asyncio.Event()
        self._stop_reason = ""

    # --- rules ------------------------------------------------------------------------------

    def swap(self, rules: RulesState) -> None:
        """Use ``rules`` from the next batch on (queued alerts are not touched)."""
        self.rules = rules
        for name, pos in rules.order.items():
            self._order.setdefault(name, pos)

    def summary(self) -> str:
        return format_summary(self.stats, self._order)

    def print_summary(self, out: TextIO | None = None) -> None:
        stream = out if out is not None else sys.stdout
        stream.write(self.summary())
        stream.flush()

    # --- the per-batch path -------------------------------------------------------------------

    def process(self, source: str, batch: EventBatch) -> int:
        """Evaluate one batch of ``source`` and queue its alerts; returns the alerts raised."""
        stats = self.stats.source(source)
        if self.window is not None:
            batch = self._within_window(batch, stats.counters)
        num = stats.events
        number = getattr(batch, "number", None)
        if number is not None:  # a batch that numbers its events itself (JsonLineBatch)
            number(num + 1)
            num += len(batch)
        else:
            for event in batch:
                num += 1
                event.num = num
        stats.events = num
        stats.batches += 1
        for parse in self.parsers.get(source, ()):
            try:
                parse(batch)
            except Exception:
                self.parser_errors += 1
                if self.parser_errors <= MAX_LOGGED_ERRORS:
                    _log.exception("event parser failed on a batch", source=source)
        state = self.rules
        try:
            hits = state.ruleset.evaluate_batch(source, batch)
        except Exception:
            hits = self._evaluate_one_by_one(state.ruleset, source, batch)
        if not hits:
            return 0
        formatters = state.formatters
        by_rule = self.stats.alerts_by_rule
        put = self.dispatcher.put
        raised = 0
        for event, rules in hits:
            if rules is None:
                self._reject(source, batch, event)
                continue
            for rule in rules:
                name = rule.name
                try:
                    alert: Alert = formatters[name].alert(event)
                except Exception:
                    self.format_errors += 1
                    if self.format_errors <= MAX_LOGGED_ERRORS:
                        _log.exception("formatting an alert failed", rule=name, source=source,
                                       evt_num=event.num)
                    continue
                count = by_rule.get(name)
                if count is None:
                    self._first_alert(rule)
                    count = 0
                by_rule[name] = count + 1
                put(alert)
                raised += 1
        return raised

    def _within_window(self, batch: EventBatch, counters: Any) -> EventBatch:
        """The events of ``batch`` inside ``--since``/``--until``; the others are counted as
        ``rejected["out_of_time_range"]``."""
        since, until = self.window or (None, None)
        kept = [e for e in batch
                if (since is None or e.ts >= since) and (until is None or e.ts < until)]
        if len(kept) < len(batch):
            rejected = counters.rejected
            rejected["out_of_time_range"] = (rejected.get("out_of_time_range", 0)
                                             + len(batch) - len(kept))
        return kept

    def _first_alert(self, rule: Any) -> None:
        """Labels of a rule's counter (read by /metrics), set when it first fires."""
        stats = self.stats
        stats.rule_priority[rule.name] = rule.priority.label
        stats.rule_source[rule.name] = rule.source
        stats.rule_tags[rule.name] = tuple(sorted(rule.tags))

    def _evaluate_one_by_one(self, ruleset: Ruleset, source: str,
                             batch: Iterable[Any]) -> list[tuple[Any, list[Any] | None]]:
        """A batch that raised: evaluate each event alone, so one bad event loses only itself."""
        hits = []
        for event in batch:
            try:
                hits += ruleset.evaluate_batch(source, (event,))
            except Exception:
                self.eval_errors += 1
                if self.eval_errors <= MAX_LOGGED_ERRORS:
                    _log.exception("rule evaluation failed on an event", source=source,
                                   evt_num=event.num)
        return hits

    def _reject(self, source: str, batch: EventBatch, event: Any) -> None:
        """An event whose payload turned out not to be JSON when rules decoded it (a
        ``JsonLine``): the batch reports it with its file and line when it can (the generic
        reader's batches can), else it is counted and logged here."""
        try:
            orjson.loads(event.raw)
            reason = "not JSON"
        except ValueError as exc:
            reason = str(exc)
        reject = getattr(batch, "reject", None)
        if reject is not None:
            reject(event, reason)
            return
        counters = self.stats.source(source).counters
        counters.malformed += 1
        if counters.malformed <= MAX_LOGGED_ERRORS:
            _log.warning("malformed event skipped", source=source, evt_num=event.num,
                         reason=f"invalid JSON: {reason}")

    # --- tasks ------------------------------------------------------------------------------

    async def _consume(self, source: str, stream: BatchStream) -> None:
        process, clock = self.process, time.monotonic
        next_yield = 0.0
        try:
            if isinstance(stream, AsyncIterator):
                async for batch in stream:
                    process(source, batch)
                    del batch  # freed now, while in cache, not after the next one is read
                    if (now := clock()) >= next_yield:
                        await asyncio.sleep(0)
                        next_yield = now + YIELD_EVERY_S
            else:
                for batch in stream:
                    process(source, batch)
                    del batch
                    if (now := clock()) >= next_yield:
                        await asyncio.sleep(0)
                        next_yield = now + YIELD_EVERY_S
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed_sources.append(source)
            _log.exception("event source failed", source=source, error=str(exc))
        finally:
            await _close_stream(stream)

    def stop(self, reason: str = "") -> None:
        """Ask ``run`` to stop the sources and drain the outputs (signal-handler safe)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self, streams: Mapping[str, BatchStream], *, duration_s: float | None = None,
                  drain_timeout: float = 2.0) -> bool:
        """Run every stream until all end, ``stop()`` is called or ``duration_s`` passes; then
        drain and close the outputs. True unless a source failed."""
        self.dispatcher.start()
        tasks = [asyncio.create_task(self._consume(name, stream), name=f"source:{name}")
                 for name, stream in streams.items()]
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        everything: asyncio.Future[Any] = asyncio.gather(*tasks)
        try:
            await asyncio.wait({everything, stopper}, timeout=duration_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            for task in tasks:
                task.cancel()
            done, _ = await asyncio.wait({everything}, timeout=SOURCE_STOP_TIMEOUT_S)
            if done:
                with contextlib.suppress(asyncio.CancelledError):
                    everything.result()
            else:  # a source that ignores cancellation must not keep alerts from the outputs
                _log.error("event sources did not stop in time; draining the outputs anyway",
                           sources=[t.get_name() for t in tasks if not t.done()],
                           timeout_s=SOURCE_STOP_TIMEOUT_S)
            await self.dispatcher.close(drain_timeout)
        for name, counters in ((n, s.counters) for n, s in self.stats.sources.items()):
            if counters.malformed or counters.dropped:
                _log.warning("source input lost", source=name, malformed=counters.malformed,
                             dropped=counters.dropped)
        return not self.failed_sources


async def _close_stream(stream: BatchStream) -> None:
    """Close a generator stream so its files and sockets are released now."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:
            _log.warning("closing an event source failed", error=repr(exc))
        return
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()
