"""Kernel-side selection: only the syscalls loaded rules can match (plus the base set the state
engine needs) leave the kernel. With rules on ``openat`` only, a child making many ``mkdir``
calls produces no mkdir record at all, while its opens arrive and the kernel's emitted counter
covers them; a reload that brings a mkdir rule turns mkdir on in the kernel."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from falconet.app import build_rules, rule_infos
from falconet.config import load_config
from falconet.plugins import load_plugins
from falconet_syscall_ebpf.selection import (
    BASE_EVENTS,
    SUPPORTED,
    kernel_events,
    rule_event_types,
    unsupported,
)
from tests.syscall_ebpf.live_helpers import (
    DEADLINE_S,
    REPO,
    capture_while,
    child_name,
    finish_child,
    free_port,
    go,
    needs_probe,
    start_child,
)

MKDIRS = 200
OPENS = 20
ACTION = f"""\
for i in range({MKDIRS}):
    os.mkdir(os.path.join(tmp, f"d{{i}}"))
for i in range({OPENS}):
    os.close(os.open("/etc/hostname", os.O_RDONLY))
"""
OPENAT_RULE = """\
- rule: Hostname read
  desc: opens of /etc/hostname
  condition: evt.type = openat and evt.arg.name = /etc/hostname and proc.name = {name}
  output: hostname read by %proc.name
  priority: NOTICE
"""
MKDIR_RULE = """\
- rule: Directory made
  desc: mkdir by the child
  condition: evt.type in (mkdir, mkdirat) and proc.name = {name}
  output: "made %evt.arg.path (res=%evt.res by %proc.name)"
  priority: NOTICE
"""


def _capture(event_types: set[str], tmp: Path) -> tuple[list[object], int, int, str]:
    from falconet_syscall_ebpf.live import LiveCapture

    name = child_name()
    with LiveCapture(event_types=event_types) as capture:
        child = start_child(ACTION, name, tmp)
        try:
            go(child)
            events, total = capture_while(capture, child, lambda ev: True)
            finish_child(child)
        finally:
            if child.poll() is None:
                child.kill()
        emitted = sum(capture.counters().emitted)  # since the probe was loaded
    return events, total, emitted, name


@needs_probe
def test_rules_on_openat_only_keep_every_mkdir_in_the_kernel(tmp_path: Path) -> None:
    events, total, emitted, name = _capture({"openat"}, tmp_path)
    kinds = {ev.evt_type for ev in events}  # type: ignore[attr-defined]
    assert not kinds & {"mkdir", "mkdirat"}
    assert kinds <= BASE_EVENTS | {"openat"}
    mine = [ev for ev in events if ev.comm == name  # type: ignore[attr-defined]
            and ev.evt_type == "openat"  # type: ignore[attr-defined]
            and ev.params()["name"] == "/etc/hostname"]  # type: ignore[attr-defined]
    assert len(mine) == OPENS
    assert emitted >= total >= OPENS
    assert len(list(tmp_path.iterdir())) == MKDIRS  # the child did make them


@needs_probe
def test_a_rule_on_mkdir_lets_them_out(tmp_path: Path) -> None:
    events, _total, _emitted, name = _capture({"mkdir", "mkdirat"}, tmp_path)
    made = [ev for ev in events if ev.comm == name  # type: ignore[attr-defined]
            and ev.evt_type in ("mkdir", "mkdirat")]  # type: ignore[attr-defined]
    assert len(made) == MKDIRS
    assert {ev.params()["path"] for ev in made} == {  # type: ignore[attr-defined]
        str(tmp_path / f"d{i}") for i in range(MKDIRS)}


def test_the_selection_comes_from_the_loaded_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(OPENAT_RULE.format(name="x") + MKDIR_RULE.format(name="x") + """\
- rule: Any failure
  desc: no evt.type restriction
  condition: evt.failed = true and proc.name = y
  output: failed
  priority: DEBUG
  enabled: false
- rule: Reads
  desc: a syscall the probe does not capture
  condition: evt.type = read
  output: read
  priority: DEBUG
""")
    config = load_config(None, [])
    plugins = load_plugins(config)
    built = build_rules(config, [str(rules)], plugins.registry, plugins.versions(),
                        announce=False)
    infos = rule_infos(built.state, "syscall")
    assert [i.name for i in infos] == ["Hostname read", "Directory made", "Reads"]
    wanted = rule_event_types(infos)
    assert wanted == {"openat", "mkdir", "mkdirat", "read"}
    assert kernel_events(wanted) == BASE_EVENTS | {"openat", "mkdir", "mkdirat"}
    assert unsupported(wanted) == ["read"]
    built.state.ruleset.enable(rule="Any failure")  # a rule on every event type
    assert rule_event_types(rule_infos(built.state, "syscall")) is None
    assert kernel_events(None) == SUPPORTED


@needs_probe
def test_a_reload_turns_mkdir_on_in_the_kernel(tmp_path: Path) -> None:
    name = child_name()
    rules = tmp_path / "rules.yaml"
    rules.write_text(OPENAT_RULE.format(name=name))
    err_path, out_path = tmp_path / "stderr.txt", tmp_path / "stdout.txt"
    with err_path.open("w") as err, out_path.open("w") as out:
        # the webserver starts after the SIGHUP handler is in place: its log line says when
        proc = subprocess.Popen([sys.executable, "-m", "falconet.cli", "-o",
                                 "watch_config_files=false", "-o",
                                 "webserver.listen_address=127.0.0.1", "-o",
                                 f"webserver.listen_port={free_port()}", "-U", "-r", str(rules)],
                                stdout=out, stderr=err, text=True, cwd=REPO)
        try:
            _wait(lambda: "Starting health webserver" in err_path.read_text(), proc)
            loaded = _line(err_path, "eBPF probe loaded")
            assert "mkdir" not in loaded and "openat" in loaded
            rules.write_text(OPENAT_RULE.format(name=name) + MKDIR_RULE.format(name=name))
            proc.send_signal(signal.SIGHUP)
            _wait(lambda: "kernel-side selection updated" in err_path.read_text(), proc)
            updated = _line(err_path, "kernel-side selection updated")
            assert "mkdir,mkdirat" in updated
            child = start_child(ACTION, name, tmp_path)
            go(child)
            finish_child(child)
            _wait(lambda: out_path.read_text().count(f"by {name})") == MKDIRS, proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0
    made = [x for x in out_path.read_text().splitlines() if "Notice made" in x]
    assert len(made) == MKDIRS
    assert made[0].endswith(f"Notice made {tmp_path}/d0 (res=SUCCESS by {name})")


def _line(path: Path, text: str) -> str:
    return next(x for x in path.read_text().splitlines() if text in x)


def _wait(predicate: object, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():  # type: ignore[operator]
        if proc.poll() is not None:
            raise AssertionError(f"falconet exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting")
        time.sleep(0.05)
