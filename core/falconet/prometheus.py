"""EngineStats as Prometheus text exposition format 0.0.4, read at scrape time.

Names follow Falco's ``/metrics`` (``userspace/falco/falco_metrics.cpp`` and the libs converter)
where Falco has the metric: ``falcosecurity_falco_version_info``,
``falcosecurity_falco_rules_matches_total`` (labels ``priority`` as Falco's number, 0 emergency ..
7 debug, ``rule_name``, ``source`` and one ``tag_<tag>="true"`` per tag; only rules that matched),
``falcosecurity_falco_outputs_queue_num_drops_total``, the start/reload/duration wrapper metrics,
and ``falcosecurity_scap_n_evts_total``/``n_drops_total`` for the ``syscall`` source. What Falco
has no name for is ``falconet_*``: per-source events, batches, malformed input, drops and
refusals by reason, per-output sent/dropped/errors/queue depth, alerts by priority, and the
rules load result.

Deliberate differences: each family's ``# HELP``/``# TYPE`` is written once (upstream repeats it
per sample, which strict parsers refuse), and label values are escaped as the format requires
(upstream writes them raw). Tag label names are sanitized as upstream does; when two tags sanitize
to the same name the first wins, so a scrape never has a duplicate label.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping

from falconet.stats import EngineStats

__all__ = ["CONTENT_TYPE", "PRIORITY_NUMBERS", "escape_label_value", "render_prometheus"]

#: what the webserver answers ``/metrics`` with (upstream's ``content_type_prometheus``)
CONTENT_TYPE = "text/plain; version=0.0.4"
_UPSTREAM_HELP = "https://falco.org/docs/metrics/"

#: Falco's priority labels and the numbers its metrics use (``falco_common::priority_type``)
PRIORITY_NUMBERS = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4,
                    "notice": 5, "informational": 6, "info": 6, "debug": 7}

_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"_+")

Labels = Mapping[str, str]
Sample = tuple[Labels, int | float]


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as exposition format 0.0.4 requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_name(name: str) -> str:
    """Upstream's ``prometheus_sanitize_metric_name`` for label names."""
    clean = _UNDERSCORES.sub("_", _LABEL_INVALID.sub("_", name))
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = "_" + clean
    return clean


def _family(out: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[Sample]) -> None:
    lines = []
    for labels, value in samples:
        if labels:
            text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {value}")
        else:
            lines.append(f"{name} {value}")
    if lines:
        help_line = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {help_line}\n# TYPE {name} {kind}\n")
        out.append("\n".join(lines) + "\n")


def _rule_labels(stats: EngineStats, rule: str) -> dict[str, str]:
    label = stats.rule_priority.get(rule, "")
    number = PRIORITY_NUMBERS.get(label.lower())
    labels = {"priority": str(number) if number is not None else label, "rule_name": rule,
              "source": stats.rule_source.get(rule, "")}
    for tag in stats.rule_tags.get(rule, ()):
        labels.setdefault(_label_name("tag_" + tag), "true")
    return dict(sorted(labels.items()))  # upstream's std::map order


