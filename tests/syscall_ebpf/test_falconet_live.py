"""The real ``falconet`` command with the live syscall source (the probe, selected by the default
``engine.kind: modern_ebpf``): a one-line rule alerts on a child's open of /etc/shadow, /metrics
shows the source's counters, SIGTERM stops it with exit code 0 and Falco's summary."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.processes import stop, wait_until
from tests.syscall_ebpf.live_helpers import (
    DEADLINE_S,
    REPO,
    child_name,
    finish_child,
    free_port,
    go,
    needs_probe,
    start_child,
)

pytestmark = needs_probe

RULES = """\
- rule: Shadow opened
  desc: the open of /etc/shadow
  condition: evt.type in (open, openat) and evt.arg.name = /etc/shadow
  output: >-
    shadow opened by %proc.name (pid=%proc.pid tid=%thread.tid fd=%evt.rawres
    flags=%evt.arg.flags res=%evt.res type=%evt.type)
  priority: WARNING
"""
ACTION = """\
fd = os.open("/etc/shadow", os.O_RDONLY)
os.close(fd)
out["fd"] = fd
"""
TIME = r"\d\d:\d\d:\d\d\.\d{9}"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_a_one_line_rule_alerts_on_the_live_open_of_etc_shadow(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    port = free_port()
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "falconet.cli", "-r", str(rules), "-U",
             "-o", "watch_config_files=false", "-o", "webserver.listen_address=127.0.0.1",
             "-o", f"webserver.listen_port={port}",
             "-o", "webserver.prometheus_metrics_enabled=true", "-o", "metrics.enabled=true"],
            stdout=out_file, stderr=err_file, text=True, cwd=REPO)
        child = None
        try:
            wait_until("the probe to load", lambda: "eBPF probe loaded" in err_path.read_text(),
                     proc)
            child = start_child(ACTION, child_name(), tmp_path)
            go(child)
            info = finish_child(child)
            line = re.compile(rf"{TIME}: Warning shadow opened by \S+ \(pid={info['pid']} .*")
            wait_until("the alert", lambda: any(line.fullmatch(x) for x in
                                              out_path.read_text().splitlines()), proc)
            wait_until("the webserver", lambda: _listening(port), proc)
            # the kernel counters are read every second
            wait_until("the kernel counters", lambda: re.search(
                r"^falcosecurity_scap_n_evts_total [1-9]", scrape(port), re.M), proc)
            metrics = scrape(port)
            stop(proc, DEADLINE_S)
        finally:
            if child is not None and child.poll() is None:
                child.kill()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 0, stderr
    alerts = [x for x in stdout.splitlines() if f"(pid={info['pid']} " in x]
    assert len(alerts) == 1, stdout
    assert re.fullmatch(
        rf"{TIME}: Warning shadow opened by fnt[0-9a-f]{{10}} \(pid={info['pid']} "
        rf"tid={info['tid']} fd={info['fd']} flags=O_RDONLY\|O_CLOEXEC res=SUCCESS "
        r"type=openat\)", alerts[0]), alerts[0]
    assert "Enabled event sources: syscall" in stderr
    assert "SIGTERM received, exiting..." in stderr
    assert "eBPF probe closed" in stderr
    assert "Triggered rules by rule name:" in stdout
    # the source's counters, as every source's; nothing lost at this rate
    assert 'falconet_events_dropped_total{source="syscall"} 0' in metrics.splitlines()
    assert "falcosecurity_scap_n_drops_total 0" in metrics.splitlines()
    evts = re.search(r"^falcosecurity_scap_n_evts_total (\d+)$", metrics, re.M)
    assert evts is not None and int(evts.group(1)) >= 1
    # per CPU, as upstream's kernel_event_counters_per_cpu: the events add up to the total
    per_cpu = re.findall(r'^falcosecurity_scap_n_evts_cpu_total\{cpu="(\d+)"\} (\d+)$',
                         metrics, re.M)
    assert [int(cpu) for cpu, _n in per_cpu] == list(range(len(per_cpu))) and per_cpu
    assert sum(int(n) for _cpu, n in per_cpu) == int(evts.group(1))
    assert re.findall(r'^falcosecurity_scap_n_drops_cpu_total\{cpu="\d+"\} (\d+)$', metrics,
                      re.M) == ["0"] * len(per_cpu)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
