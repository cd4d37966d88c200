"""What the replay benchmarks (``pipeline.py``, ``cloudtrail.py``) share: the rules as falconet
loads them, one replay through the engine to a file output, and the paired rounds.

Rounds are interleaved (the pipeline, then its baseline), so that the noise of a shared machine
hits both sides alike; times are the process's CPU time (the file output's thread included).
The headline ratio is the median of the per-round ratios baseline/pipeline, printed with their
range and with the ratio of the two sides' best times.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from falconet.api import SourceCounters
from falconet.dispatch import Dispatcher
from falconet.engine import Engine, RulesState, settle_heap
from falconet.fields import FieldRegistry
from falconet.outputs.file import FileOutput
from falconet.ruleset.alerts import AlertFormatter, AlertOptions
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset
from falconet.stats import EngineStats

#: a replay of the input: the source's batches, counting into the given counters
Stream = Callable[[SourceCounters], Iterator[Any]]


def rules_state(reg: FieldRegistry, text: str, origin: str, source: str) -> RulesState:
    """The rules of ``text`` loaded as falconet loads them (first match), JSON alerts."""
    loader = RulesLoader(reg)
    result = loader.load_text(text, origin)
    if not result.successful:
        sys.exit(f"{origin} failed to load: {result.errors[0].message}")
    ruleset = Ruleset(loader.rules, reg, first_match=True)
    options = AlertOptions(json_output=True, hostname="bench")
    formatters = {r.name: AlertFormatter(r, reg.table(source), options)
                  for r in ruleset.enabled_rules}
    return RulesState(ruleset, formatters, {r.name: i for i, r in enumerate(loader.rules)})


def run_pipeline(source: str, stream: Stream, alerts: Path, state: RulesState
                 ) -> tuple[int, EngineStats]:
    """One whole replay through the engine to a file output; returns (CPU ns, stats)."""
    alerts.unlink(missing_ok=True)
    stats = EngineStats()

    async def main() -> None:
        output = FileOutput(str(alerts), keep_alive=True, buffered=True)
        engine = Engine(state, Dispatcher({"file": output}, stats, 0), stats)
        counters = stats.source(source).counters
        await engine.run({source: stream(counters)}, drain_timeout=60)

    start = time.process_time_ns()
    asyncio.run(main())
    return time.process_time_ns() - start, stats


def profile(run: Callable[[], Any], sort: str) -> None:
    """cProfile one run, print the 30 top functions."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    pstats.Stats(profiler).sort_stats(sort).print_stats(30)


def paired_rounds(repeat: int, pipeline: Callable[[], tuple[int, EngineStats]],
                  baseline: Callable[[], int]) -> tuple[list[int], list[int], EngineStats]:
    """A warm-up run (buckets built, caches filled), then ``repeat`` rounds of pipeline and
    baseline: (pipeline ns per round, baseline ns per round, the last run's stats)."""
    pipeline()
    settle_heap()  # as falconet.app does once start-up is done
    pipe, base = [], []
    stats = EngineStats()
    for _ in range(repeat):
        ns, stats = pipeline()
        pipe.append(ns)
        base.append(baseline())
    return pipe, base, stats


def print_ratio(n: int, unit: str, pipe: list[int], base: list[int], labels: tuple[str, str],
                ratio_name: str, target: str, stats: EngineStats) -> None:
    """The two sides' best rates, the paired ratio, and any loss of the file output."""
    pipe_rate, base_rate = n / (min(pipe) / 1e9), n / (min(base) / 1e9)
    width = max(len(label) for label in labels)
    for label, rate, best in zip(labels, (pipe_rate, base_rate), (pipe, base), strict=True):
        print(f"{label + ':':<{width + 1}} {rate:>10,.0f} {unit}s/s "
              f"({min(best) / n:,.0f} ns/{unit})")
    ratios = sorted(b / p for p, b in zip(pipe, base, strict=True))
    print(f"ratio {ratio_name}: {statistics.median(ratios):.2f} (median of {len(ratios)} "
          f"rounds, range {ratios[0]:.2f}-{ratios[-1]:.2f}; best times "
          f"{pipe_rate / base_rate:.2f})  target >= {target}")
    output = stats.output("file")
    if output.dropped or output.errors:
        print(f"file output: dropped {output.dropped}, errors {output.errors}")
