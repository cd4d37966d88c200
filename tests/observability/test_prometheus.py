"""EngineStats rendered as Prometheus text 0.0.4: upstream's names and labels, escaping."""

from __future__ import annotations

import os

from falconet.prometheus import escape_label_value, render_prometheus
from falconet.stats import EngineStats

UP = "https://falco.org/docs/metrics/"


def family(text: str, name: str) -> list[str]:
    """The HELP, TYPE and sample lines of the family ``name``."""
    return [line for line in text.splitlines()
            if line.split(" ")[0].split("{")[0] == name
            or line.startswith((f"# HELP {name} ", f"# TYPE {name} "))]


def test_empty_stats_full_text() -> None:
    stats = EngineStats(started_ns=5_000_000_000)
    stats.rules.loaded_ns = 6_000_000_000
    text = render_prometheus(stats, version="0.1.0", now_ns=7_600_000_000)
    uname = os.uname()
    upstream = [
        ("falcosecurity_falco_version_info", "gauge", '{version="0.1.0"} 1'),
        ("falcosecurity_falco_outputs_queue_num_drops_total", "counter", " 0"),
        ("falcosecurity_falco_reload_timestamp_nanoseconds", "gauge", " 6000000000"),
        ("falcosecurity_falco_kernel_release_info", "gauge",
         f'{{kernel_release="{uname.release}"}} 1'),
        ("falcosecurity_evt_hostname_info", "gauge", f'{{hostname="{uname.nodename}"}} 1'),
        ("falcosecurity_falco_start_timestamp_nanoseconds", "gauge", " 5000000000"),
        ("falcosecurity_falco_duration_seconds_total", "counter", " 2"),
        ("falcosecurity_falco_host_num_cpus_total", "gauge", f" {os.cpu_count()}"),
    ]
    ours = [
        ("falconet_rules_files", "gauge", "Rules files read by the last (re)load."),
        ("falconet_rules_loaded", "gauge", "Rules defined by the last (re)load."),
        ("falconet_rules_enabled", "gauge", "Rules enabled after the last (re)load."),
        ("falconet_rules_errors", "gauge", "Errors of the last (re)load."),
        ("falconet_rules_warnings", "gauge", "Warnings of the last (re)load."),
        ("falconet_rules_reloads_total", "counter", "Successful rules reloads."),
        ("falconet_rules_failed_reloads_total", "counter",
         "Rules reloads that failed (the previous rules stayed in force)."),
    ]
    expected = "".join(f"# HELP {n} {UP}\n# TYPE {n} {t}\n{n}{s}\n" for n, t, s in upstream)
    expected += "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n} 0\n" for n, t, h in ours)
    assert text == expected


def test_rules_matches_labels_as_upstream() -> None:
    stats = EngineStats()
    stats.alerts_by_rule.update({"Read sensitive file untrusted": 32, "Quiet rule": 0,
                                 "Shell in container": 1})
    stats.rule_priority.update({"Read sensitive file untrusted": "Warning",
                                "Shell in container": "Notice", "Quiet rule": "Debug"})
    stats.rule_source.update({"Read sensitive file untrusted": "syscall",
                              "Shell in container": "syscall"})
    stats.rule_tags.update({"Read sensitive file untrusted": ("filesystem", "T1555",
                                                              "mitre_credential_access"),
                            "Shell in container": ("maturity-stable", "maturity.stable")})
    text = render_prometheus(stats, version="0.1.0")
    assert family(text, "falcosecurity_falco_rules_matches_total") == [
        f"# HELP falcosecurity_falco_rules_matches_total {UP}",
        "# TYPE falcosecurity_falco_rules_matches_total counter",
        'falcosecurity_falco_rules_matches_total{priority="4",'
        'rule_name="Read sensitive file untrusted",source="syscall",tag_T1555="true",'
        'tag_filesystem="true",tag_mitre_credential_access="true"} 32',
        # both tags sanitize to tag_maturity_stable: one label, never a duplicate
        'falcosecurity_falco_rules_matches_total{priority="5",rule_name="Shell in container",'
        'source="syscall",tag_maturity_stable="true"} 1',
    ]
    assert family(text, "falconet_alerts_total") == [
        "# HELP falconet_alerts_total Alerts raised, per rule priority.",
        "# TYPE falconet_alerts_total counter",
        'falconet_alerts_total{priority="Debug"} 0',
        'falconet_alerts_total{priority="Notice"} 1',
        'falconet_alerts_total{priority="Warning"} 32',
    ]
    assert "rules_matches" not in render_prometheus(stats, version="0.1.0",
                                                    rules_counters=False)


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    stats = EngineStats()
    stats.alerts_by_rule['Odd "rule"\\\nname'] = 1
    stats.rule_priority['Odd "rule"\\\nname'] = "Critical"
    (sample,) = family(render_prometheus(stats, version='1"2'),
                       "falcosecurity_falco_rules_matches_total")[2:]
    assert sample == ('falcosecurity_falco_rules_matches_total{priority="2",'
                      'rule_name="Odd \\"rule\\"\\\\\\nname",source=""} 1')
    assert 'falcosecurity_falco_version_info{version="1\\"2"} 1' in family(
        render_prometheus(stats, version='1"2'), "falcosecurity_falco_version_info")


