"""Rule evaluation and rules-loading benchmark (issue: rule engine).

Prints, in one run on one machine:
  1. ns per event to evaluate the whole upstream k8s_audit ruleset (``rule_matching: all``) over
     decoded audit events, beside the cost of ``orjson.loads`` of the same events, and the ratio
     (target <= 1.0). Two sets: the recorded events of shared/testdata (all of them writes that
     upstream's rules care about), and a traffic mix where, as on a real API server, most events
     are get/list/watch (Metadata-level reads of the same objects; --read-share);
  2. (printed first) the time to load and compile the five upstream rules files, the first time
     in the process and again, beside the time ``yaml`` alone takes to read them (target: under
     1 s in all).

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


READ_VERBS = ("get", "list", "watch")


def metadata_read(doc: dict, verb: str) -> dict:
    """A read of the same object as ``doc``, as the API server logs it at the ``Metadata`` level
    of upstream's example audit policy: no request or response bodies."""
    read = {k: v for k, v in doc.items() if k not in ("requestObject", "responseObject")}
    read["verb"] = verb
    read["stage"] = "ResponseComplete"
    read["responseStatus"] = {"metadata": {}, "code": 200}
    return read


def traffic_mix(recorded: list[bytes], read_share: float) -> list[bytes]:
    """The recorded events (writes: creates, deletes, patches) diluted with Metadata-level reads
    of the same objects, so that ``read_share`` of the events are get/list/watch."""
    if read_share <= 0:
        return list(recorded)
    reads_per_write = round(read_share / (1 - read_share))
    out: list[bytes] = []
    for i, raw in enumerate(recorded):
        out.append(raw)
        doc = orjson.loads(raw)
        for j in range(reads_per_write):
            out.append(orjson.dumps(metadata_read(doc, READ_VERBS[(i + j) % 3])))
    return out


def measure(ruleset: Ruleset, raw: list[bytes], n_events: int, repeat: int) -> dict[str, float]:
    """ns/event of evaluating ``ruleset`` and of ``orjson.loads``, in interleaved rounds."""
    # n_events events cycling over ``raw``. The decoded documents are shared, as an event
    # evaluated right after decoding is: hot in the CPU cache, like the bytes orjson.loads reads.
    docs = [orjson.loads(r) for r in raw]
    events_raw = [raw[i % len(raw)] for i in range(n_events)]
    decoded = [docs[i % len(docs)] for i in range(n_events)]
    evaluate = ruleset.evaluate
    # Fresh event objects for every pass (sources create them; no state survives a pass),
    # evaluated in batches of 256 as a source task hands them over.
    passes = iter([[JsonEvent("k8s_audit", payload=d) for d in decoded] for _ in range(repeat)])

    def run_eval() -> None:
        events = next(passes)
        for start in range(0, len(events), 256):
            ruleset.evaluate_batch("k8s_audit", events[start : start + 256])

    def run_loads() -> None:
        loads = orjson.loads
        for r in events_raw:
            loads(r)

    evals, parses = [], []
    for _ in range(repeat):  # interleaved: machine noise hits both sides of the ratio alike
        evals.append(best_of(run_eval, 1) / n_events)
        parses.append(best_of(run_loads, 1) / n_events)
    ratios = sorted(e / p for e, p in zip(evals, parses, strict=True))
    alerts = sum(len(evaluate(JsonEvent("k8s_audit", payload=d))) for d in docs)
    return {"eval": min(evals), "loads": min(parses), "median": statistics.median(ratios),
            "min": ratios[0], "max": ratios[-1], "alerts": alerts, "events": len(raw),
            "bytes": statistics.mean(len(r) for r in raw)}


def bench_eval(n_events: int, repeat: int, read_share: float) -> None:
    registry = k8s_registry()
    loader = RulesLoader(registry)
    result = loader.load_file(RULES / "k8s_audit_rules.yaml")
    if not result.successful:
        sys.exit(f"k8s_audit_rules.yaml failed to load: {result.errors[0].message}")
    recorded = audit_events()
    mixes = [("recorded events only (all writes)", recorded),
             (f"traffic mix ({read_share:.0%} Metadata reads)", traffic_mix(recorded, read_share))]
    print(f"{'events':<34} {'matching':<8} {'n':>4} {'bytes':>6} {'alerts':>6} {'eval ns':>8} "
          f"{'loads ns':>9} {'ratio':>6}  per-round ratio median [min-max]")
    for mode in ("all", "first"):
        ruleset = Ruleset(loader.rules, registry, first_match=mode == "first")
        for label, raw in mixes:
            m = measure(ruleset, raw, n_events, repeat)
            print(f"{label:<34} {mode:<8} {m['events']:>4} {m['bytes']:>6.0f} {m['alerts']:>6} "
                  f"{m['eval']:>8.0f} {m['loads']:>9.0f} {m['eval'] / m['loads']:>6.2f}  "
                  f"{m['median']:.2f} [{m['min']:.2f}-{m['max']:.2f}]")
    print(f"k8s_audit rules enabled: {len(ruleset.enabled_rules)}; "
          f"index: {ruleset.index_summary()['k8s_audit']}")
    print("target: ratio <= 1.0 (evaluating every k8s audit rule costs no more than parsing the "
          "event once)")


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

    cold_s = best_of(run_load, 1) / 1e9  # first in the process: grammar tables built too
    yaml_s = best_of(run_yaml, repeat) / 1e9
    load_s = best_of(run_load, repeat) / 1e9
    print(f"yaml read of the 5 upstream files              : {yaml_s * 1000:7.1f} ms")
    print(f"load + compile of the 5 files, first in process: {cold_s * 1000:7.1f} ms "
          "(target < 1000 ms)")
    print(f"load + compile of the 5 files, again (best)    : {load_s * 1000:7.1f} ms")
    print(f"ratio load/yaml                                : {load_s / yaml_s:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--read-share", type=float, default=0.8,
                        help="share of get/list/watch events in the traffic mix (default 0.8)")
    args = parser.parse_args()
    if not RULES.is_dir():
        sys.exit(f"upstream rules not found under {SHARED}; this benchmark needs ../shared")
    bench_load(max(1, args.repeat // 3))
    bench_eval(args.events, args.repeat, args.read_share)


if __name__ == "__main__":
    main()