def render_prometheus(stats: EngineStats, *, version: str, rules_counters: bool = True,
                      now_ns: int | None = None) -> str:
    """The whole ``/metrics`` body. ``version`` is the falconet version for
    ``falcosecurity_falco_version_info``; ``rules_counters`` is ``metrics.rules_counters_enabled``;
    ``now_ns`` (default: now) fixes the uptime, for callers that need a stable answer."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    out: list[str] = []
    up = _UPSTREAM_HELP

    _family(out, "falcosecurity_falco_version_info", "gauge", up, [({"version": version}, 1)])
    drops = sum(o.dropped for o in stats.outputs.values())
    _family(out, "falcosecurity_falco_outputs_queue_num_drops_total", "counter", up,
            [({}, drops)])
    _family(out, "falcosecurity_falco_reload_timestamp_nanoseconds", "gauge", up,
            [({}, stats.rules.loaded_ns)])
    if rules_counters:
        _family(out, "falcosecurity_falco_rules_matches_total", "counter", up,
                [(_rule_labels(stats, rule), count)
                 for rule, count in stats.alerts_by_rule.items() if count > 0])
    syscall = stats.sources.get("syscall")
    if syscall is not None:
        kernel = syscall.counters
        _family(out, "falcosecurity_scap_n_evts_total", "counter", up,
                [({}, sum(kernel.cpu_events) if kernel.cpu_events else syscall.events)])
        _family(out, "falcosecurity_scap_n_drops_total", "counter", up,
                [({}, kernel.dropped)])
        _family(out, "falcosecurity_scap_n_evts_cpu_total", "counter", up,
                [({"cpu": str(cpu)}, n) for cpu, n in enumerate(kernel.cpu_events)])
        _family(out, "falcosecurity_scap_n_drops_cpu_total", "counter", up,
                [({"cpu": str(cpu)}, n) for cpu, n in enumerate(kernel.cpu_drops)])
    uname = os.uname()
    _family(out, "falcosecurity_falco_kernel_release_info", "gauge", up,
            [({"kernel_release": uname.release}, 1)])
    _family(out, "falcosecurity_evt_hostname_info", "gauge", up,
            [({"hostname": uname.nodename}, 1)])
    _family(out, "falcosecurity_falco_start_timestamp_nanoseconds", "gauge", up,
            [({}, stats.started_ns)])
    _family(out, "falcosecurity_falco_duration_seconds_total", "counter", up,
            [({}, max(0, now_ns - stats.started_ns) // 1_000_000_000)])
    _family(out, "falcosecurity_falco_host_num_cpus_total", "gauge", up,
            [({}, os.cpu_count() or 0)])

    _render_sources(out, stats)
    _render_alerts(out, stats)
    _render_outputs(out, stats)
    _render_rules(out, stats)
    return "".join(out)


def _render_sources(out: list[str], stats: EngineStats) -> None:
    sources = sorted(stats.sources.items())
    _family(out, "falconet_events_total", "counter",
            "Events evaluated against the rules, per source.",
            [({"source": name}, s.events) for name, s in sources])
    _family(out, "falconet_event_batches_total", "counter",
            "Batches of events evaluated, per source.",
            [({"source": name}, s.batches) for name, s in sources])
    _family(out, "falconet_events_malformed_total", "counter",
            "Input a source could not turn into an event (logged, skipped), per source.",
            [({"source": name}, s.counters.malformed) for name, s in sources])
    _family(out, "falconet_events_dropped_total", "counter",
            "Events a source had to discard (oversized, overflow), per source.",
            [({"source": name}, s.counters.dropped) for name, s in sources])
    _family(out, "falconet_source_rejected_total", "counter",
            "Requests or events a source refused, per source and reason.",
            [({"reason": reason, "source": name}, count) for name, s in sources
             for reason, count in sorted(s.counters.rejected.items())])


def _render_alerts(out: list[str], stats: EngineStats) -> None:
    _family(out, "falconet_alerts_total", "counter", "Alerts raised, per rule priority.",
            [({"priority": label}, count)
             for label, count in sorted(stats.alerts_by_priority().items())])


def _render_outputs(out: list[str], stats: EngineStats) -> None:
    outputs = sorted(stats.outputs.items())
    _family(out, "falconet_output_sent_total", "counter", "Alerts an output delivered.",
            [({"output": name}, o.sent) for name, o in outputs])
    _family(out, "falconet_output_dropped_total", "counter",
            "Alerts an output discarded because its queue was full (or at shutdown).",
            [({"output": name}, o.dropped) for name, o in outputs])
    _family(out, "falconet_output_errors_total", "counter",
            "Failed send attempts of an output (each retried).",
            [({"output": name}, o.errors) for name, o in outputs])
    depths: list[Sample] = []
    for name, o in outputs:
        try:
            depths.append(({"output": name}, int(o.queue_depth())))
        except Exception:  # one broken gauge must not fail the scrape
            continue
    _family(out, "falconet_output_queue_depth", "gauge", "Alerts waiting in an output's queue.",
            depths)


def _render_rules(out: list[str], stats: EngineStats) -> None:
    r = stats.rules
    for name, value, help_text in (
            ("falconet_rules_files", r.files, "Rules files read by the last (re)load."),
            ("falconet_rules_loaded", r.loaded, "Rules defined by the last (re)load."),
            ("falconet_rules_enabled", r.enabled, "Rules enabled after the last (re)load."),
            ("falconet_rules_errors", r.errors, "Errors of the last (re)load."),
            ("falconet_rules_warnings", r.warnings, "Warnings of the last (re)load.")):
        _family(out, name, "gauge", help_text, [({}, value)])
    _family(out, "falconet_rules_reloads_total", "counter", "Successful rules reloads.",
            [({}, r.reloads)])
    _family(out, "falconet_rules_failed_reloads_total", "counter",
            "Rules reloads that failed (the previous rules stayed in force).",
            [({}, r.failed_reloads)])