def test_sources_and_outputs() -> None:
    stats = EngineStats()
    k8s = stats.source("k8s_audit")
    k8s.events, k8s.batches, k8s.counters.malformed, k8s.counters.dropped = 1000, 10, 3, 2
    sys_ = stats.source("syscall")
    sys_.events, sys_.counters.dropped = 50, 7
    http = stats.output("http")
    http.sent, http.dropped, http.errors, http.queue_depth = 5, 4, 2, lambda: 9
    stdout = stats.output("stdout")
    stdout.sent, stdout.dropped = 6, 1

    def broken() -> int:
        raise RuntimeError("gone")

    stdout.queue_depth = broken
    text = render_prometheus(stats, version="0.1.0")
    assert family(text, "falcosecurity_scap_n_evts_total")[2:] == [
        "falcosecurity_scap_n_evts_total 50"]
    assert family(text, "falcosecurity_scap_n_drops_total")[2:] == [
        "falcosecurity_scap_n_drops_total 7"]
    assert family(text, "falcosecurity_falco_outputs_queue_num_drops_total")[2:] == [
        "falcosecurity_falco_outputs_queue_num_drops_total 5"]
    samples = {name: family(text, name)[2:] for name in (
        "falconet_events_total", "falconet_event_batches_total",
        "falconet_events_malformed_total", "falconet_events_dropped_total",
        "falconet_output_sent_total", "falconet_output_dropped_total",
        "falconet_output_errors_total", "falconet_output_queue_depth")}
    assert samples == {
        "falconet_events_total": ['falconet_events_total{source="k8s_audit"} 1000',
                                  'falconet_events_total{source="syscall"} 50'],
        "falconet_event_batches_total": ['falconet_event_batches_total{source="k8s_audit"} 10',
                                         'falconet_event_batches_total{source="syscall"} 0'],
        "falconet_events_malformed_total": [
            'falconet_events_malformed_total{source="k8s_audit"} 3',
            'falconet_events_malformed_total{source="syscall"} 0'],
        "falconet_events_dropped_total": ['falconet_events_dropped_total{source="k8s_audit"} 2',
                                          'falconet_events_dropped_total{source="syscall"} 7'],
        "falconet_output_sent_total": ['falconet_output_sent_total{output="http"} 5',
                                       'falconet_output_sent_total{output="stdout"} 6'],
        "falconet_output_dropped_total": ['falconet_output_dropped_total{output="http"} 4',
                                          'falconet_output_dropped_total{output="stdout"} 1'],
        "falconet_output_errors_total": ['falconet_output_errors_total{output="http"} 2',
                                         'falconet_output_errors_total{output="stdout"} 0'],
        # a queue_depth that raises leaves its sample out; the scrape still answers
        "falconet_output_queue_depth": ['falconet_output_queue_depth{output="http"} 9'],
    }
