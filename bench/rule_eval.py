"""Rule evaluation and rules-loading benchmark (issue: rule engine).

Prints, in one run on one machine:
  1. ns per event to evaluate the whole upstream k8s_audit ruleset (``rule_matching: all``) over a
     realistic mix of decoded audit events (the recorded traces in shared/testdata), beside the
     cost of ``orjson.loads`` of the same events, and the ratio (target <= 1.0);
  2. the time to load and compile the five upstream rules files, beside the time ``yaml`` alone
     takes to read them (target: under 1 s in all).

Run: python3 bench/rule_eval.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import orjson
import yaml

from falconet.event import JsonEvent
from falconet.fields import FieldRegistry, schema_registry
from falconet.ruleset.loader import RulesLoader
from falconet.ruleset.ruleset import Ruleset

SHARED = Path(__file__).resolve().parents[2] / "shared"
RULES = SHARED / "upstream" / "rules"
TRACES = SHARED / "testdata" / "k8s_audit" / "traces"
UPSTREAM_FILES = [
    "falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml",
    "k8s_audit_rules.yaml", "aws_cloudtrail_rules.yaml",
]


def k8s_registry() -> FieldRegistry:
    """Schema tables for every source, with real k8saudit extraction for ``k8s_audit``."""
    from falconet_k8s_audit.fields import k8saudit_field_table

    registry = schema_registry()
    registry.replace_table(k8saudit_field_table())
    return registry


def audit_events() -> list[bytes]:
    """Every recorded audit event (one JSON document per line) of the k8s_audit traces."""
    raw: list[bytes] = []
    for path in sorted(TRACES.glob("*.json")):
        for line in path.read_bytes().splitlines():
            line = line.strip()
            if line:
                doc = orjson.loads(line)
                items = doc.get("items") if isinstance(doc, dict) else None
                raw.extend(orjson.dumps(i) for i in (items or [doc]))
    return raw


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return min(times)


def bench_eval(n_events: int, repeat: int) -> None:
    registry = k8s_registry()
    loader = RulesLoader(registry)
    result = loader.load_file(RULES / "k8s_audit_rules.yaml")
    if not result.successful:
        sys.exit(f"k8s_audit_rules.yaml failed to load: {result.errors[0].message}")
    ruleset = Ruleset(loader.rules, registry, first_match=False)
    raw = audit_events()
    # n_events events cycling over the recorded ones. The decoded documents are shared, as an
    # event evaluated right after decoding is: hot in the CPU cache, like the bytes that
    # orjson.loads reads below.
    docs = [orjson.loads(r) for r in raw]
    events_raw = [raw[i % len(raw)] for i in range(n_events)]
    decoded = [docs[i % len(docs)] for i in range(n_events)]
    evaluate = ruleset.evaluate
    ruleset.evaluate(JsonEvent("k8s_audit", payload=decoded[0]))  # build the buckets once
    # Fresh event objects for every pass (sources create them; no state survives a pass).
    passes = iter([[JsonEvent("k8s_audit", payload=d) for d in decoded] for _ in range(repeat)])

    def run_eval() -> None:
        for event in next(passes):
            evaluate(event)

    def run_loads() -> None:
        loads = orjson.loads
        for r in events_raw:
            loads(r)

    # Interleaved rounds: machine noise hits both sides of the ratio alike.
    evals, parses = [], []
    for _ in range(repeat):
        evals.append(best_of(run_eval, 1) / n_events)
        parses.append(best_of(run_loads, 1) / n_events)
    eval_ns, loads_ns = min(evals), min(parses)
    ratios = sorted(e / p for e, p in zip(evals, parses, strict=True))
    matches = sum(len(evaluate(JsonEvent("k8s_audit", payload=d))) for d in decoded[: len(raw)])
    enabled = len(ruleset.enabled_rules)
    sizes = statistics.mean(len(r) for r in raw)
    print(f"k8s_audit rules enabled: {enabled}; distinct recorded events: {len(raw)} "
          f"(mean {sizes:.0f} bytes), alerts on one pass over them: {matches}")
    print(f"index: {ruleset.index_summary()}")
    print(f"evaluate whole ruleset : {eval_ns:8.0f} ns/event")
    print(f"orjson.loads same event: {loads_ns:8.0f} ns/event")
    print(f"ratio eval/parse       : {eval_ns / loads_ns:8.2f}   (target <= 1.0; best of each)")
    print(f"ratio per round        : median {statistics.median(ratios):.2f}, "
          f"min {ratios[0]:.2f}, max {ratios[-1]:.2f} over {repeat} interleaved rounds")


def bench_load(repeat: int) -> None:
    texts = [(RULES / f).read_text() for f in UPSTREAM_FILES]

    def run_yaml() -> None:
        for t in texts:
            list(yaml.load_all(t, Loader=yaml.CSafeLoader))

    def run_load() -> None:
        loader = RulesLoader(schema_registry())
        for name, text in zip(UPSTREAM_FILES, texts, strict=True):
            res = loader.load_text(text, name)
            if not res.successful:
                sys.exit(f"{name} failed to load: {res.errors[0].message}")

    yaml_s = best_of(run_yaml, repeat) / 1e9
    load_s = best_of(run_load, repeat) / 1e9
    print(f"yaml read of the 5 upstream files      : {yaml_s * 1000:7.1f} ms")
    print(f"load + compile of the 5 upstream files : {load_s * 1000:7.1f} ms   (target < 1000 ms)")
    print(f"ratio load/yaml                        : {load_s / yaml_s:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not RULES.is_dir():
        sys.exit(f"upstream rules not found under {SHARED}; this benchmark needs ../shared")
    bench_eval(args.events, args.repeat)
    bench_load(max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
